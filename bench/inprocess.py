"""In-process numbers per model: first load through the app's own loader, predict latency, memory.

This is the floor the web app can reach: the same ``models.get`` the app calls on a first
request (so the load time includes building the architecture and reading the checkpoint), and
the same model object call (``segmenter(pil_image)``, ``detector(pil_image)``) the app's predict
function makes. Then the cost of moving a slider: the tab's own pure function (``segment``,
``detect``) called again on the same image with other controls, which re-renders the cached
prediction without running the network.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import models

from . import machine, tasks
from .stats import Samples, repeat, timed

RERENDER_WARMUP = 2  # the first call runs the network and fills the app's cache; the second warms the drawing path


@dataclass
class InProcessResult:
    name: str
    task: str
    tier: str
    input: str
    input_size: str  # the image, WxH
    network_size: str = ""  # what the network sees after the model's own transform (and padding), WxH
    params: int = 0
    load_s: float | None = None
    predict: Samples = field(default_factory=Samples)
    rerender: Samples = field(default_factory=Samples)  # the tab's function again, other controls, cached prediction
    warmup: int = 0
    rss_before_load: int = 0
    rss_after_load: int = 0
    peak_during_predict: int | None = None  # VmHWM since the reset before warm-up (process-wide)
    error: str | None = None

    def to_dict(self) -> dict:
        return {
            "name": self.name, "task": self.task, "tier": self.tier, "input": self.input, "input_size": self.input_size,
            "network_size": self.network_size, "params": self.params, "load_s": self.load_s, "predict": self.predict.summary(),
            "rerender": self.rerender.summary(), "warmup": self.warmup, "rss_before_load_bytes": self.rss_before_load,
            "rss_after_load_bytes": self.rss_after_load, "peak_rss_during_predict_bytes": self.peak_during_predict,
            "error": self.error,
        }


def measure(name: str, repeats: int, warmup: int, rerender_repeats: int) -> InProcessResult:
    """Load ``name`` through ``models.get`` (first request), time ``repeats`` predictions, then re-renders."""
    spec = models.spec(name)
    task = tasks.of(name)
    image = task.image(name)
    result = InProcessResult(name, task.name, spec.tier, image.description, image.size_text, warmup=warmup)
    availability = spec.availability()
    if not availability.usable:
        result.error = f"not run: weights {availability.value}"
        return result
    result.rss_before_load = machine.rss_bytes()
    try:
        result.load_s, model = timed(lambda: models.get(name))
    except Exception as error:  # noqa: BLE001 - one broken model must not hide the others' numbers
        result.error = f"load failed: {type(error).__name__}: {error}"
        return result
    result.rss_after_load = machine.rss_bytes()
    result.params = sum(p.numel() for p in model.parameters())
    pil = image.pil
    width, height = task.network_size(model, pil)
    result.network_size = f"{width}x{height}"
    can_reset = machine.reset_peak()
    result.predict = repeat(lambda _: model(pil), repeats, warmup)
    result.peak_during_predict = machine.peak_since_reset() if can_reset else None
    result.rerender = repeat(lambda i: task.rerender_call(pil, name, i), rerender_repeats, RERENDER_WARMUP)
    return result
