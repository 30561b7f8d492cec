"""Shared fixtures. The suite runs offline: pretrained weights are *planted* random-init
checkpoints of the real architectures in a temporary TORCH_HOME (see models/planting.py)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

import pytest

os.environ.setdefault("DVL_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
PLANTED = ("deeplabv3-mobilenet", "lraspp-mobilenet", "fasterrcnn-mobilenet-320")  # the smallest real architectures


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


@pytest.fixture(scope="session")
def app_url(planted_torch_home) -> str:
    """The real app, launched as its own process on a free port, offline, with planted weights.

    Its log is kept in test-artifacts/app-server.log for CI.
    """
    from bench.server import AppServer

    ARTIFACTS.mkdir(exist_ok=True)
    with AppServer(log_path=ARTIFACTS / "app-server.log") as server:
        yield server.url


@contextlib.contextmanager
def planted_hugging_face(tmp_path_factory, name: str) -> Iterator[Path]:
    """HF_HOME pointed at a temporary cache that holds random-init weights of model ``name``, offline.

    Yields the planted snapshot folder; the model cache is emptied on the way in and out, so the
    model loads from the planted files and no later test sees it.
    """
    import models
    from models.planting import plant_random_weights

    hf_home = tmp_path_factory.mktemp("hf_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HOME", str(hf_home))
        patch.delenv("HF_HUB_CACHE", raising=False)
        patch.setenv("HF_HUB_OFFLINE", "1")
        snapshot = plant_random_weights(models.spec(name), hf_home=hf_home)
        models.cache.cache_clear()
        yield snapshot
        models.cache.cache_clear()


@pytest.fixture()
def hf_home(tmp_path, monkeypatch) -> Iterator[Path]:
    """An empty Hugging Face cache, offline, and an empty model cache on the way in and out: a test plants what it needs."""
    import models

    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("DVL_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    models.cache.cache_clear()
    yield tmp_path
    models.cache.cache_clear()
