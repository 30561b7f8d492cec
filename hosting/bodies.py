"""Bounded request bodies: one ASGI middleware in front of every route, Gradio's and MCP's.

Gradio caps each uploaded file (``max_file_size``) but not a request: ten 24 MB files in one
upload stored 240 MB, a 55 MB JSON body with a data URL was read and processed in full, and
``/gradio_api/component_server`` read 192 MB of files before it found no such function. Here a
body is refused by its ``Content-Length`` before a byte is read, and by counting the bytes as
they stream in when it has none; an upload's parts are counted as they stream too; and what one
client sends is summed over the cache age (files live that long), so no client can fill the
upload folder.

An upload refused or dropped midway must leave nothing behind. Gradio's multipart parser
deletes its temporary files only when it raises ``MultiPartException``; a dropped connection
raises Starlette's ``ClientDisconnect`` instead and left a 10 MB orphan until the sweep. So on
the upload route every refusal, and a disconnect, reach the parser as ``MultiPartException``.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass

from gradio.route_utils import MultiPartException
from starlette.exceptions import HTTPException
from starlette.responses import PlainTextResponse

from .clients import scope_ip
from .settings import MB, Limits

UPLOAD_PATH = "/gradio_api/upload"
COMPONENT_SERVER_PATH = "/gradio_api/component_server"
COMPONENT_SERVER_BYTES = 1 * MB  # its calls are small JSON; this app has no component server functions


class Ledger:
    """Bytes each client sent within the last ``age_s`` seconds."""

    def __init__(self, age_s: float) -> None:
        self.age_s = age_s
        self._sent: dict[str, collections.deque[tuple[float, int]]] = {}
        self._lock = threading.Lock()

    def total(self, client: str) -> int:
        with self._lock:
            return sum(n for _, n in self._fresh(client))

    def add(self, client: str, count: int) -> int:
        """Record ``count`` more bytes from ``client``; returns its total within the age."""
        with self._lock:
            sent = self._fresh(client)
            sent.append((time.monotonic(), count))
            return sum(n for _, n in sent)

    def _fresh(self, client: str) -> collections.deque[tuple[float, int]]:
        sent = self._sent.setdefault(client, collections.deque())
        deadline = time.monotonic() - self.age_s
        while sent and sent[0][0] < deadline:
            sent.popleft()
        for other in [c for c, s in self._sent.items() if not s and c != client]:  # forget idle clients
            del self._sent[other]
        return sent


@dataclass(frozen=True)
class Refused:
    """What a refused client is told."""

    status: int
    message: str


class BodyLimits:
    """The ASGI middleware (see the module docstring)."""

    def __init__(self, app, limits: Limits) -> None:
        self.app = app
        self.limits = limits
        self.ledger = Ledger(limits.cache_age_s)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        path = scope["path"].rstrip("/")
        headers = dict((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope.get("headers", []))
        client = scope_ip(scope, self.limits.forwarded_hops)
        try:
            length = int(headers.get("content-length", "0") or 0)
        except ValueError:
            length = 0
        refusal = self._refusal_before_reading(path, headers, client, length)
        if refusal is not None:
            return await PlainTextResponse(refusal.message, status_code=refusal.status)(scope, receive, send)
        await self.app(scope, self._counting(receive, path, headers, client), send)

    def _refusal_before_reading(self, path: str, headers: dict[str, str], client: str, length: int) -> Refused | None:
        """What can be refused from the headers alone."""
        if path == COMPONENT_SERVER_PATH and (
            headers.get("content-type", "").startswith("multipart/") or length > COMPONENT_SERVER_BYTES
        ):
            return Refused(413, "This route takes no files and at most 1 MB.")
        if length > self.limits.max_request_bytes:
            return self._too_large()
        if length and self.ledger.total(client) + length > self.limits.client_bytes_per_age:
            return self._over_share()
        return None

    def _too_large(self) -> Refused:
        # "maximum allowed size" is what Gradio's upload route (and gradio_client) answer 413 by.
        return Refused(413, f"Request exceeds the maximum allowed size of {self.limits.max_request_bytes / MB:.1f} MB. Send a smaller file.")

    def _over_share(self) -> Refused:
        minutes = self.limits.cache_age_s / 60
        return Refused(
            429, f"You have sent {self.limits.client_bytes_per_age / MB:.0f} MB in the last {minutes:.0f} minutes, "
            "the most one client may. Try again later.",
        )

    def _counting(self, receive, path: str, headers: dict[str, str], client: str):
        """``receive`` that counts the body's bytes and parts and raises past a limit or on a dropped connection."""
        limits, ledger = self.limits, self.ledger
        is_upload = path == UPLOAD_PATH
        cap = COMPONENT_SERVER_BYTES if path == COMPONENT_SERVER_PATH else limits.max_request_bytes
        parts = _PartCounter(headers.get("content-type", "")) if is_upload else None
        total = 0

        def refuse(refused: Refused) -> Exception:
            """The exception that makes the route answer ``refused``: routes and mounted apps (MCP) alike."""
            if is_upload:  # the parser then deletes its temporary files, and the route answers 413 or 400
                return MultiPartException(refused.message)
            return HTTPException(refused.status, refused.message)

        async def counted():
            nonlocal total
            message = await receive()
            if message["type"] == "http.disconnect":
                if is_upload:
                    raise refuse(Refused(400, "The upload was interrupted."))
                return message
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > cap:
                raise refuse(self._too_large())
            if chunk and ledger.add(client, len(chunk)) > limits.client_bytes_per_age:
                raise refuse(self._over_share())
            if parts is not None and parts.feed(chunk) > limits.max_files_per_upload:
                raise refuse(Refused(413, f"Too many files in one upload: at most {limits.max_files_per_upload}."))
            return message

        return counted


class _PartCounter:
    """Counts a multipart body's parts by their boundary lines, across chunk borders."""

    def __init__(self, content_type: str) -> None:
        boundary = next((p.split("=", 1)[1].strip().strip('"') for p in content_type.split(";") if p.strip().startswith("boundary=")), "")
        self.marker = b"--" + boundary.encode("latin-1") if boundary else b""
        self.seen = 0
        self.tail = b""  # shorter than the marker, so a marker is never counted twice

    def feed(self, chunk: bytes) -> int:
        """Boundary lines so far, less one: the parts, once the closing line has come."""
        if not self.marker:
            return 0
        window = self.tail + chunk
        self.seen += window.count(self.marker)
        self.tail = window[-(len(self.marker) - 1):]
        return max(0, self.seen - 1)
