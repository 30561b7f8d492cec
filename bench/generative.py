"""VAE and GAN: one local sample of each family against a local diffusion sample, timed in one run.

The GAN and the VAE draw a 32x32 picture in one forward pass; the diffusion model needs ten
DPM-Solver++ steps at guidance 4 (twenty network passes: the bar's sampling). The three are
timed alternately on the same prompt and seed, so drifting clocks hit them alike, and the
diffusion/GAN ratio of medians is the figure the lecture's claim ("GANs sample fast") rests on.
"""

from __future__ import annotations

from dataclasses import dataclass

import models
from models.judging import DIFFUSION_SAMPLING
from models.text_to_image import Request, run

from .report import ms, section
from .stats import Samples, seconds
from .targets import GAN_SPEEDUP_MIN

PROMPT = "a large red triangle"
FAMILIES = ("gan-shapes", "vae-shapes", "diffusion-shapes")


@dataclass
class GenerativeBench:
    times: dict[str, Samples]

    def ratio(self) -> float | None:
        gan, diffusion = self.times.get("gan-shapes"), self.times.get("diffusion-shapes")
        return diffusion.p50 / gan.p50 if gan and diffusion and gan.p50 else None

    def markdown(self) -> str:
        what = {"gan-shapes": "GAN, one forward pass", "vae-shapes": "VAE decoder, one forward pass",
                "diffusion-shapes": "diffusion, 10 DPM-Solver++ steps, guidance 4"}
        rows = [[f"{name}: {what[name]}, one 32x32 sample", ms(s.p50), ms(s.p95), str(s.n)] for name, s in self.times.items()]
        ratio = self.ratio()
        verdict = "—" if ratio is None else "PASS" if ratio >= GAN_SPEEDUP_MIN else "FAIL"
        targets = [["diffusion sample / GAN sample, p50, same run", f">= {GAN_SPEEDUP_MIN:g}", "—" if ratio is None else f"{ratio:.1f}", verdict]]
        return section("VAE and GAN (`/sample`)", "Local models, one CPU process, timed alternately.", rows, targets)

    def to_dict(self) -> dict:
        return {"times": {name: s.summary() for name, s in self.times.items()}, "diffusion_over_gan": self.ratio()}


def measure(repeats: int = 10) -> GenerativeBench:
    """Alternate one sample of each family ``repeats`` times, after one untimed call each."""
    calls = {}
    for name in FAMILIES:
        if not models.spec(name).availability().usable:
            continue
        model = models.get(name)
        if name == "diffusion-shapes":
            request = Request(PROMPT, **DIFFUSION_SAMPLING)
            calls[name] = lambda model=model, request=request: run(model, request)
        else:
            calls[name] = lambda model=model: model.sample(PROMPT, 0, 1)
    for call in calls.values():
        call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            times[name].append(seconds(call))
    return GenerativeBench({name: Samples(values) for name, values in times.items()})
