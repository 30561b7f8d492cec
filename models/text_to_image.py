"""What every text-to-image model shares: the request and its checks, the steps and the result, the samplers.

The local ShapesWorld model (``models/diffusion.py``) and SD-Turbo (``models/turbo.py``) both take a
``Request`` and ``denoise`` it into ``DenoisingStep``s and a ``Generation``, so the tab and the
benchmarks drive either one the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler
from PIL import Image

SCHEDULERS = {
    "DPM-Solver++": DPMSolverMultistepScheduler,
    "DDIM": DDIMScheduler,
    "Euler": EulerDiscreteScheduler,
    "DDPM": DDPMScheduler,
}
"""The samplers a user can pick; each is built ``from_config`` of the model's own scheduler config."""
MAX_IMAGES = 8
MAX_STEPS = 100


@dataclass(frozen=True)
class Request:
    """One generation request, already checked (``check_request``)."""

    prompt: str
    negative_prompt: str = ""
    seed: int = 0
    steps: int = 10
    guidance: float = 2.0
    scheduler: str = "DPM-Solver++"
    count: int = 1


def check_request(request: Request, max_steps: int = MAX_STEPS) -> None:
    """Raise ValueError with a message a user can act on, before any work starts."""
    if not request.prompt or not request.prompt.strip():
        raise ValueError('Write a prompt first, e.g. "a large red triangle".')
    if not 1 <= request.steps <= max_steps:
        raise ValueError(f"Steps must be between 1 and {max_steps} (got {request.steps}).")
    if not 1 <= request.count <= MAX_IMAGES:
        raise ValueError(f"Number of images must be between 1 and {MAX_IMAGES} (got {request.count}).")
    if not 0 <= request.guidance <= 20:
        raise ValueError(f"Guidance scale must be between 0 and 20 (got {request.guidance}).")
    if request.scheduler not in SCHEDULERS:
        raise ValueError(f"Unknown scheduler {request.scheduler!r}; pick one of {', '.join(SCHEDULERS)}.")
    if not 0 <= request.seed < 2**63:
        raise ValueError("The seed must be a non-negative whole number.")


@dataclass
class DenoisingStep:
    """One step of the reverse process, for the first image of the batch."""

    index: int  # 1-based
    total: int
    timestep: int
    noisy: Image.Image | None  # the sample the model was given at this step
    predicted: Image.Image | None  # its estimate of the clean image (local model), or the decoded sample (pretrained)
    seconds: float  # since the generation started


@dataclass
class Generation:
    images: list[Image.Image]
    steps: list[DenoisingStep]
    notices: list[str] = field(default_factory=list)  # what the model changed or ignored, said plainly
    blocked: list[bool] = field(default_factory=list)  # per image: the safety checker replaced it
    seconds: float = 0.0


def make_scheduler(name: str, config: dict):
    return SCHEDULERS[name].from_config(config)


def run(model, request: Request, capture: Sequence[int] = ()) -> Generation:
    """The finished generation, ignoring the steps (tests, evaluation, benchmarks)."""
    result = None
    for item in model.denoise(request, capture):
        result = item
    assert isinstance(result, Generation)
    return result
