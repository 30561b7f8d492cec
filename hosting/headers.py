"""Response headers every page and file carries, for a site others may embed.

- ``X-Content-Type-Options: nosniff``: a browser takes a served file for what its type says, so
  an uploaded "image" that holds HTML is never run as a page.
- ``Content-Security-Policy: frame-ancestors``: only this site, Hugging Face and its Spaces
  (``https://huggingface.co``, ``https://*.hf.space``) may show the app in a frame; a Space's page
  embeds it so, any other site cannot dress it up as its own (clickjacking). ``X-Frame-Options``
  cannot name those hosts, so it is not sent; every current browser follows the policy instead.
- ``Referrer-Policy: strict-origin-when-cross-origin``: links out of the app tell other sites the
  app's host, never a page address with a session or a file path in it.
"""

from __future__ import annotations

FRAME_ANCESTORS = "'self' https://huggingface.co https://*.hf.space"
HEADERS = {
    b"x-content-type-options": b"nosniff",
    b"content-security-policy": f"frame-ancestors {FRAME_ANCESTORS}".encode(),
    b"referrer-policy": b"strict-origin-when-cross-origin",
}


class SecurityHeaders:
    """ASGI middleware adding ``HEADERS`` to every HTTP response that does not set them itself."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message) -> None:
            if message["type"] == "http.response.start":
                present = {key.lower() for key, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *((k, v) for k, v in HEADERS.items() if k not in present)]
            await send(message)

        await self.app(scope, receive, with_headers)
