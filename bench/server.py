"""The real app as its own process: start it, time it, always stop it.

Used by the benchmarks and by the end-to-end tests (tests/conftest.py). Launched as a user
launches it:
``python app.py --port P --offline``, with TORCH_HOME pointing at the benchmark's weights.
Its TMPDIR is a private temporary folder, so Gradio's upload cache, the app's example files
and the mask PNGs it writes are deleted with it (and a start is a cold start: the app creates
its example images, as on a fresh machine or Space).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    """``with AppServer() as server:`` starts app.py and waits for the first served page.

    ``server.ready_s`` is the time from Popen until GET / answered 200: the start-up a user
    waits for after ``make run``.
    """

    def __init__(
        self, timeout_s: float = 120.0, poll_s: float = 0.05, log_path: Path | None = None, args: tuple[str, ...] = ()
    ) -> None:
        self.args = args  # more app.py flags
        self.timeout_s = timeout_s
        self.poll_s = poll_s
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.ready_s: float | None = None
        self.process: subprocess.Popen | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="dvl-bench-server-")
        self.tmp = Path(self._tmp.name)
        self.log_path = log_path or self.tmp / "app-server.log"  # pass one to keep the log afterwards

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def __enter__(self) -> "AppServer":
        server_tmp = self.tmp / "tmp"
        server_tmp.mkdir()
        env = {
            **os.environ,  # TORCH_HOME, DVL_OFFLINE, HF_HUB_OFFLINE set by bench.weights
            "PYTHONUNBUFFERED": "1",
            "GRADIO_ANALYTICS_ENABLED": "False",
            "TMPDIR": str(server_tmp),
            "GRADIO_TEMP_DIR": str(server_tmp / "gradio"),
        }
        try:
            with open(self.log_path, "w") as log:
                start = time.perf_counter()
                self.process = subprocess.Popen(
                    [sys.executable, "app.py", "--port", str(self.port), "--offline", *self.args],
                    cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                )
            self._wait_ready(start)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, start: float) -> None:
        assert self.process is not None
        while time.perf_counter() - start < self.timeout_s:
            if self.process.poll() is not None:
                raise RuntimeError(f"app.py exited with {self.process.returncode} before serving:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url, timeout=2) as response:
                    if response.status == 200:
                        self.ready_s = time.perf_counter() - start
                        return
            except OSError:
                pass
            time.sleep(self.poll_s)
        raise RuntimeError(f"app.py did not serve {self.url} within {self.timeout_s:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Terminate the app (SIGTERM, then SIGKILL after 15 s) and delete its temporary folder."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)
        self._tmp.cleanup()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
