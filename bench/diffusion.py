"""Text to image: the local model's time per image by step count, and what the app adds to SD-Turbo.

The local rows time ``run(model, Request(...))`` for one 32x32 image with DPM-Solver++ and
guidance 2 (two network passes per step) at 10, 25 and 50 steps.

The SD-Turbo rows time the app's path (``TurboTextToImage.denoise``: a per-call pipeline copy,
the worker thread, the step callback, the safety checker) against a bare
``pipe(prompt, num_inference_steps=n, guidance_scale=0.0)`` on the same pipeline, alternating the
two, and report the ratio (target: the app adds at most 10%). On a GPU the pipeline is SD 2.1's
full architecture with random weights in half precision, 512x512; on a CPU it is the tiny planted
pipeline (64x64), which measures the fixed overhead only, since the full model takes minutes there.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

import models
from models.text_to_image import Request, run
from models.turbo import TurboTextToImage

from .report import ms, section
from .stats import Samples, seconds

LOCAL_STEPS = (10, 25, 50)
TURBO_STEPS = (1, 4)
OVERHEAD = 1.10


@dataclass
class DiffusionBench:
    local: dict[int, Samples]
    turbo_app: dict[int, Samples]
    turbo_bare: dict[int, Samples]
    turbo_setup: str

    def ratio(self, steps: int) -> float | None:
        app, bare = self.turbo_app[steps].p50, self.turbo_bare[steps].p50
        return app / bare if app and bare else None

    def markdown(self) -> str:
        rows = [[f"diffusion-shapes, {n} DPM-Solver++ steps, guidance 2, one 32x32 image", ms(s.p50), ms(s.p95), str(s.n)] for n, s in self.local.items()]
        for n in TURBO_STEPS:
            rows.append([f"SD-Turbo {n} step(s), the app's path", ms(self.turbo_app[n].p50), ms(self.turbo_app[n].p95), str(self.turbo_app[n].n)])
            rows.append([f"SD-Turbo {n} step(s), bare `pipe(...)`", ms(self.turbo_bare[n].p50), ms(self.turbo_bare[n].p95), str(self.turbo_bare[n].n)])
        targets = []
        for n in TURBO_STEPS:
            ratio = self.ratio(n)
            verdict = "—" if ratio is None else "PASS" if ratio <= OVERHEAD else "FAIL"
            targets.append([f"SD-Turbo {n} step(s): app / bare pipeline, p50", f"<= {OVERHEAD:.2f}", "—" if ratio is None else f"{ratio:.3f}", verdict])
        return section("Text to image (`/generate`)", f"SD-Turbo: {self.turbo_setup}", rows, targets)

    def to_dict(self) -> dict:
        return {
            "local": {str(n): s.summary() for n, s in self.local.items()},
            "turbo_app": {str(n): s.summary() for n, s in self.turbo_app.items()},
            "turbo_bare": {str(n): s.summary() for n, s in self.turbo_bare.items()},
            "turbo_setup": self.turbo_setup,
        }


def turbo_pipeline(full: bool | None = None) -> tuple[object, str]:
    """SD 2.1's full architecture on a GPU (half precision), else the tiny planted classes, random weights either way.

    ``full`` None: full where a GPU is.
    """
    from models.planting import safety_checker_parts, sd_turbo_parts

    full = torch.cuda.is_available() if full is None else full
    (pipe,) = sd_turbo_parts(full=full)
    checker, features = safety_checker_parts()
    pipe.register_modules(safety_checker=checker, feature_extractor=features)
    if full:
        pipe = pipe.to("cuda", torch.float16)
        return pipe, f"full architecture, random weights, float16 on {torch.cuda.get_device_name()}, 512x512."
    return pipe, "no GPU here: the tiny planted pipeline (64x64), which measures the app's fixed overhead only."


def measure(local_repeats: int = 5, turbo_repeats: int = 5) -> DiffusionBench:
    local = {}
    if models.spec("diffusion-shapes").availability().usable:
        model = models.get("diffusion-shapes")
        for steps in LOCAL_STEPS:
            request = Request("a large red triangle", steps=steps, guidance=2.0)
            run(model, request)  # warm-up
            local[steps] = Samples([seconds(lambda: run(model, request)) for _ in range(local_repeats)])
    pipe, setup = turbo_pipeline()
    turbo_app, turbo_bare = {}, {}
    for steps in TURBO_STEPS:
        turbo_app[steps], turbo_bare[steps] = turbo_against_bare(pipe, steps, turbo_repeats)
    return DiffusionBench(local, turbo_app, turbo_bare, setup)


def turbo_against_bare(pipe, steps: int, repeats: int) -> tuple[Samples, Samples]:
    """The app's SD-Turbo path and a bare ``pipe(prompt, num_inference_steps=steps, guidance_scale=0.0)``, alternated.

    Alternating lets drifting clocks or caches hit both alike; one untimed call of each first.
    """
    pipe.set_progress_bar_config(disable=True)
    app = TurboTextToImage(pipe, "sd-turbo")
    request = Request("a photo of a cat", steps=steps, guidance=0.0, scheduler="Euler")

    def bare() -> object:
        return pipe(request.prompt, num_inference_steps=steps, guidance_scale=0.0, generator=torch.Generator("cpu").manual_seed(0))

    bare(), run(app, request)
    app_times, bare_times = [], []
    for _ in range(repeats):
        app_times.append(seconds(lambda: run(app, request)))
        bare_times.append(seconds(bare))
    return Samples(app_times), Samples(bare_times)

