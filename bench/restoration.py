"""Image restoration: the local network's predict time, the tab's handler, and Swin2SR's full architectures on this machine.

The local rows time the wrapper (``restorer(pil_image)``: Swin2SR's processor, the network, the
model card's postprocessing) on an unseen, degraded 128x128 ShapesWorld scene (target: p50 at most
50 ms), and the tab's whole handler with the prediction cached (degrade, score, zoom, residual):
what moving the zoom costs.

The pretrained rows build Swin2SR's published configurations with random weights
(``models.planting.swin2sr_parts(..., full=True)``) inside the app's own ``Restorer``, at the
longest input side the app allows each model (``models.restoration.MAX_SIDE``) on a photo: the
time a request for that model costs at most here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from PIL import Image

import models
from demos import restoration as tab
from demos import scenes
from models.restoration import CLASSICAL_X2_REPO, MAX_SIDE, REALWORLD_X4_REPO, Restorer, shrink
from models.training.restoration import clean_and_degraded

from .report import ms, section
from .stats import Samples, seconds
from .targets import RESTORATION_PREDICT_MS as LOCAL_LIMIT_MS

LOCAL = "restore-shapes"
SCENE_SEED = 2_000_011


@dataclass
class RestorationBench:
    rows: dict[str, Samples] = field(default_factory=dict)
    local_predict: Samples | None = None
    setup: str = ""

    def markdown(self) -> str:
        rows = [[what, ms(s.p50), ms(s.p95), str(s.n)] for what, s in self.rows.items()]
        targets = []
        if self.local_predict is not None:
            value = self.local_predict.p50 * 1000
            targets.append([f"{LOCAL}: predict p50 at 128x128", f"<= {LOCAL_LIMIT_MS:g} ms", f"{value:.1f} ms", "PASS" if value <= LOCAL_LIMIT_MS else "FAIL"])
        return section("Image restoration (`/restore`)", f"Pretrained: {self.setup}", rows, targets)

    def to_dict(self) -> dict:
        return {"rows": {k: s.summary() for k, s in self.rows.items()}, "setup": self.setup}


def measure(local_repeats: int = 30, pretrained_repeats: int = 2) -> RestorationBench:
    bench = RestorationBench()
    if models.spec(LOCAL).availability().usable:
        restorer = models.get(LOCAL)
        _, degraded = clean_and_degraded(SCENE_SEED)
        bench.local_predict = _timed(lambda: restorer(Image.fromarray(degraded)), local_repeats, warmup=3)
        bench.rows[f"{LOCAL}: predict, 128x128 degraded scene"] = bench.local_predict
        path = scenes.scene_file(SCENE_SEED)
        handler = lambda: tab._restore_ui(path, LOCAL, tab.DEGRADE_HERE, "motion", 6.0, 30.0, 8.0, 0, 0.5, 0.5, 0.3)  # noqa: E731
        bench.rows[f"{LOCAL}: the tab's handler, prediction cached (degrade, score, zoom, residual)"] = _timed(handler, max(3, local_repeats // 3), warmup=1)
    _measure_pretrained(bench, pretrained_repeats)
    return bench


def _measure_pretrained(bench: RestorationBench, repeats: int) -> None:
    from skimage import data as skdata

    from models.planting import swin2sr_parts

    bench.setup = (
        f"Swin2SR's published architectures (6x6 Swin V2 layers, 180 channels) with random weights, float32 on the CPU, "
        f"{torch.get_num_threads()} torch thread(s), at the longest input side the app allows each model, on scikit-image's astronaut."
    )
    photo = Image.fromarray(skdata.astronaut())
    for name, repo, upscale in (("swin2sr-realworld-x4", REALWORLD_X4_REPO, 4), ("swin2sr-classical-x2", CLASSICAL_X2_REPO, 2)):
        network, processor = swin2sr_parts(upscale, full=True)
        restorer = Restorer(network.eval(), processor, upscale, MAX_SIDE[repo])
        side = max(shrink(photo, restorer.max_side).size)
        bench.rows[f"{name}: x{upscale} on a {side}x{side} input"] = _timed(lambda: restorer(photo), repeats, warmup=1)


def _timed(fn, repeats: int, warmup: int) -> Samples:
    for _ in range(warmup):
        fn()
    return Samples([seconds(fn) for _ in range(repeats)])
