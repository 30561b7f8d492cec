"""End-to-end numbers through the app's public API (``/segment``, ``/detect``) over HTTP, two ways.

- ``gradio_client``, as the README shows it. It opens a fresh ``httpx`` connection (and builds a
  new TLS context, ~20 ms here, even for plain http) for each of its ~6 calls per request, so
  its own overhead is about 100 ms on this machine whatever the app does.
- Gradio's documented REST protocol (upload, ``POST /gradio_api/call/<endpoint>``, read the event
  stream, download the result files) over one persistent connection: what the server and the
  network add, which is what the issue's HTTP targets are about.

A round trip is what an API user (or the page) waits for: upload of the image file, the queue,
reading and validating the image, the prediction, rendering the results (see each task's
``response_covers`` in bench/tasks.py), streaming the result back, and the client downloading the
result files. Every request carries a different image (one pixel changed, see bench/images.py),
so the app's per-image prediction cache never answers and each request runs the network, as for
a new upload. One app process serves every task's models, in the order given.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from gradio_client import Client, handle_file

from . import machine, tasks
from .server import AppServer
from .stats import Samples, timed
from .tasks import Task


@dataclass
class ApiResult:
    name: str
    task: str
    first_request_s: float | None = None  # the server's first request for this model: includes loading it
    round_trip: Samples = field(default_factory=Samples)  # gradio_client
    rest_round_trip: Samples = field(default_factory=Samples)  # REST over one persistent connection
    warmup: int = 0
    server_rss_after: int | None = None
    error: str | None = None

    def to_dict(self) -> dict:
        return {
            "name": self.name, "task": self.task, "first_request_s": self.first_request_s,
            "round_trip": self.round_trip.summary(), "rest_round_trip": self.rest_round_trip.summary(),
            "warmup": self.warmup, "server_rss_after_bytes": self.server_rss_after, "error": self.error,
        }


@dataclass
class ApiRun:
    ready_s: float | None = None  # Popen -> GET / answered 200
    client_connect_s: float | None = None  # gradio_client.Client(url): fetches the config and API info
    stack_warmup_s: float | None = None  # the first request of all (no model load), see ``warm_up_stack``
    results: list[ApiResult] = field(default_factory=list)
    server_peak_rss: int | None = None  # VmHWM of the app process over its whole life
    error: str | None = None

    def to_dict(self) -> dict:
        return {
            "ready_s": self.ready_s, "client_connect_s": self.client_connect_s, "stack_warmup_s": self.stack_warmup_s,
            "server_peak_rss_bytes": self.server_peak_rss, "error": self.error, "results": [r.to_dict() for r in self.results],
        }


def call(client: Client, task: Task, path: Path, model: str) -> tuple:
    """One request through ``gradio_client``, as the README shows it."""
    return client.predict(handle_file(str(path)), *task.request(model), api_name=f"/{task.endpoint}")


class RestClient:
    """Gradio's REST API over one persistent connection: upload, call, event stream, downloads."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=120)

    def call(self, task: Task, path: Path, model: str) -> list:
        with open(path, "rb") as handle:
            uploaded = self.http.post("gradio_api/upload", files=[("files", (path.name, handle, "image/png"))])
        uploaded.raise_for_status()
        image = {"path": uploaded.json()[0], "meta": {"_type": "gradio.FileData"}}
        called = self.http.post(f"gradio_api/call/{task.endpoint}", json={"data": [image, *task.request(model)]})
        called.raise_for_status()
        stream = self.http.get(f"gradio_api/call/{task.endpoint}/{called.json()['event_id']}")
        lines = stream.text.splitlines()
        if not lines or lines[0] != "event: complete":
            raise RuntimeError(f"/{task.endpoint} answered {stream.text[:200]!r}")
        outputs = json.loads(next(line for line in reversed(lines) if line.startswith("data:"))[5:])
        for item in outputs:  # download the result files, as a client that shows them would
            if isinstance(item, dict) and item.get("url"):
                self.http.get(item["url"]).raise_for_status()
        return outputs

    def close(self) -> None:
        self.http.close()


def warm_up_stack(client: Client, task: Task, path: Path) -> float:
    """One request for a model name that does not exist: upload, queue and error path, no model load.

    So the first request of the first benchmarked model is not also paying for the server's
    first request ever; the app answers it with its clear error message.
    """
    start = time.perf_counter()
    try:
        call(client, task, path, "no-such-model-bench-warmup")
    except Exception:  # noqa: BLE001 - the error answer is the expected outcome
        pass
    return time.perf_counter() - start


def measure_model(client: Client, rest: RestClient, server: AppServer, name: str, repeats: int, warmup: int, folder: Path) -> ApiResult:
    """First request, warm-up, then alternating gradio_client and REST calls, each on a new image."""
    task = tasks.of(name)
    result = ApiResult(name, task.name, warmup=warmup)
    paths = task.image(name).write_variants(folder / name, name, 1 + warmup + 2 * repeats)
    try:
        result.first_request_s, _ = timed(lambda: call(client, task, paths[0], name))
        for path in paths[1 : 1 + warmup]:
            call(client, task, path, name)
        timed_paths = paths[1 + warmup :]
        for via_client, via_rest in zip(timed_paths[::2], timed_paths[1::2]):
            result.round_trip.seconds.append(timed(lambda: call(client, task, via_client, name))[0])
            result.rest_round_trip.seconds.append(timed(lambda: rest.call(task, via_rest, name))[0])
    except Exception as error:  # noqa: BLE001 - report it in the table, go on with the next model
        result.error = f"{type(error).__name__}: {str(error)[:200]}"
    result.server_rss_after = machine.rss_bytes(server.pid)
    return result


def run(names: list[str], repeats: dict[str, int], warmup: dict[str, int]) -> ApiRun:
    """Start the app, then measure each model in order; the server is stopped whatever happens."""
    run = ApiRun()
    with tempfile.TemporaryDirectory(prefix="dvl-bench-api-") as tmp:
        folder = Path(tmp)
        try:
            with AppServer() as server:
                run.ready_s = server.ready_s
                run.client_connect_s, client = timed(
                    lambda: Client(server.url, verbose=False, download_files=str(folder / "downloads"), analytics_enabled=False)
                )
                rest = RestClient(server.url)
                first = tasks.of(names[0])
                probe = first.image(names[0]).write_variants(folder / "warmup", "warmup", 1)[0]
                run.stack_warmup_s = warm_up_stack(client, first, probe)
                for name in names:
                    run.results.append(measure_model(client, rest, server, name, repeats[name], warmup[name], folder))
                run.server_peak_rss = machine.peak_since_reset(server.pid)
                client.close()
                rest.close()
        except Exception as error:  # noqa: BLE001 - the in-process tables are still worth printing
            run.error = f"{type(error).__name__}: {error}"
    return run
