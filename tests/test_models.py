"""The model layer: registry, weight resolution (planted, explicit, offline), the cached loader."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import models
from models.cache import ModelCache, module_bytes
from models.sources import Availability, LocalWeights, WeightsUnavailable

PHOTO = Image.fromarray((np.random.default_rng(0).random((120, 160, 3)) * 255).astype(np.uint8))


def test_registry_lists_every_segmentation_model_with_metadata():
    names = [s.name for s in models.for_task("segmentation")]
    assert names == ["deeplabv3-resnet50", "deeplabv3-resnet101", "deeplabv3-mobilenet", "fcn-resnet50", "lraspp-mobilenet", "unet-shapes"]
    for spec in models.for_task("segmentation"):
        assert spec.license and spec.params > 0 and spec.tier in ("pretrained", "local")
        assert spec.title in spec.label and spec.availability().value in spec.label


def test_unknown_model_name_is_a_clear_error():
    with pytest.raises(KeyError, match="unknown model 'nope'"):
        models.spec("nope")


def test_offline_without_weights_says_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    spec = models.spec("deeplabv3-resnet50")
    assert spec.availability() is Availability.UNAVAILABLE
    with pytest.raises(WeightsUnavailable, match="python -m models prefetch") as error:
        spec.load(spec)
    assert str(tmp_path) not in str(error.value)  # the message reaches web pages: it names commands, no server folder


def test_default_is_the_local_model_offline_and_pretrained_once_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert models.default_for("segmentation").name == "unet-shapes"


def test_planted_weights_load_through_torchvisions_own_loader(planted_torch_home, monkeypatch):
    """The app's loader calls torchvision's builder, which reads TORCH_HOME's hub cache."""
    import torchvision.models._api as tv_api

    calls = []
    original = tv_api.load_state_dict_from_url

    def spy(url, *args, **kwargs):
        calls.append(url)
        return original(url, *args, **kwargs)

    monkeypatch.setattr(tv_api, "load_state_dict_from_url", spy)
    spec = models.spec("deeplabv3-mobilenet")
    assert spec.availability() is Availability.CACHED
    segmenter = spec.load(spec)
    assert calls == [spec.source.weights.url]
    planted = torch.load(spec.source.cache_path, weights_only=True)
    loaded = segmenter.network.state_dict()
    assert all(torch.equal(planted[k], loaded[k]) for k in planted)
    assert segmenter.categories[0] == "__background__" and len(segmenter.categories) == 21
    output = segmenter.eval()(PHOTO)
    assert output.labels.shape == (120, 160) and output.labels.max() < 21


def test_explicit_weights_dir_comes_first(planted_torch_home, tmp_path, monkeypatch):
    spec = models.spec("lraspp-mobilenet")
    explicit = tmp_path / spec.source.filename
    state = torch.load(spec.source.cache_path, weights_only=True)
    state = {k: torch.full_like(v, 0.5) if v.is_floating_point() else v for k, v in state.items()}
    torch.save(state, explicit)
    monkeypatch.setenv("DVL_WEIGHTS_DIR", str(tmp_path))
    network = spec.load(spec).network
    assert torch.equal(network.state_dict()["classifier.low_classifier.weight"], state["classifier.low_classifier.weight"])


def test_missing_local_weights_say_how_to_train(tmp_path):
    source = LocalWeights("unet-shapes", directory=tmp_path)
    assert source.availability() is Availability.MISSING
    with pytest.raises(WeightsUnavailable, match="python -m models train unet-shapes"):
        source.state_dict()


# ------------------------------------------------------------------ the cache


class Counting:
    """A fake registry whose models are small linear layers; counts loads per name."""

    def __init__(self, delay: float = 0.0, width: int = 256):
        self.loads: dict[str, int] = {}
        self.delay = delay
        self.width = width
        self.base = models.spec("unet-shapes")

    def __call__(self, name: str):
        def load(_spec):
            self.loads[name] = self.loads.get(name, 0) + 1
            time.sleep(self.delay)
            return nn.Linear(self.width, self.width)

        return replace(self.base, name=name, load=load)


def test_concurrent_first_requests_load_a_model_once():
    registry = Counting(delay=0.3)
    cache = ModelCache(registry, budget_bytes=10**9, device=torch.device("cpu"))
    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get("a"))) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert registry.loads == {"a": 1}
    assert len({id(m) for m in results}) == 1


def test_loading_one_model_does_not_block_another():
    registry = Counting(delay=0.5)
    cache = ModelCache(registry, budget_bytes=10**9, device=torch.device("cpu"))
    cache.get("fast")
    slow = threading.Thread(target=cache.get, args=("slow",))
    slow.start()
    time.sleep(0.05)
    start = time.perf_counter()
    cache.get("fast")
    assert time.perf_counter() - start < 0.1
    slow.join()


def test_least_recently_used_model_is_evicted_when_over_budget():
    registry = Counting()
    one = module_bytes(nn.Linear(256, 256))
    cache = ModelCache(registry, budget_bytes=int(2.5 * one), device=torch.device("cpu"))
    cache.get("a")
    cache.get("b")
    cache.get("a")  # a is now more recent than b
    cache.get("c")
    assert cache.loaded() == ["a", "c"]
    assert cache.used_bytes() <= cache.budget_bytes
    cache.get("b")
    assert registry.loads == {"a": 1, "b": 2, "c": 1}


def test_models_come_back_in_eval_mode_without_gradients():
    cache = ModelCache(Counting(), budget_bytes=10**9, device=torch.device("cpu"))
    model = cache.get("a")
    assert not model.training and not any(p.requires_grad for p in model.parameters())


def test_derived_state_is_computed_once_per_key():
    cache = ModelCache(Counting(), budget_bytes=10**9, device=torch.device("cpu"), derived_entries=2)
    calls = []
    for key in ["x", "x", "y", "x", "z", "y"]:
        cache.derived(key, lambda key=key: calls.append(key) or key)
    assert calls == ["x", "y", "z", "y"]  # y was evicted by z (LRU of 2), x stayed hot


def test_offline_probe_is_quick_when_the_network_is_dead(monkeypatch):
    import settings

    monkeypatch.delenv("DVL_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    settings._network_reachable.cache_clear()
    monkeypatch.setattr(settings, "PROBE_HOSTS", (("203.0.113.1", 443),))  # TEST-NET-3: never answers
    start = time.perf_counter()
    assert settings.offline() is True
    assert time.perf_counter() - start < 2.5
    settings._network_reachable.cache_clear()


def test_a_failed_download_is_a_clear_error(tmp_path, monkeypatch):
    """Online by setting, but the host cannot be reached: torchvision really tries, and we explain."""
    for proxy in ("https_proxy", "HTTPS_PROXY"):  # a closed local port: fails the same with or without a network
        monkeypatch.setenv(proxy, "http://127.0.0.1:9")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("DVL_OFFLINE", "0")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    spec = models.spec("lraspp-mobilenet")
    assert spec.availability() is Availability.DOWNLOADABLE
    start = time.perf_counter()
    with pytest.raises(WeightsUnavailable, match="Downloading lraspp_mobilenet_v3_large-d234d4ea.pth failed"):
        spec.load(spec)
    assert time.perf_counter() - start < 30
    assert not spec.source.cache_path.exists()


@pytest.mark.parametrize("device, expected", [
    ("cpu", {"segmentation": "deeplabv3-mobilenet", "depth": "depth-anything-v2-small", "detection": "fasterrcnn-mobilenet", "clip": "clip-vit-b-32", "retrieval": "dinov2-small",
             "diffusion": "diffusion-shapes"}),  # SD-Turbo at 512x512 takes tens of seconds on a CPU; the local model 0.1 s
    ("cuda", {"segmentation": "deeplabv3-resnet50", "depth": "dpt-large", "detection": "fasterrcnn-resnet50-v2", "clip": "clip-vit-b-16", "diffusion": "sd-turbo"}),
])
def test_online_the_default_is_the_fast_model_on_a_cpu_and_the_most_accurate_on_a_gpu(monkeypatch, device, expected):
    """With every pretrained model downloadable (as on a Space), the picker's default follows the device."""
    import torch

    from models.spec import ModelSpec

    monkeypatch.setattr(ModelSpec, "availability", lambda self: Availability.DOWNLOADABLE)
    monkeypatch.setattr(models.cache(), "device", torch.device(device))
    for task, name in expected.items():
        assert models.default_for(task).name == name, task
        assert ("fast on CPU" in models.spec(name).label) == (device == "cpu")


def test_every_spec_says_its_vocabulary_input_size_and_nms_default_without_loading():
    """Labels (with the vocabulary), input size and default NMS IoU come from cards and metadata, not weights."""
    before = list(models.cache().loaded())
    for spec in models.all_specs().values():
        vocabulary, size, iou = spec.labels.vocabulary, spec.input_size, spec.default_nms_iou
        assert isinstance(vocabulary, list) and (size is None or size > 0) and (iou is None or 0 < iou <= 1), spec.name
        assert (iou is not None) == (spec.task in ("detection", "instances", "pose") and spec.name != "detr-resnet50"), spec.name
    assert models.cache().loaded() == before
    specs = models.all_specs()
    assert {name: specs[name].default_nms_iou for name in ("fcos-resnet50", "ssdlite-mobilenet", "fcos-shapes", "maskrcnn-shapes")} == {
        "fcos-resnet50": 0.6, "ssdlite-mobilenet": 0.55, "fcos-shapes": 0.6, "maskrcnn-shapes": 0.5,
    }
    assert [specs[name].input_size for name in ("deeplabv3-mobilenet", "resnet50-supervised", "fasterrcnn-mobilenet-320", "maskrcnn-shapes")] == [520, 224, 320, 192]
    assert len(specs["blip-caption-shapes"].labels.vocabulary) == 57 and specs["blip-caption-base"].labels.vocabulary == []


@pytest.mark.parametrize("name", ["fasterrcnn-shapes", "fcos-shapes", "maskrcnn-shapes", "keypointrcnn-shapes", "fasterrcnn-mobilenet-320"])
def test_a_detectors_spec_says_what_the_loaded_network_uses(name, planted_torch_home):
    """The spec's NMS IoU is the one the built network carries, and its input size the network's min_size."""
    spec = models.spec(name)
    detector = spec.load(spec)
    assert detector.default_nms_iou == spec.default_nms_iou
    assert detector.network.transform.min_size == (spec.input_size,)


@pytest.mark.parametrize("name", ["blip-caption-shapes", "lstm-caption-shapes", "blip-vqa-shapes"])
def test_a_local_captioners_spec_lists_its_tokenizers_vocabulary(name):
    spec = models.spec(name)
    model = spec.load(spec)
    vocab = model.tokenizer.get_vocab()
    assert sorted(vocab, key=vocab.get) == spec.labels.vocabulary
    assert model.processor.size["height"] == spec.input_size
