"""Error messages a web client sees name what it can act on, nothing of the server.

Gradio builds every error a client receives in one function, ``gradio.utils.error_payload``
(the queue's and the direct API's). Its messages carried the server's insides: the working
directory, the weights cache under ``/root`` (which also told that the server runs as root),
``<demos.upload.UploadedImage object at 0x...>``, pydantic's and Gradio's versions, absolute
temporary paths. The app wraps that function: known errors get a message of their own, and every
message loses paths, object addresses and version links. The original is logged on the server,
where the operator needs it.
"""

from __future__ import annotations

import functools
import logging
import re

import pydantic
from gradio import queueing, utils
from gradio.exceptions import InvalidPathError

log = logging.getLogger(__name__)

_OBJECT = re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>")
_PYDANTIC_LINK = re.compile(r"\s*For further information visit https?://errors\.pydantic\.dev/\S*")
_PYDANTIC_DETAIL = re.compile(r"\s*\[type=[^\]]*\]")
_VERSION = re.compile(r"\b(gradio|pydantic|python|torch)([ =v-]+)\d+(\.\d+)+[\w.+-]*", re.IGNORECASE)
# An absolute path: a "/" not inside a URL or a word, then at least one more segment.
_PATH = re.compile(r"(?<![\w:/.~%-])(/[^\s'\"`,;()<>\[\]{}]+)")
_PUBLIC_ROUTES = ("/gradio_api/",)

NOT_UPLOADED = (
    "That file is not one uploaded to this server. Upload it first (POST /gradio_api/upload) "
    "and send the path the upload returns."
)


def user_message(text: str) -> str:
    """``text`` without paths (each becomes its last part), object addresses and version numbers."""
    text = _PYDANTIC_LINK.sub("", text)
    text = _PYDANTIC_DETAIL.sub("", text)
    text = _OBJECT.sub("an input", text)
    text = _VERSION.sub(lambda m: m.group(1), text)
    return _PATH.sub(_path_to_name, text)


def _path_to_name(match: re.Match) -> str:
    path = match.group(1)
    if path.startswith(_PUBLIC_ROUTES):
        return path
    name = path.rstrip("/").rsplit("/", 1)[-1]
    return name or "a server folder"


def message_for(error: BaseException | None, shown: str) -> str:
    """The message a client gets for ``error``, whose message as Gradio would show it is ``shown``."""
    if isinstance(error, InvalidPathError):
        return NOT_UPLOADED
    if isinstance(error, pydantic.ValidationError):
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in error.errors()[:3])
        return user_message(f"The request's values do not fit this endpoint ({problems}). See /gradio_api/info.")
    return user_message(shown)


def sanitise_gradio_errors() -> None:
    """Wrap ``error_payload`` where Gradio's routes and queue call it (idempotent)."""
    original = getattr(utils.error_payload, "__wrapped__", utils.error_payload)

    @functools.wraps(original)
    def error_payload(error: BaseException | None, show_error: bool):
        content = original(error, show_error)
        shown = content.get("error")
        if isinstance(shown, str):
            content["error"] = message_for(error, shown)
            if content["error"] != shown:
                log.info("error shown as %r: %s", content["error"], shown)
        return content

    utils.error_payload = error_payload
    queueing.error_payload = error_payload  # imported by name there
