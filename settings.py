"""Every run-time setting of the app: one function each, its environment variable and its default in one place.

app.py's flags default to these functions and write the variables back before anything else is
imported, since Gradio and the Hugging Face libraries read their own switches at import; models/,
demos/ and hosting/ read the settings here, on each call. So this module imports nothing heavy
(torch only inside ``device``) and nothing of the project: every layer may import it.

An empty variable counts as unset. A switch (``DVL_MCP``, ``DVL_OFFLINE``...) is on for
1/true/yes/on and off for 0/false/no/off, in any case. Hugging Face's ``HF_HUB_OFFLINE=1`` also
counts as offline.
"""

from __future__ import annotations

import functools
import os
import socket
import ssl
from pathlib import Path
from typing import TYPE_CHECKING, Callable, TypeVar

if TYPE_CHECKING:
    import torch

T = TypeVar("T")

TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off"})
PROBE_HOSTS = (("download.pytorch.org", 443), ("huggingface.co", 443))

#: The longer side every uploaded image is shrunk to (also ``demos.inputs.load_image``'s default).
MAX_IMAGE_SIDE = 1024


def switch(name: str) -> bool | None:
    """The switch ``name``: True if set to a yes, False if set to a no, None if unset or neither."""
    value = os.environ.get(name, "").strip().lower()
    return True if value in TRUE else False if value in FALSE else None


def read(name: str, default: T, parse: Callable[[str], T]) -> T:
    """The variable ``name`` parsed by ``parse``, or ``default`` when it is unset or empty."""
    value = os.environ.get(name, "").strip()
    return parse(value) if value else default


# ---------------------------------------------------------------- where the app runs


def on_space() -> bool:
    """Whether this is a Hugging Face Space (Spaces set ``SPACE_ID``)."""
    return bool(os.environ.get("SPACE_ID"))


def on_zero_gpu() -> bool:
    """Whether this is a Space on ZeroGPU hardware (``SPACES_ZERO_GPU`` set)."""
    return bool(os.environ.get("SPACES_ZERO_GPU"))


def host() -> str:
    """The interface to listen on: every one on a Space, else this machine only."""
    return read("DVL_HOST", "0.0.0.0" if on_space() else "127.0.0.1", str)


def port() -> int:
    return read("DVL_PORT", read("GRADIO_SERVER_PORT", 7860, int), int)


def mcp() -> bool:
    """Whether every tab's main endpoint is also an MCP tool."""
    return switch("DVL_MCP") is True


def prefetch() -> bool:
    """Whether each tab's default pretrained weights are downloaded before serving (a Space's start step)."""
    return switch("DVL_PREFETCH") is True


# ---------------------------------------------------------------- what the server keeps and accepts


def max_image_side() -> int:
    return read("DVL_MAX_IMAGE_SIDE", MAX_IMAGE_SIDE, int)


def max_upload_mb() -> float:
    """Larger uploads are refused before they are stored."""
    return read("DVL_MAX_UPLOAD_MB", 25.0, float)


def cache_age_min() -> float:
    """Uploads and result files older than this are deleted."""
    return read("DVL_CACHE_AGE_MIN", 60.0, float)


def queue_size() -> int:
    """Requests waiting at most; past that a client is told at once that the queue is full."""
    return read("DVL_QUEUE_SIZE", 64, int)


def max_sessions() -> int:
    """Sessions whose page state is kept, least recently used dropped."""
    return read("DVL_MAX_SESSIONS", 256, int)


# ---------------------------------------------------------------- the model layer


def device_name() -> str:
    """cuda, mps, cpu or auto (cuda > mps > cpu)."""
    return read("DVL_DEVICE", "auto", str).lower()


def device() -> torch.device:
    """The device ``device_name`` asks for; a clear error if this machine does not have it."""
    import torch

    wanted = device_name()
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


def memory_budget_mb() -> float:
    """Models kept loaded at once, by parameter and buffer bytes."""
    return read("DVL_MEMORY_BUDGET_MB", 4096.0, float)


def memory_budget_bytes() -> int:
    return int(memory_budget_mb() * 2**20)


def backend() -> str:
    """local: models run in this process; ray: in Ray Serve deployments (models/serving.py)."""
    value = read("DVL_BACKEND", "local", str).lower()
    if value not in {"local", "ray"}:
        raise ValueError(f"DVL_BACKEND is {value!r}; use local or ray")
    return value


def ray_address() -> str | None:
    """The Ray cluster for the ray backend ("auto": the one `ray start` runs here); None: a new local Ray."""
    return read("DVL_RAY_ADDRESS", None, str)


def ray_retry_s() -> float:
    """How long a ray-backend request may take, retries on live replicas included, before it fails with a clear message."""
    return read("DVL_RAY_RETRY_S", 60.0, float)


def train_slots() -> int:
    """Train-tab runs at once on this server (the rest wait in line); with the ray backend, at once on the cluster."""
    return max(1, read("DVL_TRAIN_SLOTS", 1, int))


def train_threads() -> int:
    """CPU threads one Train-tab run may use: one leaves the other core to the other tabs on a 2-core server."""
    return max(1, read("DVL_TRAIN_THREADS", 1, int))


def train_memory_mb() -> float:
    """Memory one Train-tab run may take beyond its start (its address space is capped there); 0: no cap."""
    return read("DVL_TRAIN_MEMORY_MB", 1536.0, float)


def weights_dir() -> Path | None:
    """A folder searched first for pretrained weight files, by their canonical file name."""
    return read("DVL_WEIGHTS_DIR", None, lambda value: Path(value).expanduser())


def hf_cache_dir() -> Path:
    """Hugging Face's hub cache, read from the environment on every call (the library reads it once, at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")) / "huggingface"
    return Path(home).expanduser() / "hub"


def offline() -> bool:
    """Whether downloads are off: by setting (``DVL_OFFLINE``, ``HF_HUB_OFFLINE``), or because the weight hosts cannot be reached.

    ``DVL_OFFLINE=0`` skips the probe. The probe is a TLS handshake with a short timeout, done once
    per process, so a dead network costs at most a second or two instead of a minute of retries
    inside a download. (A bare TCP connect is not enough: sandboxes and captive networks often
    accept every connection.)
    """
    said = switch("DVL_OFFLINE")
    if said is not None:
        return said
    return switch("HF_HUB_OFFLINE") is True or not _network_reachable()


@functools.cache
def _network_reachable(timeout: float = 1.0) -> bool:
    for host_name, port_number in PROBE_HOSTS:
        try:
            with socket.create_connection((host_name, port_number), timeout=timeout) as sock:
                with ssl.create_default_context().wrap_socket(sock, server_hostname=host_name):
                    return True
        except OSError:
            continue
    return False
