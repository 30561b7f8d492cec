"""What a public Space needs beyond Gradio's own limits: one module per job.

- ``settings``: the limits, their flags and defaults;
- ``clients``: who a request comes from (address through trusted proxies, session);
- ``bodies``: bounded request bodies, uploads and what one client sends;
- ``fairness``: one client's share of the queue;
- ``errors``: messages without the server's insides;
- ``headers``, ``routes``, ``downloads``: response headers, closed routes, no leftovers from failed URL inputs.
- ``sweep``: old uploads and result files deleted, so the disk does not fill up.

app.py calls ``add_arguments`` while it parses its flags, ``middleware`` for
``launch(app_kwargs=...)`` and ``patch_gradio`` before launching. Importing the package imports
no Gradio (app.py parses its flags and sets Gradio's environment first), so the modules that
need Gradio are imported where they are used.
"""

from __future__ import annotations

from .settings import Limits, add_arguments, limits_from

__all__ = ["Limits", "add_arguments", "limits_from", "middleware", "patch_gradio"]


def middleware(limits: Limits) -> list:
    """The ASGI middleware, outermost first: headers on every answer, refusals before any route reads."""
    from starlette.middleware import Middleware

    from .bodies import BodyLimits
    from .headers import SecurityHeaders
    from .routes import ClosedRoutes

    return [Middleware(SecurityHeaders), Middleware(ClosedRoutes, deep_links=limits.deep_links), Middleware(BodyLimits, limits=limits)]


def patch_gradio(blocks, limits: Limits) -> None:
    """The workarounds inside Gradio: the queue's fair share, clean error messages, no folders from failed downloads.

    ``blocks`` must have its queue set up (``blocks.queue(...)``).
    """
    from .downloads import clean_failed_downloads
    from .errors import sanitise_gradio_errors
    from .fairness import share_queue

    share_queue(blocks._queue, limits)
    sanitise_gradio_errors()
    clean_failed_downloads()
