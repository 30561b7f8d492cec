"""Text-to-image diffusion tab: write a prompt, watch noise become a picture, step by step.

Pure functions first (``request_from``, ``captured_steps``, ``pictured``, ``denoising_gallery``,
``notice_image``, ``time_left``, the progress notes), then the streaming handlers and ``build()``.
The model side is ``models.diffusion`` (the local ShapesWorld model, sampled by the project's own
loop) and ``models.turbo`` (SD-Turbo through diffusers' pipeline, with the safety checker).
"""

from __future__ import annotations

from typing import Iterator

import gradio as gr
from PIL import Image, ImageDraw

import models
from models.text_to_image import MAX_IMAGES, MAX_STEPS, SCHEDULERS, DenoisingStep, Generation, Request, check_request

from . import common, drawing, errors, picker, wiring

TITLE = "Text to image"
TASK = "diffusion"
ENDPOINT = "generate"  # the tab's main action, served at /generate

SHOWN_STEPS = 8  # denoising panels: at most this many steps, spread over the run
SHOWN_SIDE = 256  # small images are shown enlarged (nearest neighbour) to about this side
DEFAULTS = {"local": {"steps": 10, "guidance": 4.0, "max_steps": 50}, "pretrained": {"steps": 1, "guidance": 0.0, "max_steps": 4}}
"""Per tier: the sampling that works (SD-Turbo is distilled for 1-4 steps without guidance)."""
LOCAL_PROMPT = "a large red triangle"
PHOTO_PROMPT = "a photo of a cat wearing an astronaut helmet, studio light"
CONCURRENCY = "diffusion"  # one generation at a time, whichever button started it: the other tabs keep their cores


def request_from(
    prompt: str, negative: str, seed: int, steps: int, guidance: float, scheduler: str, count: int, max_steps: int = MAX_STEPS
) -> Request:
    """A checked Request from the widgets' values (whole numbers are typed so in the API; an older client may send floats)."""
    request = Request(
        prompt=(prompt or "").strip(), negative_prompt=(negative or "").strip(), seed=int(seed or 0), steps=int(steps or 0),
        guidance=float(guidance), scheduler=scheduler, count=int(count or 0),
    )
    check_request(request, max_steps)
    return request


def captured_steps(total: int, shown: int = SHOWN_STEPS) -> list[int]:
    """Which steps (1-based) to picture: all of a short run, else ``shown`` spread evenly, first and last included."""
    if total <= shown:
        return list(range(1, total + 1))
    return sorted({round(1 + i * (total - 1) / (shown - 1)) for i in range(shown)})


def pictured(reached: list[DenoisingStep]) -> list[DenoisingStep]:
    """The steps the denoising strip shows: those ``captured_steps`` spreads over the run, and the last one reached.

    The last one matters when a run is stopped between two spread steps: the strip then ends where the run did.
    """
    if not reached:
        return []
    spread = set(captured_steps(reached[-1].total))
    return [step for step in reached[:-1] if step.index in spread] + [reached[-1]]


def progress_note(step: DenoisingStep) -> str:
    return f"Denoising… step {step.index} of {step.total}"


def stopped_note(step: DenoisingStep) -> str:
    return f"Stopped at step {step.index} of {step.total}."


def denoising_gallery(steps: list[DenoisingStep]) -> list[tuple[Image.Image, str]]:
    """Pictured steps as gallery items: the noisy input and the clean estimate, side by side per step."""
    items = []
    for step in steps:
        where = f"step {step.index}/{step.total} · t={step.timestep}"
        if step.noisy is not None:
            items.append((drawing.upscale_for_display(step.noisy, SHOWN_SIDE), f"{where} · noisy input x_t"))
        if step.predicted is not None:
            kind = "predicted clean image x̂_0" if step.noisy is not None else "sample after this step"
            items.append((drawing.upscale_for_display(step.predicted, SHOWN_SIDE), f"{where} · {kind}"))
    return items


def notice_image(size: int, text: str) -> Image.Image:
    """A grey tile that says why an image is missing (the safety checker blocked it)."""
    tile = Image.new("RGB", (size, size), (90, 90, 90))
    draw = ImageDraw.Draw(tile)
    draw.multiline_text((size // 12, size // 2 - size // 12), text, fill=(255, 255, 255), font_size=max(10, size // 20), spacing=6)
    return tile


def shown_images(result: Generation) -> list[tuple[Image.Image, str]]:
    """The generated images for the gallery, blocked ones replaced by a notice."""
    items = []
    for i, image in enumerate(result.images):
        if result.blocked and result.blocked[i]:
            items.append((notice_image(max(SHOWN_SIDE, image.width), "Blocked by the\nsafety checker"), f"image {i + 1}: blocked"))
        else:
            items.append((drawing.upscale_for_display(image, SHOWN_SIDE), f"image {i + 1}"))
    return items


def time_left(step: DenoisingStep) -> float:
    """Seconds still to go, from the average time per step so far (the first step includes encoding the prompt)."""
    return step.seconds / step.index * (step.total - step.index)


def notes_markdown(result: Generation, request: Request, model_name: str) -> str:
    spec = models.spec(model_name)
    lines = [f"{len(result.images)} image(s) from **{spec.title}** in {result.seconds:.1f} s "
             f"({request.steps} {request.scheduler} steps, guidance {request.guidance:g}, seed {request.seed})."]
    return "\n\n".join(lines + [f"- {n}" for n in result.notices])


def stream(model, request: Request, progress, pictured: bool = True) -> Iterator[DenoisingStep | Generation]:
    """Run the model, reporting every step in the progress bar with an honest time estimate.

    ``pictured``: also picture every step of the first image (the strip shows ``pictured`` of them, and a
    stopped run's last one); off where only the images are shown.
    """
    for item in model.denoise(request, range(1, request.steps + 1) if pictured else ()):
        if isinstance(item, DenoisingStep):
            progress(
                (item.index, item.total), desc=f"step {item.index}/{item.total} · {item.seconds:.1f} s, about {time_left(item):.0f} s left"
            )
        yield item


# ---------------------------------------------------------------- UI


@errors.user_errors(gpu_seconds=60)
def _generate_ui(
    prompt: str, negative_prompt: str, seed: int, steps: int, guidance: float, scheduler: str, count: int, model_name: str,
    progress: gr.Progress = gr.Progress(),
):
    """Generate images from a text prompt; streams the denoising as it goes.

    Args:
        prompt: what to draw, e.g. "a large red triangle" (local model: ShapesWorld's words only).
        negative_prompt: what to steer away from (pretrained model, with guidance above 1).
        seed: the random seed of the starting noise; the same seed gives the same image.
        steps: denoising steps (local: 1-50, SD-Turbo: 1-4).
        guidance: classifier-free guidance scale (local: 4, chosen on validation seeds; SD-Turbo: 0).
        scheduler: the sampler: "DPM-Solver++", "DDIM", "Euler" or "DDPM".
        count: how many images, 1-8, in one batch (local model: image k is the one seed + k gives alone).
        model_name: "diffusion-shapes" (local, 32x32) or "sd-turbo" (pretrained, 512x512).

    Returns:
        The images, notes (timing and anything changed or ignored), and the denoising steps of the first image.
    """
    yield [], "", [], []  # a new run's results replace the last run's at once, so a failure below leaves none behind
    request = request_from(prompt, negative_prompt, seed, steps, guidance, scheduler, count)  # before any loading
    model = common.load_model(model_name, progress)
    check_request(request, model.max_steps)
    reached: list[DenoisingStep] = []  # kept in the page's state at every step, for Stop (``_stopped_ui``)
    # The strip grows by a spread step at a time. Each picture is written to a file once and sent by path: sent
    # again as an image, Gradio would rewrite its cached file while the page may still be fetching it (a broken image).
    strip: list[tuple[str, str]] = []
    for item in stream(model, request, progress):
        if isinstance(item, DenoisingStep):
            reached = pictured([*reached, item])
            spread = item.index in captured_steps(item.total)
            if spread:
                strip += [(common.save_output(picture, "denoising"), caption) for picture, caption in denoising_gallery([item])]
            yield gr.skip(), progress_note(item), list(strip) if spread else gr.skip(), reached
            continue
        yield shown_images(item), notes_markdown(item, request, model_name), list(strip), []


def _stopped_ui(reached: list[DenoisingStep]):
    """A run ended without its images (Stop, or a failure): keep the steps it reached and say where it stopped.

    Gradio runs this in the page after cancelling a run, and after a run fails; a run that failed
    before its first step has reached nothing, and its outputs are emptied.
    """
    if not reached:
        return [], "", [], []
    return gr.skip(), stopped_note(reached[-1]), denoising_gallery(reached), []


@errors.user_errors(gpu_seconds=60)
def _guidance_ui(
    prompt: str, negative_prompt: str, seed: int, steps: int, guidance: float, scheduler: str, model_name: str, other: float,
    progress: gr.Progress = gr.Progress(),
):
    """The same seed and prompt at two guidance scales: what classifier-free guidance changes."""
    model = common.load_model(model_name, progress)
    pictures = []
    for scale in (float(other), float(guidance)):
        request = request_from(prompt, negative_prompt, seed, steps, scale, scheduler, 1, model.max_steps)
        result = None
        for item in stream(model, request, progress, pictured=False):
            result = item
        assert isinstance(result, Generation)
        pictures.append((shown_images(result)[0][0], f"guidance {scale:g}"))
    return pictures


def _model_changed(model_name: str):
    """Card, and the prompt, steps, guidance and scheduler that suit the model's tier."""
    spec = models.spec(model_name)
    tier = DEFAULTS[spec.tier]
    prompt = LOCAL_PROMPT if spec.tier == "local" else PHOTO_PROMPT
    return (
        picker.model_picked(model_name),
        gr.update(maximum=tier["max_steps"], value=tier["steps"]),
        tier["guidance"],
        prompt,
        gr.update(interactive=spec.tier == "pretrained"),
        "DPM-Solver++" if spec.tier == "local" else "Euler",
    )


def build() -> None:
    gr.Markdown(
        "A diffusion model starts from pure noise and removes a little of it at every step, guided by the prompt. "
        "The local model was trained here on ShapesWorld's single-object pictures (prompts like “a small blue ring”); "
        "SD-Turbo is Stability AI's distilled Stable Diffusion, which needs only 1 to 4 steps. Open *Denoising, step by "
        "step* to watch noise become a shape, and *Guidance* to see what classifier-free guidance does."
    )
    default = models.default_for(TASK).name
    tier = DEFAULTS[models.spec(default).tier]
    with gr.Row():
        with gr.Column():
            prompt = gr.Textbox(LOCAL_PROMPT if models.spec(default).tier == "local" else PHOTO_PROMPT, label="Prompt", lines=2)
            negative = gr.Textbox(
                "", label="Negative prompt (pretrained, with guidance above 1)", interactive=models.spec(default).tier == "pretrained"
            )
            model = picker.model_picker(TASK)
            with gr.Row():
                seed = gr.Number(0, label="Seed", precision=0, minimum=0)
                count = common.int_slider(1, MAX_IMAGES, 1, label="Images")
            with gr.Row():
                steps = common.int_slider(  # the API checks against this maximum, whichever model the page starts with
                    1, DEFAULTS["local"]["max_steps"], tier["steps"], label="Steps", info="SD-Turbo: 1 to 4",
                )
                guidance = gr.Slider(0, 10, value=tier["guidance"], step=0.25, label="Guidance scale", info="1 = no guidance")
            scheduler = gr.Dropdown(
                list(SCHEDULERS), value="DPM-Solver++" if models.spec(default).tier == "local" else "Euler", label="Scheduler",
                info="how each step's prediction becomes the next sample; all start from the same noise",
            )
            with gr.Row():
                run = gr.Button("Generate", variant="primary")
                stop = gr.Button("Stop", variant="stop")
        with gr.Column():
            images = gr.Gallery(
                label="Generated", columns=4, height="auto", object_fit="contain", format="png", preview=False,
                elem_classes="dvl-fit",
            )
            notes = gr.Markdown(label="Notes")
            card = gr.Markdown(picker.model_card_markdown(default))
    examples = gr.Examples(
        [["a large red triangle"], ["a small blue ring"], ["a large yellow star"], ["a green square"]],
        inputs=[prompt], label="Prompts the local model knows",
    )
    with gr.Accordion("Denoising, step by step (first image)", open=True):
        gr.Markdown(
            "At each pictured step: the noisy image the network was given (x_t) and its estimate of the finished image "
            "(x̂_0, from the predicted velocity: x̂_0 = √ᾱ_t · x_t − √(1−ᾱ_t) · v). Early estimates are blurry averages of "
            "everything the prompt could mean; each step commits to more detail. For SD-Turbo each step's latent "
            "is decoded by the VAE instead."
        )
        denoising = gr.Gallery(
            label="Denoising", columns=4, height="auto", object_fit="contain", format="png", preview=False, elem_classes="dvl-fit"
        )
    with gr.Accordion("Guidance: the same seed at two scales", open=False):
        gr.Markdown(
            "Classifier-free guidance runs the network with the prompt and without it and moves further along the "
            "difference: output = unconditional + scale × (conditional − unconditional). Scale 1 is the plain "
            "conditional model; larger scales follow the prompt harder, until the image saturates and breaks."
        )
        other = gr.Slider(0, 10, value=1.0, step=0.25, label="Compare with guidance scale")
        compare = gr.Button("Compare")
        compared = gr.Gallery(
            label="Same seed, two guidance scales", columns=2, height="auto", object_fit="contain", format="png", preview=False,
            elem_classes="dvl-fit",
        )

    reached = gr.State([])  # the steps the running generation has reached (``_generate_ui``)
    inputs = [prompt, negative, seed, steps, guidance, scheduler, count, model]
    outputs = [images, notes, denoising, reached]
    generate = wiring.named_endpoint(_generate_ui, ENDPOINT)
    one_at_a_time = {"concurrency_limit": 1, "concurrency_id": CONCURRENCY}
    events = [
        run.click(generate, inputs, outputs, api_name=ENDPOINT, **one_at_a_time),
        prompt.submit(_generate_ui, inputs, outputs, api_visibility="private", **one_at_a_time),
        # an example runs at once, as on every tab
        examples.load_input_event.then(_generate_ui, inputs, outputs, api_visibility="private", **one_at_a_time),
    ]
    comparison = compare.click(
        _guidance_ui, [prompt, negative, seed, steps, guidance, scheduler, model, other], compared,
        api_visibility="private", **one_at_a_time,
    )
    for event in events:  # Gradio fires an event's failure listeners when Stop cancels it, too
        event.failure(_stopped_ui, reached, outputs, api_visibility="private", show_progress="hidden", queue=False)
    wiring.clear_on_failure(comparison, [compared])
    stop.click(None, None, None, cancels=[*events, comparison], api_visibility="private")
    model.change(_model_changed, model, [card, steps, guidance, prompt, negative, scheduler], api_visibility="private")
