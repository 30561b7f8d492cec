"""The sweep of old files: uploads and result files deleted after a while, so a long-lived server's disk does not fill up.

It knows no tab: app.py names the folders to sweep and the examples to spare.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)


def prune_old_files(folders: list[Path], age_seconds: float, examples: Path, keep: Callable[[], set[str]] = set) -> int:
    """Delete files older than ``age_seconds`` under ``folders`` (and the folders they leave empty); returns how many.

    Covers the app's own result files (``demos.common.save_output``) and Gradio's upload cache. Gradio's own
    ``delete_cache`` sweep is not used: it iterates its file sets while request threads add to
    them, and under concurrent load it raises and stops for good (a soak left 158 MB behind).
    This sweep walks the folders instead. ``examples`` (the app's example folder) and everything in
    it is always spared; ``keep`` names further files to spare (Gradio's cached copies of the examples).
    """
    deadline, removed, spared = time.time() - age_seconds, 0, keep()
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):  # files before their folders
            if path.is_symlink() or examples in path.parents or path == examples or str(path) in spared:
                continue
            try:
                if path.is_file() and path.stat().st_mtime < deadline:
                    path.unlink()
                    removed += 1
                    if path.parent != folder and not any(path.parent.iterdir()):
                        path.parent.rmdir()  # Gradio's one-file folder per upload
                elif path.is_dir() and path.stat().st_mtime < deadline and not any(path.iterdir()):
                    path.rmdir()
            except OSError:  # a request or Gradio's own sweep took it first, or wrote into it meanwhile
                continue
    return removed


def prune_old_files_every(
    folders: list[Path], frequency_seconds: float, age_seconds: float, examples: Path, keep: Callable[[], set[str]] = set,
) -> threading.Thread:
    """Run ``prune_old_files`` in a daemon thread, every ``frequency_seconds``, for the life of the server."""

    def loop() -> None:
        while True:
            time.sleep(frequency_seconds)
            try:
                if removed := prune_old_files(folders, age_seconds, examples, keep):
                    log.info("deleted %d uploads and result files older than %.0f s", removed, age_seconds)
            except OSError:
                log.exception("could not prune %s", folders)

    thread = threading.Thread(target=loop, name="prune-old-files", daemon=True)
    thread.start()
    return thread
