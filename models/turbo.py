"""SD-Turbo through diffusers' own ``StableDiffusionPipeline``, with the safety checker by default.

``stabilityai/sd-turbo`` ships no safety checker (its ``model_index.json`` has none), so the app
adds the one the Stable Diffusion pipelines were published with,
``CompVis/stable-diffusion-safety-checker``, loaded through the same Hugging Face source class:
a public demo must not show what it flags. A flagged image comes back black from the pipeline
and the tab replaces it with a notice.

The pipeline is called exactly as diffusers documents SD-Turbo
(``pipe(prompt, num_inference_steps=1, guidance_scale=0.0)``), through a copy per scheduler that
shares the weights (``from_pipe``), on one worker thread, so runs never share scheduler state at
the same time. Its step callback hands each step's latents to the caller (``models/streaming.py``), and
stops the run when the caller goes away (the Stop button closes the generator).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator, Sequence

import torch
from torch import nn

from .sources import HuggingFaceWeights, PipelineWeights
from .spec import ModelSpec
from .streaming import stream_steps
from .text_to_image import DenoisingStep, Generation, Request, make_scheduler

TURBO = HuggingFaceWeights("stabilityai/sd-turbo")
SAFETY_CHECKER = HuggingFaceWeights("CompVis/stable-diffusion-safety-checker")
TURBO_LICENSE = "Stability AI Non-Commercial Community License (sai-nc-community); safety checker: no licence on its model card"
TURBO_MAX_STEPS = 4


class TurboTextToImage(nn.Module):
    """The SD-Turbo pipeline, its parts registered as submodules so the model cache can move and size them."""

    def __init__(self, pipe, name: str) -> None:
        super().__init__()
        self.pipe = pipe
        self.name = name
        self.max_steps = TURBO_MAX_STEPS
        self.parts = nn.ModuleDict({k: v for k, v in pipe.components.items() if isinstance(v, nn.Module)})
        self._pipes: dict[str, object] = {}  # one copy per scheduler, sharing the weights
        # One long-lived worker: runs are serialised (a scheduler's state is per run), and torch's
        # CPU thread pool is made once, not per request (a fresh thread cost 28 ms a call here).
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="sd-turbo")
        self.eval()

    @property
    def image_size(self) -> int:
        return int(self.pipe.unet.config.sample_size * self.pipe.vae_scale_factor)

    def token_overflow(self, prompt: str) -> int:
        """How many tokens of ``prompt`` the text encoder cannot read (it reads 77, start and end included)."""
        tokenizer = self.pipe.tokenizer
        return max(0, len(tokenizer(prompt, truncation=False).input_ids) - tokenizer.model_max_length)

    def notices_for(self, request: Request) -> list[str]:
        notices = []
        for label, text in (("prompt", request.prompt), ("negative prompt", request.negative_prompt)):
            cut = self.token_overflow(text) if text else 0
            if cut:
                notices.append(f"The {label} is longer than the text encoder's 77 tokens: its last {cut} tokens were ignored.")
        if request.negative_prompt.strip() and request.guidance <= 1:
            notices.append("A negative prompt only acts with guidance above 1 (SD-Turbo is made for guidance 0).")
        return notices

    def decode(self, latents: torch.Tensor):
        """Latents -> PIL images through the VAE, as the pipeline's own last step does."""
        vae = self.pipe.vae
        with torch.inference_mode():
            image = vae.decode(latents.to(vae.dtype) / vae.config.scaling_factor, return_dict=False)[0]
        return self.pipe.image_processor.postprocess(image, output_type="pil")

    def pipe_with(self, scheduler: str):
        """The pipeline with ``scheduler`` (diffusers' ``from_pipe``: the same weights, its own scheduler), made once."""
        from diffusers import StableDiffusionPipeline

        if scheduler not in self._pipes:
            pipe = StableDiffusionPipeline.from_pipe(self.pipe, scheduler=make_scheduler(scheduler, self.pipe.scheduler.config))
            pipe.set_progress_bar_config(disable=True)
            self._pipes[scheduler] = pipe
        return self._pipes[scheduler]

    def denoise(self, request: Request, capture: Sequence[int] = ()) -> Iterator[DenoisingStep | Generation]:
        """Run the pipeline on the worker thread; yield a DenoisingStep per step, then the Generation."""
        started = time.perf_counter()
        pipe = self.pipe_with(request.scheduler)
        steps: list[DenoisingStep] = []

        def run(emit, stopped: threading.Event):
            def on_step(pipeline, index: int, timestep, tensors: dict) -> dict:
                shown = index + 1 in capture
                sample = self.decode(tensors["latents"][:1])[0] if shown else None
                steps.append(DenoisingStep(index + 1, request.steps, int(timestep), None, sample, time.perf_counter() - started))
                emit(steps[-1])
                if stopped.is_set():
                    pipeline._interrupt = True  # diffusers' documented way to end a run from its callback
                return tensors

            generator = torch.Generator("cpu").manual_seed(request.seed)
            return pipe(
                request.prompt, negative_prompt=request.negative_prompt or None, num_inference_steps=request.steps,
                guidance_scale=request.guidance, num_images_per_prompt=request.count, generator=generator,
                callback_on_step_end=on_step,
            )

        output = yield from stream_steps(run, self._worker)
        blocked = list(output.nsfw_content_detected or [False] * len(output.images))
        notices = self.notices_for(request)
        if any(blocked):
            notices.append(f"The safety checker blocked {sum(blocked)} of {len(blocked)} images.")
        yield Generation(list(output.images), steps, notices, blocked, time.perf_counter() - started)


def _load_turbo(spec: ModelSpec) -> TurboTextToImage:
    from diffusers import StableDiffusionPipeline
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPImageProcessor

    checker, features = SAFETY_CHECKER.build(StableDiffusionSafetyChecker, CLIPImageProcessor)
    (pipe,) = TURBO.build(StableDiffusionPipeline, safety_checker=checker, feature_extractor=features)
    return TurboTextToImage(pipe, spec.name)


def turbo_spec() -> ModelSpec:
    return ModelSpec(
        name="sd-turbo",
        task="diffusion",
        tier="pretrained",
        title="SD-Turbo (512x512, 1-4 steps, non-commercial licence)",
        source=PipelineWeights((TURBO, SAFETY_CHECKER)),
        license=TURBO_LICENSE,
        params=1_289_952_427,  # UNet 865.9 M + text encoder 340.4 M + VAE 83.7 M (+ safety checker 304 M, loaded alongside)
        load=_load_turbo,
        about="`StableDiffusionPipeline.from_pretrained('stabilityai/sd-turbo')` + "
        "`CompVis/stable-diffusion-safety-checker`; adversarial diffusion distillation of SD 2.1",
    )
