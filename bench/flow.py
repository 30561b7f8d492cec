"""Optical flow: the local RAFT on a 128x128 ShapesWorld pair, the tab's drawing of it, and RAFT small at 128x128 on this CPU.

The local model is the shipped one; RAFT small is planted at its real size (torchvision's
architecture, random weights, which cost the same time as the released ones) in a temporary
TORCH_HOME. Each call gets a new second frame (one pixel nudged), so the app's cache never answers.
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
from demos import flow as tab
from models.planting import plant_random_weights

from .report import ms, table
from .stats import Samples, repeat

LOCAL = "raft-flow-shapes"
PRETRAINED = "raft-small"
LOCAL_P50_MS = 150.0  # the target: the local flow of a 128 px pair on 2 cores


@dataclass
class FlowBench:
    local: Samples
    local_render: Samples
    pretrained: Samples

    def markdown(self) -> str:
        rows = [
            [f"{LOCAL}, `model(frame1, frame2)`", "128x128 ShapesWorld pair", ms(self.local.p50), ms(self.local.p95), str(self.local.n)],
            [f"{LOCAL}, `demos.flow.render` (colours, arrows, updates, warp)", "128x128 ShapesWorld pair", ms(self.local_render.p50), ms(self.local_render.p95), str(self.local_render.n)],
            [f"{PRETRAINED} (real size, random weights), 12 updates", "128x128 ShapesWorld pair", ms(self.pretrained.p50), ms(self.pretrained.p95), str(self.pretrained.n)],
        ]
        passed = self.local.p50 * 1e3 <= LOCAL_P50_MS
        targets = [["local flow p50 for a 128 px pair", f"<= {LOCAL_P50_MS:g} ms", ms(self.local.p50), "PASS" if passed else "FAIL"]]
        return "\n\n".join([
            "## Optical flow (`/flow`)",
            table(["what", "input", "p50 (ms)", "p95 (ms)", "n"], rows, right=(2, 3, 4)),
            table(["target", "limit", "measured", "verdict"], targets),
        ])

    def to_dict(self) -> dict:
        return {"local": self.local.summary(), "local_render": self.local_render.summary(), "pretrained": self.pretrained.summary()}


def _nudged(pixels: np.ndarray, i: int) -> Image.Image:
    nudged = pixels.copy()
    nudged.reshape(-1, 3)[i % (nudged.size // 3), 0] ^= 1
    return Image.fromarray(nudged)


@contextlib.contextmanager
def _planted(name: str):
    """TORCH_HOME pointed at a temporary folder holding ``name``'s checkpoint with random weights; restored afterwards."""
    saved = os.environ.get("TORCH_HOME")
    with tempfile.TemporaryDirectory(prefix="dvl-bench-flow-") as home:
        os.environ["TORCH_HOME"] = home
        try:
            plant_random_weights(models.spec(name), Path(home))
            models.cache.cache_clear()
            yield
        finally:
            models.cache.cache_clear()
            if saved is None:
                os.environ.pop("TORCH_HOME", None)
            else:
                os.environ["TORCH_HOME"] = saved


def measure(repeats: int, pretrained_repeats: int) -> FlowBench:
    first, second, _ = tab.clip_pair(shapesworld.SPLITS["test"].start, 3)
    one = Image.fromarray(first)
    local = models.get(LOCAL)
    local_samples = repeat(lambda i: local(one, _nudged(second, i)), repeats, warmup=3)
    output = local(one, Image.fromarray(second))
    render_samples = repeat(lambda i: tab.render(one, Image.fromarray(second), output), repeats, warmup=1)
    with _planted(PRETRAINED):
        pretrained = models.get(PRETRAINED)
        pretrained_samples = repeat(lambda i: pretrained(one, _nudged(second, i)), pretrained_repeats, warmup=1)
    return FlowBench(local_samples, render_samples, pretrained_samples)
