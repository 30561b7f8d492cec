"""``make soak``: a mixed load over every tab's endpoint, as a public Space sees it.

    python -m bench.soak                                   # 2,000 requests, 32 clients, files kept 1 minute
    python -m bench.soak --requests 200 --clients 8 --cache-age-min 0.1

Each client is one persistent HTTP connection (Gradio's REST API: upload, call, event stream,
download the result files, as a page does), and every request sends a distinct image: a
ShapesWorld scene or uniform noise of 32, 128 or 700 px, in turn (``PICTURES``), so every
endpoint meets each kind. The app runs as its own process (``bench.server.AppServer``) on the
shipped local models. The table: answered, errors (the stream ended with ``event: error``, the
app's own message: a failure like any other), 5xx answers, requests left hanging, p50/p95 per
endpoint; the server's RSS at start, after the warm-up (the first 200 requests of the same mix:
every model loaded, the bounded caches filled), at the end and once the cache age has passed (the
warm-up's and the last reading after the server idled past its minute's heap trim; the growth is
between those two); the temp folders' size before, at the end, and once the cache age has passed. A full queue counts as "busy" (Gradio's 503 "Queue is full", sent at once).
"""

from __future__ import annotations

import argparse
import base64
import io
import itertools
import json
import os
import stat
import struct
import sys
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

import shapesworld

from . import machine
from .server import AppServer

# endpoint -> the request's values after the image (the tab's controls), on the shipped local models
REQUESTS: dict[str, list] = {
    "segment": ["unet-shapes", 0.6],
    "depth": ["unet-depth-shapes"],
    "detect": ["fasterrcnn-shapes", 0.5, 0.5, [], 100],
    "instances": ["maskrcnn-shapes", 0.5, 0.5, True, True, 100],
    "pose": ["keypointrcnn-shapes", 0.5, 2.0, 20],
    "caption": ["blip-caption-shapes", "", "nucleus sampling", 3, 0.9, 1.0, 20, 1, 0],
    "answer": ["blip-vqa-shapes", "how many circles are there?"],
    "classify": [None, "red circle, blue square, green star, yellow ring, purple triangle", True, "a photo of a {}.", 1.0, "clip-shapes"],
    "retrieve": ["simclr-shapes", 5, None],
    "generate": ["a large red triangle", "", 0, 10, 2.0, "DPM-Solver++", 1, "diffusion-shapes"],  # the seed varies instead of an image
}
HANG_S = 300  # a request with no answer after this long is counted as left hanging
TRIM_S = 60  # app.py returns freed heap to the system (malloc_trim) this often
PICTURES: tuple[int | None, ...] = (None, 32, 128, 700)  # the requests' images in turn: a scene, then uniform noise of that side


@dataclass(frozen=True)
class Picture:
    """One request's image, made when it is sent (2,000 of them would be 800 MB as files).

    ``side`` None: the ShapesWorld scene ``seed``; else uniform RGB noise ``side`` px square, which no
    model was trained on. /generate takes no image and uses ``seed`` as its seed.
    """

    seed: int
    side: int | None = None

    @property
    def name(self) -> str:
        return "scene" if self.side is None else f"noise {self.side} px"

    def png(self) -> bytes:
        if self.side is None:
            pixels = shapesworld.generate(self.seed).image
        else:
            pixels = np.random.default_rng(self.seed).integers(0, 256, (self.side, self.side, 3), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        return buffer.getvalue()


@dataclass
class Outcome:
    endpoint: str
    kind: str  # answered | error | busy | 5xx | hung
    seconds: float
    detail: str = ""
    picture: str = ""  # Picture.name of its image


@dataclass
class SoakReport:
    requests: int
    clients: int
    outcomes: list[Outcome] = field(default_factory=list)
    rss: dict[str, int] = field(default_factory=dict)
    disk: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    hostile: list[Outcome] = field(default_factory=list)  # the hostile client's requests (soak(hostile=True))

    def p95(self, endpoint: str) -> float | None:
        times = [o.seconds for o in self.outcomes if o.endpoint == endpoint and o.kind == "answered"]
        return float(np.percentile(times, 95)) if times else None

    def hostile_markdown(self) -> str:
        """The hostile client's requests by kind and outcome."""
        counts: dict[tuple[str, str], int] = {}
        for o in self.hostile:
            counts[o.endpoint, o.kind] = counts.get((o.endpoint, o.kind), 0) + 1
        return "Hostile client: " + " · ".join(f"{name} {kind} {n}" for (name, kind), n in sorted(counts.items()))

    def count(self, kind: str) -> int:
        return sum(o.kind == kind for o in self.outcomes)

    def rss_growth_after_warmup(self) -> float:
        """RSS growth over the measured load: from after the warm-up to after the age when read, else to the end."""
        return self.rss.get("after the age", self.rss["end"]) / self.rss["after warm-up"] - 1

    def failures_markdown(self, most: int = 5) -> str:
        """The first failures, each with its image kind and what the server said."""
        failed = [o for o in self.outcomes if o.kind != "answered"]
        return "\n".join(f"- /{o.endpoint} on {o.picture}: {o.kind} {o.detail}" for o in failed[:most]) + (
            f"\n- ... {len(failed) - most} more" if len(failed) > most else "")

    def markdown(self) -> str:
        rows = ["| endpoint | requests | answered | errors | busy | 5xx | hung | p50 ms | p95 ms |", "|---|---|---|---|---|---|---|---|---|"]
        for endpoint in REQUESTS:
            mine = [o for o in self.outcomes if o.endpoint == endpoint]
            times = [o.seconds * 1000 for o in mine if o.kind == "answered"]
            p50, p95 = (f"{np.percentile(times, q):.0f}" for q in (50, 95)) if times else ("—", "—")
            counts = [sum(o.kind == k for o in mine) for k in ("answered", "error", "busy", "5xx", "hung")]
            rows.append(f"| /{endpoint} | {len(mine)} | " + " | ".join(map(str, counts)) + f" | {p50} | {p95} |")
        mb = 2**20
        rss = " · ".join(f"{k} {v / mb:.0f} MB" for k, v in self.rss.items())
        disk = " · ".join(f"{k} {v / mb:.1f} MB" for k, v in self.disk.items())
        return "\n".join([
            f"Soak: {self.requests} requests from {self.clients} clients in {self.wall_s:.0f} s "
            f"({self.requests / max(self.wall_s, 1e-9):.1f} requests/s)", "", *rows, "",
            f"Server RSS: {rss} (growth after warm-up {self.rss_growth_after_warmup():+.1%}; target within 10%)",
            f"Temp disk: {disk} (target: back within 50 MB of the start once the age has passed)",
            *(["", "Failed requests:", self.failures_markdown()] if self.count("answered") < len(self.outcomes) else []),
        ])


def folder_bytes(folder: Path) -> int:
    """Bytes of the files under ``folder``; files the app's sweep deletes while this walks are skipped."""
    total = 0
    for parent, _, names in os.walk(folder):  # os.walk skips folders that vanish under it
        for name in names:
            try:
                info = os.lstat(os.path.join(parent, name))
            except FileNotFoundError:
                continue
            total += info.st_size if stat.S_ISREG(info.st_mode) else 0  # links are not counted twice
    return total


def bomb_png(side: int = 10_000) -> bytes:
    """A valid all-black greyscale PNG of ``side`` x ``side`` pixels that is a few hundred KB: a decompression bomb.

    Compressed row by row, so making it costs this process no more than a row.
    """
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor, row = zlib.compressobj(9), bytes(side + 1)  # filter byte 0, then the row
    pixels = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def data_url(png: bytes) -> dict:
    """An image argument as a ``data:`` URL, as REST clients may send one instead of uploading."""
    return {"path": None, "url": "data:image/png;base64," + base64.b64encode(png).decode(), "meta": {"_type": "gradio.FileData"}}


def read_events(stream: httpx.Response) -> list[tuple[str, str]]:
    """(event, data) of each message of a Gradio event stream, heartbeats left out."""
    events, name = [], ""
    for line in stream.iter_lines():
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:") and name != "heartbeat":
            events.append((name, line[5:].strip()))
    return events


class Connection:
    """One client: Gradio's REST API over one persistent HTTP connection, from ``address`` when given.

    The app runs behind one trusted proxy in the soak (``--forwarded-hops 1``), so each client's
    address is the X-Forwarded-For entry it sends, as on a Space; without one, the loopback.
    """

    def __init__(self, url: str, address: str | None = None) -> None:
        headers = {"X-Forwarded-For": address} if address else {}
        self.http = httpx.Client(base_url=url, timeout=HANG_S, headers=headers)

    def request(self, endpoint: str, picture: Picture) -> Outcome:
        png = picture.png() if endpoint != "generate" else b""  # made before the clock starts
        start = time.perf_counter()
        try:
            kind, detail = self._call(endpoint, picture.seed, png)
        except httpx.TimeoutException:
            kind, detail = "hung", "no answer"
        except httpx.HTTPStatusError as error:
            status = error.response.status_code
            busy = status == 503 and "queue is full" in error.response.text.lower()
            kind, detail = ("busy" if busy else "5xx" if status >= 500 else "error"), error.response.text[:200]
        return Outcome(endpoint, kind, time.perf_counter() - start, detail, picture.name)

    def _inputs(self, endpoint: str, seed: int, png: bytes) -> list:
        """The request's data: the image uploaded first; for /generate, which takes none, ``seed`` as its seed."""
        if endpoint == "generate":
            prompt, negative, _, *rest = REQUESTS[endpoint]
            return [prompt, negative, seed, *rest]
        uploaded = self.http.post("gradio_api/upload", files=[("files", (f"{seed}.png", png, "image/png"))])
        uploaded.raise_for_status()
        return [{"path": uploaded.json()[0], "meta": {"_type": "gradio.FileData"}}, *REQUESTS[endpoint]]

    def _call(self, endpoint: str, seed: int, png: bytes) -> tuple[str, str]:
        """("answered", "") only when the stream ends with ``complete`` and no ``error`` came; else ("error", what it said)."""
        called = self.http.post(f"gradio_api/call/{endpoint}", json={"data": self._inputs(endpoint, seed, png)})
        called.raise_for_status()
        with self.http.stream("GET", f"gradio_api/call/{endpoint}/{called.json()['event_id']}") as stream:
            if stream.status_code >= 400:
                stream.read()  # so the error can tell what the server said
            stream.raise_for_status()
            events = read_events(stream)
        if errors := [data for name, data in events if name == "error"]:
            return "error", errors[-1][:200]  # the app's gr.Error message, or Gradio's
        if not events or events[-1][0] != "complete":
            return "error", f"the stream ended with {events[-1][0] if events else 'nothing'}"
        for item in json.loads(events[-1][1]):  # fetch the result files, as the page does
            if isinstance(item, dict) and item.get("url"):
                self.http.get(item["url"]).raise_for_status()
        return "answered", ""

    def close(self) -> None:
        self.http.close()


FLOODER = "203.0.113.66"  # the hostile client's address (a documentation range)


def hostile_load(url: str, stop: threading.Event, flood: int = 40) -> list[Outcome]:
    """Until ``stop``: a data-URL bomb, a body past the request cap, and ``flood`` /detect calls at once, from one client.

    Each outcome's kind is "refused" (what the limits should answer), "accepted" (a flood call queued
    within the client's share) or what went wrong otherwise.
    """
    outcomes: list[Outcome] = []
    bomb = {"data": [data_url(bomb_png()), *REQUESTS["segment"]]}
    oversized = bytes(40 * 2**20)
    detect = {"data": [data_url(bomb_png(64)), *REQUESTS["detect"]]}
    with httpx.Client(base_url=url, timeout=HANG_S, headers={"X-Forwarded-For": FLOODER}) as http, ThreadPoolExecutor(8) as pool:

        def timed(name: str, send, refused_when) -> Outcome:
            start = time.perf_counter()
            try:
                response = send()
                kind = "refused" if refused_when(response) else "accepted" if response.status_code == 200 else f"HTTP {response.status_code}"
            except httpx.HTTPError as error:
                kind = type(error).__name__
            return Outcome(name, kind, time.perf_counter() - start)

        while not stop.is_set():
            outcomes.append(timed("bomb", lambda: _bomb_call(http, bomb), lambda r: r.status_code == 200 and "too large" in r.text))
            outcomes.append(timed("oversized", lambda: http.post("gradio_api/upload", content=oversized), lambda r: r.status_code == 413))
            outcomes += pool.map(
                lambda _: timed("flood", lambda: http.post("gradio_api/call/detect", json=detect), lambda r: r.status_code == 429), range(flood)
            )
            stop.wait(2.0)
    return outcomes


def _bomb_call(http: httpx.Client, body: dict) -> httpx.Response:
    started = http.post("gradio_api/call/segment", json=body)
    return http.get(f"gradio_api/call/segment/{started.json()['event_id']}") if started.status_code == 200 else started


def soak(
    requests: int = 2000, clients: int = 32, warmup: int = 200, cache_age_min: float = 1.0, wait_for_age: bool = True, log=print,
    hostile: bool = False, settle: bool = True,
) -> SoakReport:
    """Run the load against a fresh app process and measure it (see the module docstring).

    ``hostile``: one more client sends bombs, oversized bodies and floods during the measured load
    (``hostile_load``); its outcomes go to ``report.hostile``, the normal clients' to ``report.outcomes``.
    ``settle``: read the RSS after the warm-up and after the age only once the server has idled past
    its heap trim (``TRIM_S``). Read straight after a burst, RSS holds what the burst freed but the
    allocator has not yet returned: in a 270-request run it swung between 1.5 and 2.4 GB with the
    minute's trim, so "end" alone tells when the last trim ran, not whether memory grew.
    """
    report = SoakReport(requests, clients)
    endpoints = list(REQUESTS)
    with AppServer(args=("--cache-age-min", str(cache_age_min), "--forwarded-hops", "1")) as server:
        temp = server.tmp / "tmp"
        first = shapesworld.SPLITS["test"].start + 500_000
        report.rss["start"] = machine.rss_bytes(server.pid)
        report.disk["start"] = folder_bytes(temp)
        # each round over the endpoints takes the next kind of image: every endpoint meets every kind within
        # len(PICTURES) rounds, however many endpoints there are
        jobs = [
            (endpoint, Picture(first + i, PICTURES[i // len(endpoints) % len(PICTURES)]))
            for i, endpoint in enumerate(itertools.islice(itertools.cycle(endpoints), warmup + requests))
        ]
        local = threading.local()
        connections: list[Connection] = []
        numbers = itertools.count(1)  # next() on it is atomic: threads starting at once get distinct addresses

        def run(job: tuple[str, Picture]) -> Outcome:
            if not hasattr(local, "connection"):
                local.connection = Connection(server.url, address=f"198.51.100.{next(numbers)}")
                connections.append(local.connection)
            return local.connection.request(*job)

        with ThreadPoolExecutor(clients) as pool:
            warm = list(pool.map(run, jobs[:warmup]))  # loads every model and fills the bounded caches
            if failed := [o for o in warm if o.kind != "answered"]:
                raise RuntimeError(f"the warm-up failed: /{failed[0].endpoint} on {failed[0].picture}: {failed[0].kind} {failed[0].detail}")
            time.sleep(TRIM_S + 1 if settle else 0)
            report.rss["after warm-up"] = machine.rss_bytes(server.pid)
            stop = threading.Event()
            attacker = ThreadPoolExecutor(1).submit(hostile_load, server.url, stop) if hostile else None
            start = time.perf_counter()
            for i, outcome in enumerate(pool.map(run, jobs[warmup:]), 1):
                report.outcomes.append(outcome)
                if i % max(1, requests // 10) == 0:
                    log(f"[{time.perf_counter() - start:6.1f}s] {i}/{requests} requests", file=sys.stderr)
            report.wall_s = time.perf_counter() - start
            stop.set()
            report.hostile = attacker.result() if attacker else []
        for connection in connections:
            connection.close()
        report.rss["end"] = machine.rss_bytes(server.pid)
        report.disk["end"] = folder_bytes(temp)
        if wait_for_age:
            age_s = cache_age_min * 60
            swept_s = age_s + max(1, min(600, age_s / 4)) + 2  # the age, one sweep interval, a margin
            time.sleep(max(swept_s, TRIM_S + 1 if settle else 0))
            report.disk["after the age"] = folder_bytes(temp)
            report.rss["after the age"] = machine.rss_bytes(server.pid)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=200, help="requests before the measured load: models loaded, caches filled")
    parser.add_argument("--cache-age-min", type=float, default=1.0, help="the app's --cache-age-min (default 1)")
    parser.add_argument("--calm-only", action="store_true", help="skip the second run with a hostile client beside the load")
    args = parser.parse_args(argv)
    calm = soak(args.requests, args.clients, args.warmup, args.cache_age_min)
    print(calm.markdown())
    failed = not_answered(calm)  # an error event is a failure too: every request here is one the app should answer
    if args.calm_only:
        return 1 if failed else 0
    print("\nThe same load again, with a hostile client beside it (bombs, oversized bodies, floods of /detect):\n")
    stormy = soak(args.requests, args.clients, args.warmup, args.cache_age_min, hostile=True)
    print(stormy.markdown())
    print(stormy.hostile_markdown())
    print(compare(calm, stormy))
    return 1 if failed or not_answered(stormy) or slowest_ratio(calm, stormy) > 2 or stormy.rss_growth_after_warmup() > 0.10 else 0


def not_answered(report: SoakReport) -> int:
    return sum(o.kind != "answered" for o in report.outcomes)


def slowest_ratio(calm: SoakReport, stormy: SoakReport) -> float:
    """The largest p95 ratio, hostile run over calm run, over the endpoints."""
    ratios = [s / c for e in REQUESTS if (c := calm.p95(e)) and (s := stormy.p95(e))]
    return max(ratios, default=0.0)


def compare(calm: SoakReport, stormy: SoakReport) -> str:
    """What the normal clients saw with the hostile client beside them, against the calm run (the targets in brackets)."""
    return (
        f"Normal clients beside the hostile one: {not_answered(stormy)} of {len(stormy.outcomes)} requests not answered (target 0); "
        f"p95 at most {slowest_ratio(calm, stormy):.2f}x the calm run's (target within 2x); "
        f"RSS after warm-up {stormy.rss_growth_after_warmup():+.1%} (target within 10%)"
    )


if __name__ == "__main__":
    sys.exit(main())
