"""Shared fixtures. The suite runs offline: pretrained weights are *planted* random-init
checkpoints of the real architectures in a temporary TORCH_HOME (see models/planting.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

os.environ.setdefault("DVL_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
PLANTED = ("deeplabv3-mobilenet", "lraspp-mobilenet")  # the two smallest real architectures


@pytest.fixture(scope="session")
def planted_torch_home(tmp_path_factory) -> Path:
    """A TORCH_HOME holding random-init checkpoints of PLANTED, set for this whole test session."""
    import models
    from models.planting import plant_random_weights

    home = tmp_path_factory.mktemp("torch_home")
    for name in PLANTED:
        plant_random_weights(models.spec(name), home)
    previous = os.environ.get("TORCH_HOME")
    os.environ["TORCH_HOME"] = str(home)
    yield home
    if previous is None:
        os.environ.pop("TORCH_HOME", None)
    else:
        os.environ["TORCH_HOME"] = previous


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def app_url(planted_torch_home) -> str:
    """The real app, launched as its own process on a free port, offline, with planted weights."""
    port = free_port()
    log_path = ARTIFACTS / "app-server.log"
    ARTIFACTS.mkdir(exist_ok=True)
    env = {**os.environ, "TORCH_HOME": str(planted_torch_home), "PYTHONUNBUFFERED": "1"}
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "app.py", "--port", str(port), "--offline"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    import urllib.request

    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"app exited early; see {log_path}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        process.kill()
        raise RuntimeError(f"app did not start in time; see {log_path}")
    yield url
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
