"""A URL input that fails to download leaves nothing in the upload folder.

Gradio makes a folder for a URL's file before it downloads it and leaves the folder when the
download fails (a private address refused, a 404): 50 failed URL inputs left 50 empty folders
until the sweep. The app wraps the download so a failure removes what it made.
"""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

from gradio import processing_utils


def clean_failed_downloads() -> None:
    """Wrap Gradio's ``async_ssrf_protected_download`` (idempotent)."""
    original = getattr(processing_utils.async_ssrf_protected_download, "__wrapped__", processing_utils.async_ssrf_protected_download)

    @functools.wraps(original)
    async def download(url: str, cache_dir: str) -> str:
        folder = Path(cache_dir) / processing_utils.hash_url(url)
        existed = folder.exists()
        try:
            return await original(url, cache_dir)
        except BaseException:
            if not existed:
                shutil.rmtree(folder, ignore_errors=True)
            raise

    processing_utils.async_ssrf_protected_download = download
