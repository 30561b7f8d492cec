"""Contract tests every tab obeys, and the app's command line."""

from __future__ import annotations

import os

import pytest

import app
import demos
import models


@pytest.fixture(scope="module")
def blocks():
    return app.build_app()


def test_every_demo_declares_title_task_and_build():
    for demo in demos.ALL:
        assert demo.TITLE and demo.TASK and demo.ENDPOINT and callable(demo.build)
        trains_its_own = demo.TASK == "train_yourself"  # every network it shows is trained in the page
        assert models.for_task(demo.TASK) or trains_its_own, f"{demo.TASK} has no models in the registry"


def test_building_the_ui_loads_no_weights():
    models.registry.cache.cache_clear()  # a fresh, empty cache, whatever earlier tests loaded
    app.build_app()
    assert models.cache().loaded() == []


def test_every_tab_exposes_its_main_action_as_a_named_endpoint(blocks):
    endpoints = blocks.get_api_info()["named_endpoints"]
    for demo in demos.ALL:
        assert f"/{demo.ENDPOINT}" in endpoints


def test_flags_become_settings(monkeypatch):
    for var in ("DVL_DEVICE", "DVL_MEMORY_BUDGET_MB", "DVL_OFFLINE", "HF_HUB_OFFLINE", "DVL_WEIGHTS_DIR", "DVL_MAX_IMAGE_SIDE"):
        monkeypatch.setenv(var, "")  # records the original value, so the test leaves the environment as it found it
        monkeypatch.delenv(var)
    args = app.parse_args(["--device", "cpu", "--memory-budget-mb", "512", "--offline", "--weights-dir", "/w", "--port", "9999"])
    app.configure_environment(args)
    assert (os.environ["DVL_DEVICE"], os.environ["DVL_MEMORY_BUDGET_MB"], os.environ["DVL_OFFLINE"]) == ("cpu", "512.0", "1")
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["DVL_WEIGHTS_DIR"] == "/w" and args.port == 9999
    import settings

    assert settings.memory_budget_bytes() == 512 * 2**20 and str(settings.device()) == "cpu"


def test_flags_default_to_their_settings(monkeypatch):
    """Each flag's default is its variable, read by the one settings module (one truthy parser, empty = unset)."""
    import settings

    for var, value in (("DVL_MAX_IMAGE_SIDE", "800"), ("DVL_QUEUE_SIZE", "8"), ("DVL_MCP", "on"), ("DVL_PREFETCH", "No"), ("DVL_PORT", "")):
        monkeypatch.setenv(var, value)
    monkeypatch.setenv("GRADIO_SERVER_PORT", "7000")
    args = app.parse_args([])
    assert (args.max_image_side, args.queue_size, args.mcp, args.prefetch, args.port) == (800, 8, True, False, 7000)
    assert settings.max_image_side() == 800
    for var in ("DVL_MAX_IMAGE_SIDE", "DVL_QUEUE_SIZE", "DVL_MCP", "GRADIO_SERVER_PORT"):
        monkeypatch.delenv(var)
    args = app.parse_args([])
    assert (args.max_image_side, args.queue_size, args.mcp, args.port) == (settings.MAX_IMAGE_SIDE, 64, False, 7860)


def test_offline_by_setting_wins_over_hugging_faces_switch(monkeypatch):
    import settings

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("DVL_OFFLINE", "0")
    assert settings.offline() is False  # DVL_OFFLINE=0: online, no probe
    monkeypatch.setenv("DVL_OFFLINE", "")
    assert settings.offline() is True


def test_space_listens_on_all_interfaces(monkeypatch):
    monkeypatch.setenv("SPACE_ID", "someone/deep-vision-lab")
    monkeypatch.delenv("DVL_HOST", raising=False)
    assert app.parse_args([]).host == "0.0.0.0"


def test_asking_for_a_missing_gpu_is_a_clear_start_up_error(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for var, value in (("DVL_DEVICE", "cuda"), ("DVL_MEMORY_BUDGET_MB", "4096"), ("DVL_MAX_IMAGE_SIDE", "1024")):
        monkeypatch.setenv(var, value)  # main() writes these; monkeypatch puts them back afterwards
    with pytest.raises(SystemExit, match="no CUDA GPU"):
        app.main(["--device", "cuda"])


def test_on_zero_gpu_hardware_model_handlers_run_inside_spaces_gpu(monkeypatch):
    """ZeroGPU lends its GPU only inside ``spaces.GPU`` functions; anywhere else handlers stay as they are."""
    import sys
    import types

    from demos import errors

    lent = []

    def gpu(duration):
        def decorate(fn):
            def on_gpu(*args, **kwargs):
                lent.append(duration)
                return fn(*args, **kwargs)
            return on_gpu
        return decorate

    monkeypatch.setitem(sys.modules, "spaces", types.SimpleNamespace(GPU=gpu))
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    assert errors.user_errors(lambda: "cpu")() == "cpu" and lent == []
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    assert errors.user_errors(lambda: "gpu")() == "gpu" and lent == [30]
    assert errors.user_errors(gpu_seconds=120)(lambda: "long")() == "long" and lent == [30, 120]


def test_prefetch_fetches_each_tabs_default_pretrained_weights(planted_torch_home, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="app")
    app.prefetch_defaults()
    assert "prefetched deeplabv3-mobilenet" in caplog.text  # the planted, CPU-fast segmentation default
    assert "could not prefetch" not in caplog.text or "offline" in caplog.text.lower()
