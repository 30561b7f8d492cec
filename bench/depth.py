"""Depth: the local U-Net's prediction at 128x128, the tab's drawing of it, and Depth Anything V2 Small at 518 px on this CPU.

The local model is the shipped one; Depth Anything V2 Small is planted at its real size (24.8 M
parameters, ``models.planting.depth_parts(full=True)``) with random weights, which cost the same
time as the released ones. Its image processor resizes the 512x512 astronaut to 518x518 (the
shorter side to 518, a multiple of the 14-pixel patch). Each call gets a new image (one pixel
nudged), so the app's prediction cache never answers.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

import models
import shapesworld
from demos import depth as tab
from models.planting import plant_random_weights

from .report import ms, table
from .stats import Samples, repeat

LOCAL = "unet-depth-shapes"
PRETRAINED = "depth-anything-v2-small"
LOCAL_P50_MS = 50.0  # the target: local predict at 128x128 on 2 cores


@dataclass
class DepthBench:
    local: Samples
    local_render: Samples
    pretrained: Samples
    pretrained_input: str

    def markdown(self) -> str:
        rows = [
            [f"{LOCAL}, `model(image)`", "128x128 scene", ms(self.local.p50), ms(self.local.p95), str(self.local.n)],
            [f"{LOCAL}, `demos.depth.render` (colour map, 16-bit PNG, 3-D mesh)", "128x128 scene", ms(self.local_render.p50), ms(self.local_render.p95), str(self.local_render.n)],
            [f"{PRETRAINED} (real size, random weights), `model(image)`", self.pretrained_input, ms(self.pretrained.p50), ms(self.pretrained.p95), str(self.pretrained.n)],
        ]
        passed = self.local.p50 * 1e3 <= LOCAL_P50_MS
        targets = [["local predict p50 at 128x128", f"<= {LOCAL_P50_MS:g} ms", ms(self.local.p50), "PASS" if passed else "FAIL"]]
        return "\n\n".join(
            [
                "## Depth (`/depth`)",
                table(["what", "input", "p50 (ms)", "p95 (ms)", "n"], rows, right=(2, 3, 4)),
                table(["target", "limit", "measured", "verdict"], targets),
            ]
        )

    def to_dict(self) -> dict:
        return {"local": self.local.summary(), "local_render": self.local_render.summary(), "pretrained": self.pretrained.summary(), "pretrained_input": self.pretrained_input}


def _variant(pixels: np.ndarray, i: int) -> Image.Image:
    nudged = pixels.copy()
    nudged.reshape(-1, 3)[i % (nudged.size // 3), 0] ^= 1
    return Image.fromarray(nudged)


@contextlib.contextmanager
def _planted_full_size(name: str):
    """HF_HOME pointed at a temporary cache holding ``name`` at its real size, offline; restored afterwards."""
    saved = {key: os.environ.get(key) for key in ("HF_HOME", "HF_HUB_CACHE", "HF_HUB_OFFLINE")}
    with tempfile.TemporaryDirectory(prefix="dvl-bench-depth-") as home:
        os.environ.update(HF_HOME=home, HF_HUB_CACHE=str(Path(home) / "hub"), HF_HUB_OFFLINE="1")
        try:
            plant_random_weights(models.spec(name), hf_home=Path(home), full=True)
            models.cache.cache_clear()
            yield
        finally:
            models.cache.cache_clear()
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def measure(repeats: int, pretrained_repeats: int) -> DepthBench:
    from skimage.data import astronaut

    scene = shapesworld.generate(shapesworld.SPLITS["test"].start).image
    local = models.get(LOCAL)
    local_samples = repeat(lambda i: local(_variant(scene, i)), repeats, warmup=3)
    output = local(Image.fromarray(scene))
    render_samples = repeat(lambda i: tab.render(Image.fromarray(scene), output, None), repeats, warmup=1)
    photo = astronaut()
    with _planted_full_size(PRETRAINED):
        pretrained = models.get(PRETRAINED)
        size = pretrained.processor(images=Image.fromarray(photo), return_tensors="pt")["pixel_values"].shape[-2:]
        pretrained_samples = repeat(lambda i: pretrained(_variant(photo, i)), pretrained_repeats, warmup=1)
    return DepthBench(local_samples, render_samples, pretrained_samples, f"512x512 photo, network input {size[1]}x{size[0]}")
