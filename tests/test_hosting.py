"""Public hosting: bounded uploads, old files deleted, the file route closed, share opt-in, the MCP server.

One app process with small limits (1 MB uploads, files kept 10 s, one request waiting) and the MCP server on, so
what a public Space relies on is checked against the real server over HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from pathlib import Path

import httpx
import pytest
from gradio_client import Client, handle_file
from PIL import Image

import app
import models
import shapesworld
from bench.server import AppServer
from tests.conftest import ARTIFACTS

AGE_S = 10  # longer than any request waits here: a swept upload is gone for a request still queued


@pytest.fixture(scope="module")
def server(planted_torch_home):
    ARTIFACTS.mkdir(exist_ok=True)
    # every client here is the loopback: the per-endpoint share must not answer before the full queue does
    flags = ("--max-upload-mb", "1", "--cache-age-min", str(AGE_S / 60), "--queue-size", "1", "--max-queued-per-endpoint", "16", "--mcp")
    with AppServer(log_path=ARTIFACTS / "app-server-hosting.log", args=flags) as running:
        yield running


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def scene_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("hosting") / "scene.png"
    Image.fromarray(shapesworld.generate(shapesworld.SPLITS["test"].start + 77).image).save(path)
    return path


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()


def test_an_upload_over_the_cap_is_refused_with_a_clear_message_and_not_stored(server, http):
    gradio_tmp = server.tmp / "tmp" / "gradio"
    before = files_under(gradio_tmp)
    response = http.post("gradio_api/upload", files={"files": ("huge.png", os.urandom(2 * 2**20), "image/png")})
    assert response.status_code == 413 and "maximum allowed size" in response.text
    assert not [p for p in files_under(gradio_tmp) - before if p.stat().st_size > 2**20]
    small = http.post("gradio_api/upload", files={"files": ("small.png", b"\x89PNG" + bytes(100), "image/png")})
    assert small.status_code == 200  # the server keeps serving


def test_uploads_and_results_are_deleted_once_older_than_the_age(server, scene_path):
    client = Client(server.url, verbose=False)
    overlay, *_ = client.predict(handle_file(str(scene_path)), "unet-shapes", 0.5, api_name="/segment")
    server_tmp = server.tmp / "tmp"
    made = {p for p in files_under(server_tmp) if p.name.startswith(("mask-", "scene")) or p == Path(overlay)}
    assert any(p.name.startswith("mask-") for p in made), "the segmentation wrote no mask file"
    examples = {p for p in files_under(server_tmp / "deep-vision-lab" / "examples")}
    deadline = time.time() + AGE_S + 15
    while time.time() < deadline and any(p.exists() for p in made):
        time.sleep(0.5)
    assert not [p for p in made if p.exists()], "old uploads or results were kept"
    assert examples and all(p.exists() for p in examples)  # the examples stay


@pytest.mark.parametrize("path", ["/etc/passwd", "%2e%2e/%2e%2e/%2e%2e/etc/passwd", "..%2f..%2f..%2fetc%2fpasswd", "weights/unet-shapes.json"])
def test_the_file_route_serves_nothing_outside_the_apps_own_files(http, path):
    response = http.get(f"gradio_api/file={path}")
    assert response.status_code in (403, 404) and "root:" not in response.text


def test_the_file_route_refuses_a_symlink_out_of_the_upload_folder(server, http):
    link = server.tmp / "tmp" / "gradio" / "escape.txt"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to("/etc/passwd")
    response = http.get(f"gradio_api/file={link}")
    assert response.status_code == 403 and "root:" not in response.text


@pytest.mark.parametrize("name", ["/etc/passwd", "../weights/unet-shapes", "weights/unet-shapes.safetensors", "https://example.com/x.pt"])
def test_no_model_is_loaded_from_a_name_a_web_user_sends(server, scene_path, name):
    client = Client(server.url, verbose=False)
    with pytest.raises(Exception) as error:
        client.predict(handle_file(str(scene_path)), name, 0.5, api_name="/segment")
    assert "Traceback" not in str(error.value)
    with pytest.raises(KeyError):
        models.spec(name)


def test_a_full_queue_answers_busy_at_once(server):
    """Two requests run, one waits (--queue-size 1); the rest are told at once, and all later ones are served."""
    from concurrent.futures import ThreadPoolExecutor

    from bench.soak import Connection, Picture

    first = shapesworld.SPLITS["test"].start + 700_000
    pictures = [Picture(first + i) for i in range(10)]
    connections = [Connection(server.url) for _ in pictures]
    # The first /retrieve of a model embeds its whole gallery: seconds, so the queue fills.
    with ThreadPoolExecutor(len(pictures)) as pool:
        outcomes = list(pool.map(lambda pair: pair[0].request("retrieve", pair[1]), zip(connections, pictures)))
    busy = [o for o in outcomes if o.kind == "busy"]
    assert busy and {o.kind for o in outcomes} <= {"answered", "busy"}, outcomes
    assert all("queue is full" in o.detail.lower() and o.seconds < 2 for o in busy), busy
    assert connections[0].request("retrieve", pictures[0]).kind == "answered"
    for connection in connections:
        connection.close()


def test_share_links_are_opt_in(monkeypatch):
    monkeypatch.delenv("DVL_MCP", raising=False)
    assert app.parse_args([]).share is False
    assert app.parse_args(["--share"]).share is True


def test_the_mcp_server_lists_every_tabs_endpoint_and_segments_an_image(server, scene_path):
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    # A data URL: Gradio's MCP server refuses to fetch URLs of private addresses such as 127.0.0.1.
    image_url = "data:image/png;base64," + base64.b64encode(scene_path.read_bytes()).decode()

    async def session_calls():
        async with streamablehttp_client(f"{server.url}gradio_api/mcp/") as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = {tool.name: tool for tool in (await session.list_tools()).tools}
                result = await session.call_tool("segment", {"image_path": image_url, "model_name": "unet-shapes", "opacity": 0.5})
                return tools, result

    tools, result = asyncio.run(session_calls())
    assert {"segment", "detect", "instances", "pose", "caption", "answer", "classify", "retrieve", "generate"} <= set(tools)
    assert "every pixel" in tools["segment"].description and "model_name" in tools["segment"].inputSchema["properties"]
    assert not result.isError
    text = " ".join(getattr(part, "text", "") or "" for part in result.content)
    assert "circle" in text or "square" in text or "triangle" in text or "star" in text or "ring" in text


def test_the_sweep_deletes_old_files_and_empty_folders_and_spares_examples_and_kept_files(tmp_path, monkeypatch):
    from hosting import sweep

    old, new = time.time() - 100, time.time()
    files = {
        "old upload": tmp_path / "gradio" / "abc" / "upload.png", "new upload": tmp_path / "gradio" / "def" / "upload.png",
        "old result": tmp_path / "out" / "mask-1.png", "example": tmp_path / "out" / "examples" / "chelsea.jpg",
        "kept": tmp_path / "gradio" / "ghi" / "astronaut.jpg",
    }
    for name, path in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
        stamp = new if name == "new upload" else old
        os.utime(path, (stamp, stamp))
        os.utime(path.parent, (stamp, stamp))
    folders, examples = [tmp_path / "out", tmp_path / "gradio"], tmp_path / "out" / "examples"
    removed = sweep.prune_old_files(folders, 50, examples, keep=lambda: {str(files["kept"])})
    assert removed == 2 and not files["old upload"].exists() and not files["old result"].exists()
    assert not files["old upload"].parent.exists()  # its folder too
    assert files["new upload"].exists() and files["example"].exists() and files["kept"].exists()


# ---------------------------------------------------------------- hostile clients (issue: public hosting limits)

UPLOAD_MB = 8  # so the request cap is 11.7 MB
CLIENT_MB = 40


@pytest.fixture(scope="module")
def guarded(planted_torch_home):
    """The app behind one trusted proxy (clients told apart by X-Forwarded-For), with small per-client shares."""
    flags = (
        "--max-upload-mb", str(UPLOAD_MB), "--max-client-mb", str(CLIENT_MB), "--max-files-per-upload", "5",
        "--max-queued-per-ip", "4", "--max-queued-per-endpoint", "2", "--forwarded-hops", "1", "--mcp",
    )
    with AppServer(log_path=ARTIFACTS / "app-server-guarded.log", args=flags) as running:
        yield running


def as_client(address: str) -> dict[str, str]:
    """Headers of a request that reached the app through the trusted proxy from ``address``."""
    return {"X-Forwarded-For": f"10.9.9.9, {address}"}  # the left entry is the client's own claim: ignored


def upload_folder(server) -> Path:
    return server.tmp / "tmp" / "gradio"


def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in files_under(folder)) / 2**20


class Growth:
    """The server's peak RSS growth (VmHWM after a reset, less the RSS before) and upload-folder growth over a block."""

    def __init__(self, server) -> None:
        self.server = server

    def __enter__(self) -> "Growth":
        from bench import machine

        self.rss = machine.rss_bytes(self.server.pid)
        assert machine.reset_peak(self.server.pid), "cannot reset the server's VmHWM"
        self.disk = folder_mb(upload_folder(self.server))
        return self

    def __exit__(self, *exc) -> None:
        from bench import machine

        self.peak_mb = (machine.peak_since_reset(self.server.pid) - self.rss) / 2**20
        self.disk_mb = folder_mb(upload_folder(self.server)) - self.disk


def call(http: httpx.Client, endpoint: str, data: list, headers: dict | None = None) -> tuple[str, str]:
    """("complete" | "error" | "refused <status>", the last data line or the refusal's text) of a REST call."""
    started = http.post(f"gradio_api/call/{endpoint}", json={"data": data}, headers=headers or {})
    if started.status_code != 200:
        return f"refused {started.status_code}", started.text
    lines = http.get(f"gradio_api/call/{endpoint}/{started.json()['event_id']}", headers=headers or {}).text.splitlines()
    events = [line[6:].strip() for line in lines if line.startswith("event:") and "heartbeat" not in line]
    payload = next((line[5:].strip() for line in reversed(lines) if line.startswith("data:")), "")
    return events[-1], payload


@pytest.fixture(scope="module")
def guarded_http(guarded):
    with httpx.Client(base_url=guarded.url, timeout=120) as client:
        yield client


def test_a_data_url_bomb_is_refused_from_its_header_before_anything_decodes_it(guarded, guarded_http, scene_path):
    from bench.soak import bomb_png, data_url

    assert call(guarded_http, "segment", [data_url(scene_path.read_bytes()), "unet-shapes", 0.5])[0] == "complete"  # a data URL works
    with Growth(guarded) as growth:
        kind, message = call(guarded_http, "segment", [data_url(bomb_png()), "unet-shapes", 0.5])
    assert kind == "error" and "10000 x 10000" in message and "too large" in message
    assert growth.peak_mb < 100 and growth.disk_mb < 1, (growth.peak_mb, growth.disk_mb)  # was +1,290 MB


def test_a_data_url_bomb_sent_through_mcp_is_refused(guarded):
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    from bench.soak import bomb_png

    bomb = "data:image/png;base64," + base64.b64encode(bomb_png()).decode()

    async def call_tool():
        async with streamablehttp_client(f"{guarded.url}gradio_api/mcp/") as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return await session.call_tool("segment", {"image_path": bomb, "model_name": "unet-shapes", "opacity": 0.5})

    with Growth(guarded) as growth:
        result = asyncio.run(call_tool())
    assert result.isError and "too large" in " ".join(getattr(p, "text", "") for p in result.content)
    assert growth.peak_mb < 100, growth.peak_mb


def test_a_request_body_over_the_cap_is_refused_before_it_is_read(guarded, guarded_http):
    ten = [("files", (f"f{i}.png", os.urandom(6 * 2**20), "image/png")) for i in range(10)]  # each under the file cap
    with Growth(guarded) as growth:
        upload = guarded_http.post("gradio_api/upload", files=ten)
        json_body = guarded_http.post("gradio_api/call/segment", content=b'{"data": ["' + b"A" * (13 * 2**20) + b'"]}')
    assert upload.status_code == 413 and "maximum allowed size" in upload.text
    assert json_body.status_code == 413
    assert growth.peak_mb < 100 and growth.disk_mb < 1, (growth.peak_mb, growth.disk_mb)  # was 240 MB stored


def test_a_streamed_body_without_a_length_is_counted_and_refused_past_the_cap(guarded, guarded_http):
    def chunks():
        yield b'{"data": ["'
        for _ in range(13):
            yield b"A" * 2**20
        yield b'"]}'

    with Growth(guarded) as growth:
        response = guarded_http.post("gradio_api/call/segment", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and "maximum allowed size" in response.text
    assert growth.peak_mb < 100


def test_an_upload_of_too_many_files_is_refused_and_nothing_is_kept(guarded, guarded_http):
    before = files_under(upload_folder(guarded))
    response = guarded_http.post("gradio_api/upload", files=[("files", (f"f{i}.png", b"x" * 1000, "image/png")) for i in range(6)])
    assert response.status_code == 400 and "Too many files" in response.text
    assert files_under(upload_folder(guarded)) == before


def test_an_upload_dropped_midway_leaves_no_file(guarded):
    import socket

    before = files_under(upload_folder(guarded))
    boundary = "dvlboundary"
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="big.png"\r\nContent-Type: image/png\r\n\r\n'.encode()
    with socket.create_connection(("127.0.0.1", guarded.port)) as sock:
        sock.sendall(
            f"POST /gradio_api/upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {7 * 2**20}\r\n\r\n".encode() + head
        )
        sock.sendall(os.urandom(4 * 2**20))
        time.sleep(1.0)
        assert files_under(upload_folder(guarded)) - before, "the partial upload was not being written"
    deadline = time.time() + 10
    while time.time() < deadline and files_under(upload_folder(guarded)) - before:
        time.sleep(0.2)
    assert not files_under(upload_folder(guarded)) - before  # was a 4 MB orphan until the sweep


def test_one_client_may_send_only_its_share_within_the_cache_age(guarded_http):
    def upload(address: str) -> httpx.Response:
        return guarded_http.post("gradio_api/upload", files={"files": ("p.png", os.urandom(7 * 2**20), "image/png")}, headers=as_client(address))

    statuses = [upload("198.51.100.7").status_code for _ in range(CLIENT_MB // 7 + 1)]
    assert statuses[:CLIENT_MB // 7] == [200] * (CLIENT_MB // 7) and statuses[-1] == 429, statuses
    refused = upload("198.51.100.7")
    assert refused.status_code == 429 and "the most one client may" in refused.text
    assert upload("198.51.100.8").status_code == 200  # another client is not affected


def test_the_component_server_refuses_files_before_reading_them(guarded, guarded_http):
    files = [("files", (f"f{i}.png", os.urandom(6 * 2**20), "image/png")) for i in range(8)]
    with Growth(guarded) as growth:
        response = guarded_http.post("gradio_api/component_server", files=files)
    assert response.status_code == 413
    assert growth.peak_mb < 50 and growth.disk_mb < 1, (growth.peak_mb, growth.disk_mb)  # was +192 MB


def test_a_second_client_is_served_while_a_first_floods_the_queue(guarded, guarded_http, scene_path):
    from concurrent.futures import ThreadPoolExecutor

    from bench.soak import data_url

    image = data_url(scene_path.read_bytes())
    flood = [image, "fasterrcnn-shapes", 0.5, 0.5, [], 100]
    with ThreadPoolExecutor(8) as pool:
        joins = list(pool.map(
            lambda _: guarded_http.post("gradio_api/call/detect", json={"data": flood}, headers=as_client("203.0.113.1")), range(40)
        ))
        kind, _ = call(guarded_http, "segment", [image, "unet-shapes", 0.5], headers=as_client("203.0.113.2"))
    refused = [j for j in joins if j.status_code == 429]
    assert refused and "as many requests waiting or running as one client may" in refused[0].text
    assert {j.status_code for j in joins} == {200, 429}
    assert kind == "complete"


def test_one_address_holds_at_most_its_share_of_one_endpoints_queue(guarded_http, scene_path):
    """--max-queued-per-endpoint 2 here: a third /detect from the address is refused at once, its /segment is still queued."""
    from bench.soak import data_url

    image = data_url(scene_path.read_bytes())
    headers = as_client("203.0.113.3")
    detect = {"data": [image, "fasterrcnn-shapes", 0.5, 0.5, [], 100]}
    detects = [guarded_http.post("gradio_api/call/detect", json=detect, headers=headers) for _ in range(3)]
    segment = guarded_http.post("gradio_api/call/segment", json={"data": [image, "unet-shapes", 0.5]}, headers=headers)
    assert [d.status_code for d in detects] == [200, 200, 429] and "as many requests waiting or running" in detects[2].text
    assert segment.status_code == 200


def test_error_messages_name_nothing_of_the_server(guarded_http):
    from bench.soak import data_url

    messages = [
        call(guarded_http, "segment", [{"path": str(Path.cwd() / "app.py"), "meta": {"_type": "gradio.FileData"}}, "unet-shapes", 0.5])[1],
        call(guarded_http, "segment", [{"path": 5, "meta": {"_type": "gradio.FileData"}}, "unet-shapes", 0.5])[1],
        call(guarded_http, "segment", ["hello", "unet-shapes", 0.5])[1],
        call(guarded_http, "segment", [data_url(b"not a picture"), "unet-shapes", 0.5])[1],
        call(guarded_http, "segment", [data_url(b"x"), "deeplabv3-resnet101", 0.5])[1],  # weights not on this machine
    ]
    for message in messages:
        assert message and not any(
            leak in message for leak in (str(Path.cwd()), "/root", "/tmp", " at 0x", "pydantic", "UploadedImage", "Traceback")
        ), message
    assert "upload it first" in messages[0].lower()


def test_the_sanitiser_keeps_what_a_user_can_act_on():
    from hosting.errors import user_message

    text = user_message(
        "Weights missing: put resnet.pth in /root/.cache/torch/hub/checkpoints/ or see https://example.com/a/b; "
        "<demos.upload.UploadedImage object at 0x7f00> failed; gradio 6.1.0; POST /gradio_api/upload"
    )
    assert text == "Weights missing: put resnet.pth in checkpoints or see https://example.com/a/b; an input failed; gradio; POST /gradio_api/upload"


def test_deep_links_are_off_monitoring_is_closed_and_pages_carry_security_headers(guarded_http):
    assert guarded_http.get("gradio_api/deep_link", params={"session_hash": "abc"}).status_code == 404
    assert guarded_http.get("monitoring/summary").status_code in (403, 404)
    page = guarded_http.get("")
    assert page.status_code == 200
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["content-security-policy"] == "frame-ancestors 'self' https://huggingface.co https://*.hf.space"
    assert page.headers["referrer-policy"] == "strict-origin-when-cross-origin"


def test_a_failed_url_input_leaves_no_folder(guarded, guarded_http):
    # Empty ones only: a result file another test's request is still writing may add a full folder meanwhile.
    folders = lambda: {p for p in upload_folder(guarded).rglob("*") if p.is_dir() and not any(p.iterdir())}  # noqa: E731
    before = folders()
    for i in range(5):
        url = f"https://127.0.0.1:1/missing-{i}.png"
        kind, _ = call(guarded_http, "segment", [{"path": url, "url": url, "meta": {"_type": "gradio.FileData"}}, "unet-shapes", 0.5])
        assert kind == "error"
    assert folders() == before  # was one empty folder per failed URL


def test_the_client_is_the_entry_the_trusted_proxy_appended():
    from hosting.clients import client_ip, session_of

    headers = [("X-Forwarded-For", "6.6.6.6, 1.2.3.4")]  # the client wrote 6.6.6.6; the proxy appended 1.2.3.4
    assert client_ip(headers, "10.0.0.1", hops=1) == "1.2.3.4"
    assert client_ip(headers, "10.0.0.1", hops=0) == "10.0.0.1"  # no proxy trusted: the header is ignored
    assert client_ip([], "10.0.0.1", hops=1) == "10.0.0.1"
    assert session_of([("mcp-session-id", "m1")], "shared") == "mcp:m1" and session_of([], "s") == "s"


def test_each_endpoint_serves_its_waiting_clients_in_turn():
    """On the pinned Gradio's own queue: a flooder's queued calls take one turn per round, and a client already running waits."""
    import gradio as gr
    from gradio.queueing import Event
    from starlette.requests import Request

    from hosting.fairness import take_turns

    with gr.Blocks() as blocks:
        gr.Button().click(lambda: None, None, None, api_name="work")
    blocks.queue(default_concurrency_limit=2)
    queue, fn = blocks._queue, blocks.fns[0]
    queue.create_event_queue_for_fn(fn)
    queue.active_jobs = [None] * 4
    take_turns(queue, hops=1)
    waiting = queue.event_queue_per_concurrency_id[fn.concurrency_id].queue

    def event(address: str) -> Event:
        scope = {"type": "http", "headers": [(b"x-forwarded-for", address.encode())], "client": ("10.0.0.1", 1)}
        return Event(None, fn, Request(scope), None)

    def next_address() -> str:
        events, _, _ = queue.get_events()
        return events[0].request.headers["x-forwarded-for"]

    waiting += [event("F") for _ in range(5)] + [event("A"), event("B")]  # first come, first served: F F F F F A B
    assert [next_address() for _ in range(7)] == ["F", "A", "B", "F", "F", "F", "F"]

    queue.active_jobs[0] = [event("F")]  # F has a call running there...
    waiting.append(event("A"))
    assert next_address() == "A"  # ...and A has had the latest turn; yet A, not running, goes before F
    waiting += [event("F"), event("A")]
    assert [next_address() for _ in range(2)] == ["A", "F"]
