"""In-process numbers per model: first load through the app's own loader, predict latency, memory.

This is the floor the web app can reach: the same ``models.get`` the app calls on a first
request (so the load time includes building the architecture and reading the checkpoint), and
the same model object call (``segmenter(pil_image)``: preprocessing, network, upsampling of the
logits to the image size, softmax/argmax) the app's predict function makes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import models

from . import machine
from .images import image_for
from .stats import Samples, repeat, timed


@dataclass
class InProcessResult:
    name: str
    tier: str
    input: str
    input_size: str  # the image, WxH
    network_size: str = ""  # what the network sees after the model's own transform (and padding), WxH
    params: int = 0
    load_s: float | None = None
    predict: Samples = field(default_factory=Samples)
    warmup: int = 0
    rss_before_load: int = 0
    rss_after_load: int = 0
    peak_during_predict: int | None = None  # VmHWM since the reset before warm-up (process-wide)
    error: str | None = None

    def to_dict(self) -> dict:
        return {
            "name": self.name, "tier": self.tier, "input": self.input, "input_size": self.input_size, "network_size": self.network_size,
            "params": self.params, "load_s": self.load_s, "predict": self.predict.summary(), "warmup": self.warmup,
            "rss_before_load_bytes": self.rss_before_load, "rss_after_load_bytes": self.rss_after_load,
            "peak_rss_during_predict_bytes": self.peak_during_predict, "error": self.error,
        }


def measure(name: str, repeats: int, warmup: int) -> InProcessResult:
    """Load ``name`` through ``models.get`` (first request) and time ``repeats`` predictions."""
    spec = models.spec(name)
    image = image_for(name)
    result = InProcessResult(name, spec.tier, image.description, image.size_text, warmup=warmup)
    availability = spec.availability()
    if not availability.usable:
        result.error = f"not run: weights {availability.value}"
        return result
    result.rss_before_load = machine.rss_bytes()
    try:
        result.load_s, segmenter = timed(lambda: models.get(name))
    except Exception as error:  # noqa: BLE001 - one broken model must not hide the others' numbers
        result.error = f"load failed: {type(error).__name__}: {error}"
        return result
    result.rss_after_load = machine.rss_bytes()
    result.params = sum(p.numel() for p in segmenter.parameters())
    pil = image.pil
    height, width = segmenter.preprocess(pil)[0].shape[-2:]
    result.network_size = f"{width}x{height}"
    can_reset = machine.reset_peak()
    result.predict = repeat(lambda _: segmenter(pil), repeats, warmup)
    result.peak_during_predict = machine.peak_since_reset() if can_reset else None
    return result
