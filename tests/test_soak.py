"""A short version of ``make soak``: a mixed load over every tab's endpoint and every kind of image against the real app."""

from __future__ import annotations

from bench.soak import PICTURES, REQUESTS, Picture, soak


def test_a_mixed_load_over_every_endpoint_and_kind_of_image_is_answered_and_its_files_are_deleted_afterwards():
    # 4 requests per endpoint: one round over the endpoints per kind of image, so each endpoint meets each kind once
    report = soak(
        requests=len(PICTURES) * len(REQUESTS), clients=8, warmup=len(REQUESTS), cache_age_min=0.05, log=lambda *a, **k: None, settle=False
    )
    assert report.count("answered") == len(report.outcomes), report.failures_markdown()  # an error event is a failure
    with_images = {(o.endpoint, o.picture) for o in report.outcomes if o.endpoint != "generate"}  # /generate takes no image
    assert with_images == {(e, Picture(0, side).name) for e in REQUESTS if e != "generate" for side in PICTURES}
    assert {"caption", "answer", "generate"} <= {o.endpoint for o in report.outcomes}
    assert report.disk["end"] > report.disk["start"]  # the load did write files...
    assert report.disk["after the age"] - report.disk["start"] < 50 * 2**20  # ...and they were deleted
    assert "| /segment | 4 | 4 |" in report.markdown()


def test_a_stream_with_an_error_event_is_a_failed_request():
    """The REST path reads the event stream: ``event: error`` (a gr.Error, a crash) fails the request, whatever came before."""
    import httpx

    from bench.soak import Connection

    def server(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/upload"):
            return httpx.Response(200, json=["/tmp/gradio/x/1.png"])
        if request.method == "POST":
            return httpx.Response(200, json={"event_id": "e1"})
        return httpx.Response(200, text='event: heartbeat\ndata: null\n\nevent: error\ndata: "Captioning failed."\n\n')

    connection = Connection("http://app/")
    connection.http = httpx.Client(base_url="http://app/", transport=httpx.MockTransport(server))
    outcome = connection.request("caption", Picture(1, 32))
    assert (outcome.kind, outcome.detail, outcome.picture) == ("error", '"Captioning failed."', "noise 32 px")
