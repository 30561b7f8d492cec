"""The public-hosting limits: one dataclass, its command-line flags and their defaults.

Each limit has a flag and a ``DVL_*`` variable (a Space sets variables, not flags); the README's
"Public hosting" section lists them with what a client gets past each one.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

import settings as run_settings  # the app's one settings module (this one only adds the hosting flags)

MB = 2**20


@dataclass(frozen=True)
class Limits:
    max_request_bytes: int  # one request's body, whatever its route
    max_files_per_upload: int  # parts in one POST /gradio_api/upload
    client_bytes_per_age: int  # what one client may send within the cache age
    cache_age_s: float
    queued_per_ip: int  # events one address may have waiting or running
    queued_per_session: int  # events one session (a page, an MCP client) may have waiting or running
    queued_per_endpoint: int  # events one address may have waiting or running in one endpoint's queue
    forwarded_hops: int  # trusted proxies in front of the app that append to X-Forwarded-For
    deep_links: bool  # Gradio's /gradio_api/deep_link route


def _env(name: str, default: str) -> str:
    return run_settings.read(name, default, str)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The hosting flags, added to app.py's parser."""
    on_space = run_settings.on_space()
    parser.add_argument(
        "--max-request-mb", type=float, default=float(_env("DVL_MAX_REQUEST_MB", "0")) or None,
        help="largest request body, any route (default: --max-upload-mb as base64 plus 1 MB, 34.3 MB)",
    )
    parser.add_argument(
        "--max-files-per-upload", type=int, default=int(_env("DVL_MAX_FILES_PER_UPLOAD", "200")),
        help="files in one upload request (default 200, the retrieval gallery's most)",
    )
    parser.add_argument(
        "--max-client-mb", type=float, default=float(_env("DVL_MAX_CLIENT_MB", "512")),
        help="bytes one client may send within --cache-age-min (default 512)",
    )
    parser.add_argument(
        "--max-queued-per-ip", type=int, default=int(_env("DVL_MAX_QUEUED_PER_IP", "16")),
        help="requests one address may have waiting or running at once (default 16)",
    )
    parser.add_argument(
        "--max-queued-per-session", type=int, default=int(_env("DVL_MAX_QUEUED_PER_SESSION", "4")),
        help="requests one session (a page, an MCP client) may have waiting or running at once (default 4)",
    )
    parser.add_argument(
        "--max-queued-per-endpoint", type=int, default=int(_env("DVL_MAX_QUEUED_PER_ENDPOINT", "4")),
        help="requests one address may have waiting or running in one endpoint at once (default 4)",
    )
    parser.add_argument(
        "--forwarded-hops", type=int, default=int(_env("DVL_FORWARDED_HOPS", "1" if on_space else "0")),
        help="proxies in front of the app whose X-Forwarded-For entries are trusted (default 1 on Spaces, else 0)",
    )
    parser.add_argument(
        "--deep-links", action="store_true", default=run_settings.switch("DVL_DEEP_LINKS") is True,
        help="serve Gradio's /gradio_api/deep_link (off: anyone holding a session id could save and read that session's inputs)",
    )


def limits_from(args: argparse.Namespace) -> Limits:
    """The limits ``args`` asks for; the request cap follows the upload cap unless set."""
    upload_mb = args.max_upload_mb
    request_mb = args.max_request_mb or math.ceil(upload_mb * 4 / 3 * 10) / 10 + 1  # a data URL is base64: 4/3 of the file
    return Limits(
        max_request_bytes=int(request_mb * MB),
        max_files_per_upload=args.max_files_per_upload,
        client_bytes_per_age=int(args.max_client_mb * MB),
        cache_age_s=args.cache_age_min * 60,
        queued_per_ip=args.max_queued_per_ip,
        queued_per_session=args.max_queued_per_session,
        queued_per_endpoint=args.max_queued_per_endpoint,
        forwarded_hops=args.forwarded_hops,
        deep_links=args.deep_links,
    )
