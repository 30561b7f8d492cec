"""Text-to-image diffusion: the local ShapesWorld model and SD-Turbo, one interface, and specs().

Both tiers are diffusers classes. The local model is ``UNet2DModel`` + a prompt encoder
(``models/nets/diffusion.py``) sampled by this module's loop, so that every step's noisy sample
and predicted clean image can be shown; the pretrained one is diffusers' own
``StableDiffusionPipeline`` called as its documentation shows, with a step callback that hands
each step's latents out (and can stop the run).

``denoise`` yields one ``DenoisingStep`` per scheduler step and the finished ``Generation`` last
(``models/text_to_image.py``), so a caller can stream progress and stop early by closing the generator.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Iterator, Sequence

import torch
from PIL import Image
from torch import nn

from .nets.diffusion import ParsedPrompt, PromptEncoder, ShapesDiffusion, parse_prompt
from .sources import LocalWeights
from .spec import ModelSpec, local_spec
from .text_to_image import MAX_STEPS, DenoisingStep, Generation, Request, make_scheduler
from .turbo import turbo_spec


def to_pil(batch: torch.Tensor) -> list[Image.Image]:
    """(B,3,H,W) in [-1, 1] -> RGB images."""
    array = ((batch.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(a) for a in array]


def understand(prompt: str, otherwise: str = "") -> tuple[ParsedPrompt, list[str]]:
    """What a local ShapesWorld generator reads from ``prompt``, and notices that name the words it could not.

    Shared by the local diffusion model, VAE and GAN, which read prompts the same way; ``otherwise``
    ends the notice for a prompt with no known word (where else to turn).
    """
    parsed = parse_prompt(prompt)
    notices = []
    if not parsed.known:
        notices.append(
            "The local model knows only ShapesWorld's words (sizes: small, large; colours: red, green, blue, "
            "yellow, purple, orange; shapes: circle, square, triangle, star, ring) and found none in this prompt, "
            f"so it drew an unconditional sample. {otherwise}".strip()
        )
    elif parsed.ignored:
        notices.append(f"Ignored words the local model has no meaning for: {', '.join(parsed.ignored)}.")
    if parsed.known:
        notices.append(f'The local model read the prompt as "{parsed.text()}".')
    return parsed, notices


class ShapesTextToImage(nn.Module):
    """The local model with its training scheduler's config: prompts in, 32x32 ShapesWorld objects out."""

    def __init__(self, network: ShapesDiffusion, scheduler_config: dict, name: str) -> None:
        super().__init__()
        self.network = network
        self.scheduler_config = dict(scheduler_config)
        self.name = name
        self.max_steps = MAX_STEPS
        self.eval()

    @property
    def image_size(self) -> int:
        return self.network.image_size

    def understand(self, prompt: str) -> tuple[ParsedPrompt, list[str]]:
        """The attributes the model reads from ``prompt``, and notices about the rest."""
        return understand(prompt, "Try the pretrained model for other prompts.")

    @torch.inference_mode()
    def denoise(self, request: Request, capture: Sequence[int] = ()) -> Iterator[DenoisingStep | Generation]:
        """Sample ``request.count`` images; yield each step (images for steps in ``capture``), then the result.

        The reverse process with classifier-free guidance: each step runs the UNet on the batch with
        the prompt and without it (all attributes "unspecified") and extrapolates,
        ``uncond + guidance * (cond - uncond)``; the scheduler turns that prediction into the next sample.
        """
        started = time.perf_counter()
        parsed, notices = self.understand(request.prompt)
        if request.negative_prompt.strip():
            notices.append("The local model has no negative prompt; it was ignored.")
        device = next(self.network.parameters()).device
        scheduler = make_scheduler(request.scheduler, self.scheduler_config)
        scheduler.set_timesteps(request.steps, device=device)
        generator = torch.Generator("cpu").manual_seed(request.seed)  # DDPM's per-step noise
        size = self.image_size
        noise = [torch.randn((1, 3, size, size), generator=torch.Generator("cpu").manual_seed(request.seed + i)) for i in range(request.count)]
        sample = torch.cat(noise).to(device) * scheduler.init_noise_sigma  # image k of a batch is what seed + k draws alone
        rows = torch.tensor([parsed.rows()] * request.count, device=device)
        unconditional = PromptEncoder.unconditional_rows(request.count).to(device)
        guided = request.guidance != 1.0
        both = torch.cat([rows, unconditional]) if guided else rows
        alphas = scheduler.alphas_cumprod.to(device)
        steps = []
        for index, t in enumerate(scheduler.timesteps, start=1):
            model_input = scheduler.scale_model_input(sample, t)  # the DDPM-space sample x_t the network sees
            batch = torch.cat([model_input] * 2) if guided else model_input
            output = self.network(batch, t.expand(len(batch)), both)
            if guided:
                conditional, unconditional_out = output.chunk(2)
                output = unconditional_out + request.guidance * (conditional - unconditional_out)
            step = scheduler.step(output, t, sample, generator=generator, return_dict=True)
            noisy = predicted = None
            if index in capture:
                alpha = alphas[int(t)]
                noisy = to_pil(model_input[:1])[0]
                predicted = to_pil(alpha.sqrt() * model_input[:1] - (1 - alpha).sqrt() * output[:1])[0]  # v-prediction -> x_0
            record = DenoisingStep(index, len(scheduler.timesteps), int(t), noisy, predicted, time.perf_counter() - started)
            steps.append(record)
            yield record
            sample = step.prev_sample
        yield Generation(to_pil(sample), steps, notices, [False] * request.count, time.perf_counter() - started)


def _load_local(spec: ModelSpec) -> ShapesTextToImage:
    source: LocalWeights = spec.source  # type: ignore[assignment]
    state = source.state_dict()
    card = source.card()
    network = ShapesDiffusion(card["config"])
    network.load_state_dict({k: v.float() for k, v in state.items()})
    return ShapesTextToImage(network, card["scheduler"], spec.name)


def _local_spec() -> ModelSpec:
    metrics = {"ShapesWorld generations judged right (shape and colour)": "generation_accuracy"}
    about = (
        "diffusers' `UNet2DModel` with a prompt embedding through its class embedding (`models/nets/diffusion.py`), "
        "v-prediction, classifier-free guidance; trained by `python -m models train diffusion-shapes`"
    )
    spec = local_spec("diffusion", "diffusion-shapes", "ShapesWorld diffusion (32x32)", _load_local, metrics, about)
    # float32 even on a GPU (1 M parameters: half precision saves nothing); the CPU default, since SD-Turbo
    # at 512x512 takes tens of seconds a step there and this model a tenth of a second an image.
    return dataclasses.replace(spec, half_precision_ok=False, fast_on_cpu=True)


def specs() -> list[ModelSpec]:
    """Text-to-image models: SD-Turbo first (most capable), the local model second."""
    return [turbo_spec(), _local_spec()]
