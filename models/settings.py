"""Run-time settings of the model layer, from environment variables (app.py flags set them).

| variable | meaning | default |
| --- | --- | --- |
| DVL_DEVICE | cuda, mps, cpu or auto (cuda > mps > cpu) | auto |
| DVL_MEMORY_BUDGET_MB | models kept loaded at once, by parameter+buffer bytes | 4096 |
| DVL_OFFLINE | 1: never download; 0: never probe; unset: probe the network once, quickly | unset |
| DVL_WEIGHTS_DIR | a folder searched first for pretrained weight files, by their canonical file name | unset |
| DVL_BACKEND | local: models run in this process; ray: in Ray Serve deployments (models/serving.py) | local |
| DVL_RAY_ADDRESS | the Ray cluster for the ray backend ("auto": the one `ray start` runs here) | unset: a new local Ray |
| DVL_RAY_RETRY_S | how long a ray-backend request may take, retries on live replicas included, before it fails with a clear message | 60 |

Hugging Face's HF_HUB_OFFLINE=1 also counts as offline.
"""

from __future__ import annotations

import functools
import os
import socket
import ssl
from pathlib import Path

import torch

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
PROBE_HOSTS = (("download.pytorch.org", 443), ("huggingface.co", 443))


def device() -> torch.device:
    wanted = os.environ.get("DVL_DEVICE", "auto").lower()
    if wanted == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda was asked for, but torch sees no CUDA GPU here; use auto or cpu")
    if wanted == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device mps was asked for, but this machine has no Apple GPU; use auto or cpu")
    if wanted != "auto":
        return torch.device(wanted)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def memory_budget_bytes() -> int:
    return int(float(os.environ.get("DVL_MEMORY_BUDGET_MB", "4096")) * 2**20)


def backend() -> str:
    value = os.environ.get("DVL_BACKEND", "local").strip().lower()
    if value not in {"local", "ray"}:
        raise ValueError(f"DVL_BACKEND is {value!r}; use local or ray")
    return value


def ray_address() -> str | None:
    return os.environ.get("DVL_RAY_ADDRESS") or None


def ray_retry_s() -> float:
    return float(os.environ.get("DVL_RAY_RETRY_S", "60"))


def weights_dir() -> Path | None:
    value = os.environ.get("DVL_WEIGHTS_DIR")
    return Path(value).expanduser() if value else None


def hf_cache_dir() -> Path:
    """Hugging Face's hub cache, read from the environment on every call (the library reads it once, at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")) / "huggingface"
    return Path(home).expanduser() / "hub"


def offline() -> bool:
    """Whether downloads are off: by setting, or because the weight hosts cannot be reached.

    The probe is a TLS handshake with a short timeout, done once per process, so a dead network
    costs at most a second or two instead of a minute of retries inside a download. (A bare TCP
    connect is not enough: sandboxes and captive networks often accept every connection.)
    """
    for var in ("DVL_OFFLINE", "HF_HUB_OFFLINE"):
        value = os.environ.get(var, "").strip().lower()
        if value in _TRUE:
            return True
        if var == "DVL_OFFLINE" and value in _FALSE:
            return False
    return not _network_reachable()


@functools.cache
def _network_reachable(timeout: float = 1.0) -> bool:
    for host, port in PROBE_HOSTS:
        try:
            with socket.create_connection((host, port), timeout=timeout) as sock:
                with ssl.create_default_context().wrap_socket(sock, server_hostname=host):
                    return True
        except OSError:
            continue
    return False
