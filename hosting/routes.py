"""Gradio routes a public app does not answer.

``/gradio_api/deep_link?session_hash=...`` saves a session's inputs (uploaded file paths among
them) as a ``state.json`` in the upload folder, readable by whoever asks for it; a session id is
all it takes. The app has no deep-link button, so the route is closed unless ``--deep-links``
asks for it. (``/monitoring`` is closed by ``launch(enable_monitoring=False)``.)
"""

from __future__ import annotations

from starlette.responses import PlainTextResponse

DEEP_LINK_PATH = "/gradio_api/deep_link"


class ClosedRoutes:
    """ASGI middleware answering 404 for the closed routes."""

    def __init__(self, app, deep_links: bool) -> None:
        self.app = app
        self.closed = () if deep_links else (DEEP_LINK_PATH,)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"].rstrip("/") in self.closed:
            return await PlainTextResponse("Not found: this server does not serve deep links.", status_code=404)(scope, receive, send)
        await self.app(scope, receive, send)
