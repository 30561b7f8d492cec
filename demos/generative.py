"""VAE and GAN tab: sample, interpolate, map the latent space, autoencode, and compare the three families.

Pure functions first (``sample``, ``interpolate``, ``latent_map``, ``autoencode``, ``compare`` and their
figures), then the handlers and ``build()``. The model side is ``models.generative`` (the local VAE
and GAN, Stable Diffusion's autoencoder), ``models.diffusion`` for the third family and
``models.judging`` for the judge every local generator is measured by.
"""

from __future__ import annotations

import time

import gradio as gr
from PIL import Image, ImageDraw

import models
from models.generative import MAX_FRAMES, Reconstruction, can_autoencode, can_sample, training_snapshots
from models.judging import DIFFUSION_SAMPLING, asked, diversity, judge, read
from models.text_to_image import MAX_IMAGES, Request, run

from . import common, drawing, errors, scenes, upload, wiring

TITLE = "VAE and GAN"
TASK = "generative"
ENDPOINT = "sample"
AUTOENCODE_ENDPOINT = "autoencode"
DIFFUSION = "diffusion-shapes"
SHOWN_SIDE = 128  # 32x32 pictures are shown enlarged (nearest neighbour) to this side
PROMPT = "a large red triangle"
FAMILIES = (("GAN", "gan-shapes"), ("VAE", "vae-shapes"), ("Diffusion", DIFFUSION))


def _choices(keep) -> list[tuple[str, str]]:
    return [(spec.label, spec.name) for spec in models.for_task(TASK) if keep(spec.name)]


def _gallery(images: list[Image.Image], captions: list[str]) -> list[tuple[Image.Image, str]]:
    return [(drawing.upscale_for_display(image, SHOWN_SIDE), caption) for image, caption in zip(images, captions)]


def sample(prompt: str, model_name: str, seed: int, count: int) -> tuple[list, dict]:
    """``count`` samples and their figures: seeds, seconds, how the prompt was read."""
    if not can_sample(model_name):
        raise ValueError(f"{model_name} does not draw new pictures; pick the GAN or the VAE.")
    result = models.get(model_name).sample(prompt, int(seed), int(count))
    seeds = list(range(int(seed), int(seed) + len(result.images)))
    figures = {"model": model_name, "prompt": prompt, "seeds": seeds, "seconds": round(result.seconds, 4), "notices": result.notices}
    return _gallery(result.images, [f"seed {s}" for s in seeds]), figures


def interpolate(prompt: str, model_name: str, seed_a: int, seed_b: int, frames: int) -> list:
    """The strip from seed_a's sample to seed_b's, along the arc between their noise vectors."""
    if not can_sample(model_name):
        raise ValueError(f"{model_name} does not draw new pictures; pick the GAN or the VAE.")
    result = models.get(model_name).interpolate(prompt, int(seed_a), int(seed_b), int(frames))
    last = len(result.images) - 1
    captions = [f"seed {seed_a}" if i == 0 else f"seed {seed_b}" if i == last else f"t = {i / last:.2f}" for i in range(last + 1)]
    return _gallery(result.images, captions)


def latent_map(prompt: str, side: int = 7) -> Image.Image:
    """The VAE's decoded pictures on a grid over its two most informative latent dimensions, with the axes labelled."""
    vae = models.get("vae-shapes")
    pictures, values = vae.latent_map(prompt, side)
    tile, margin = 64, 70
    canvas = Image.new("RGB", (margin + side * (tile + 2), side * (tile + 2) + margin), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for i, picture in enumerate(pictures):
        row, column = divmod(i, side)
        canvas.paste(picture.resize((tile, tile), Image.Resampling.NEAREST), (margin + column * (tile + 2), row * (tile + 2)))
    for k, value in enumerate(values):
        draw.text((margin + k * (tile + 2) + tile // 2, side * (tile + 2) + 4), f"{value:+.1f}", fill=(0, 0, 0), anchor="ma", font_size=13)
        draw.text((margin - 4, (side - 1 - k) * (tile + 2) + tile // 2), f"{value:+.1f}", fill=(0, 0, 0), anchor="rm", font_size=13)
    first, second = vae.map_dims
    draw.text((margin + side * (tile + 2) // 2, side * (tile + 2) + 22), f"latent z[{first}], left to right", fill=(0, 0, 0), anchor="ma", font_size=14)
    axis = Image.new("RGB", (side * (tile + 2), 18), (255, 255, 255))
    ImageDraw.Draw(axis).text((side * (tile + 2) // 2, 2), f"latent z[{second}], bottom to top", fill=(0, 0, 0), anchor="ma", font_size=14)
    canvas.paste(axis.rotate(90, expand=True), (0, 0))
    return canvas


def latent_picture(reconstruction: Reconstruction) -> tuple[Image.Image, str]:
    """The code between encoder and decoder: SD's four channels side by side, or the local VAE's vector as cells."""
    latents = reconstruction.latents
    if latents.ndim == 3:
        tile = max(64, min(256, 4 * max(latents.shape[1:])))
        picture = drawing.channel_grid(latents, max_channels=4, tile=tile)
        return picture, (
            f"{len(latents)} latent channels, {latents.shape[1]}x{latents.shape[2]} each "
            f"(1/{reconstruction.original.width // latents.shape[2]} of the side), each on its own colour scale"
        )
    cells = latents.reshape(4, -1)
    return drawing.channel_grid(cells[None], tile=256), f"{latents.size} latent values (the posterior's mean), 4 x {cells.shape[1]} cells"


def autoencode(image: Image.Image, model_name: str, prompt: str = "") -> tuple[list, dict]:
    """Round trip through an autoencoder: the input as it saw it, the reconstruction, the latent; and the figures.

    The local VAE is told what the picture shows; with no prompt, the judge reads its colour and shape.
    """
    if not can_autoencode(model_name):
        raise ValueError(f"{model_name} has no encoder; pick the local VAE or Stable Diffusion's autoencoder.")
    read_by_judge = []
    if model_name == "vae-shapes" and not (prompt or "").strip():
        colour, shape = judge([image])[0]
        prompt = f"a {colour} {shape}"
        read_by_judge = [f'No prompt given: the judge read the picture as "{prompt}" (size unspecified).']
    result = models.get(model_name).autoencode(image, prompt or "")
    result.notices = read_by_judge + result.notices
    latent, about = latent_picture(result)
    side = max(256, result.original.width)
    gallery = [
        (drawing.upscale_for_display(result.original, side), f"input {result.original.width}x{result.original.height}"),
        (drawing.upscale_for_display(result.reconstruction, side), f"reconstruction · PSNR {result.psnr_db:.1f} dB"),
        (latent, about),
    ]
    figures = {
        "model": model_name, "input_size": list(result.original.size), "latent_shape": list(result.latents.shape),
        "compression_ratio": round(result.compression, 2), "psnr_db": round(result.psnr_db, 2), "mse": round(result.mse, 2),
        "seconds": round(result.seconds, 4), "notices": result.notices,
    }
    return gallery, figures


def family_samples(name: str, prompt: str, seed: int, count: int) -> tuple[list[Image.Image], float]:
    """``count`` samples of ``prompt`` from seeds seed.. by local model ``name``, and the seconds they took."""
    model = models.get(name)
    started = time.perf_counter()
    if name == DIFFUSION:
        images = run(model, Request(prompt.strip(), seed=seed, count=count, **DIFFUSION_SAMPLING)).images
    else:
        images = model.sample(prompt, seed, count).images
    return images, time.perf_counter() - started


def compare(prompt: str, seed: int, count: int) -> tuple[list[list], list]:
    """The same prompt and seeds through the GAN, the VAE and the diffusion model: one table row each, and the pictures."""
    models.get("gan-shapes").sample(prompt, int(seed), int(count))  # the checks (prompt, seed, count) before any work
    colour, shape = asked(prompt)
    rows, gallery = [], []
    for family, name in FAMILIES:
        images, seconds = family_samples(name, prompt, int(seed), int(count))
        reading = read(images)
        right = [(colour is None or c == colour) and (shape is None or s == shape) for c, s in reading.seen]
        card = models.spec(name).source.card().get("metrics", {})
        rows.append([
            family, name, round(seconds, 3), round(seconds / len(images), 4), f"{sum(right)} of {len(right)}",
            card.get("generation_accuracy", "—"), round(diversity(reading.features), 4), card.get("diversity", "—"),
        ])
        gallery += _gallery(images, [f"{family} · seed {int(seed) + i} · judged {' '.join(seen)} {'✓' if ok else '✗'}"
                                     for i, (seen, ok) in enumerate(zip(reading.seen, right))])
    return rows, gallery


COMPARE_HEADERS = [
    "family", "model", "seconds", "seconds per picture", "judged right (these)", "judged right (bar, 500 unseen seeds)",
    "diversity (these seeds)", "diversity (bar)",
]

# ---------------------------------------------------------------- UI


@errors.user_errors
def _sample_ui(prompt: str = PROMPT, model_name: str = "gan-shapes", seed: int = 0, count: int = 4):
    """Draw new pictures from a local generator.

    Args:
        prompt: what to draw, e.g. "a large red triangle" (ShapesWorld's sizes, colours and shapes).
        model_name: "gan-shapes" (local GAN) or "vae-shapes" (local VAE).
        seed: picture k comes from seed + k alone; the same seed gives the same picture.
        count: how many pictures, 1-8.

    Returns:
        The pictures (PNG) and their figures as JSON (seeds, seconds, how the prompt was read).
    """
    return sample(prompt, model_name, seed, count)


@errors.user_errors
def _autoencode_ui(image_path: str | None, model_name: str = "vae-shapes", prompt: str = ""):
    """Encode a picture to its latent and decode it again.

    Args:
        image_path: the picture (the local VAE scales it to 32x32; SD's autoencoder takes up to 512 a side).
        model_name: "vae-shapes" (local, 32 numbers) or "sd-vae" (Stable Diffusion's autoencoder, 4 channels at 1/8).
        prompt: local VAE only: what the picture shows ("a small blue ring"); empty: the judge reads its colour and shape.

    Returns:
        The input as the model saw it, its reconstruction and the latent (PNGs), and the figures as JSON
        (compression ratio, PSNR, MSE, seconds).
    """
    if not image_path:
        raise ValueError("Upload a picture first (or press New unseen object).")
    found = scenes.object_of(image_path)
    if found and not (prompt or "").strip() and model_name == "vae-shapes":
        prompt = found[1]  # a ShapesWorld object: its own prompt, as the VAE was trained
    return autoencode(common.read_image(image_path), model_name, prompt)


@errors.user_errors
def _interpolate_ui(prompt: str, model_name: str, seed_a: int, seed_b: int, frames: int):
    return interpolate(prompt, model_name, seed_a, seed_b, frames)


@errors.user_errors
def _map_ui(prompt: str):
    return latent_map(prompt)


@errors.user_errors
def _compare_ui(prompt: str, seed: int, count: int):
    rows, gallery = compare(prompt, seed, count)
    return gr.update(value=rows, headers=COMPARE_HEADERS), gallery


def build() -> None:
    gr.Markdown(
        "Two more families of generative model beside diffusion. A **VAE** learns an encoder to a small Gaussian latent "
        "and a decoder back; sampling decodes noise, and its averaging loss makes pictures blurry. A **GAN** trains a "
        "generator against a discriminator; one forward pass draws a sharp picture, but nothing forces it to cover every "
        "variation (mode collapse). Both local models were trained here on ShapesWorld's single objects at 32x32, read "
        "the prompt as the local diffusion model does, and are judged by the same mini-CLIP."
    )
    samplers = _choices(can_sample)
    with gr.Accordion("Sample", open=True):
        with gr.Row():
            with gr.Column():
                prompt = gr.Textbox(PROMPT, label="Prompt", info="sizes: small, large · colours: red, green, blue, yellow, purple, orange · shapes: circle, square, triangle, star, ring")
                model = gr.Dropdown(samplers, value=samplers[0][1], label="Model")
                with gr.Row():
                    seed = gr.Number(0, label="Seed", precision=0, minimum=0)
                    count = common.int_slider(1, MAX_IMAGES, 4, label="Samples")
                go = gr.Button("Sample", variant="primary")
            with gr.Column():
                samples = gr.Gallery(label="Samples", columns=4, height="auto", object_fit="contain", format="png", preview=False, elem_classes="dvl-fit")
                figures = gr.JSON(label="Figures")
        prompts = gr.Examples([["a large red triangle"], ["a small blue ring"], ["a large yellow star"], ["a green square"]], inputs=[prompt], label="Prompts")
        with gr.Row():
            seed_b = gr.Number(7, label="Second seed", precision=0, minimum=0)
            frames = common.int_slider(2, MAX_FRAMES, 8, label="Frames")
            between = gr.Button("Interpolate between the seeds")
        strip = gr.Gallery(label="Spherical interpolation of the noise, first seed to second", columns=8, height="auto", object_fit="contain", format="png", preview=False, elem_classes="dvl-fit")
        with gr.Row():
            mapped = gr.Button("Map the VAE's latent space for this prompt")
        latent = gr.Image(label="VAE latent map: decoded pictures on a grid over its two most informative dimensions (the rest 0)", format="png", interactive=False)
    with gr.Accordion("Autoencode", open=True), gr.Row():
        with gr.Column():
            image = upload.UploadedImage(label="Picture", height=256)
            coder = gr.Dropdown(_choices(can_autoencode), value="vae-shapes", label="Autoencoder")
            told = gr.Textbox("", label="What it shows (local VAE only; empty: the judge reads its colour and shape)")
            with gr.Row():
                encode = gr.Button("Encode and decode", variant="primary")
                new_object = scenes.new_scene_button("New unseen object")
            examples = gr.Examples([[scenes.object_file(s)] for s in (2_000_000, 2_000_001)], inputs=[image], label="Unseen objects")
        with gr.Column():
            round_trip = gr.Gallery(label="Input · reconstruction · latent", columns=3, height="auto", object_fit="contain", format="png", preview=False, elem_classes="dvl-fit")
            coded = gr.JSON(label="Figures")
    with gr.Accordion("Compare families: the same prompt and seeds", open=True):
        with gr.Row():
            versus_prompt = gr.Textbox(PROMPT, label="Prompt")
            versus_seed = gr.Number(0, label="Seed", precision=0, minimum=0)
            versus_count = common.int_slider(2, MAX_IMAGES, 4, label="Samples per family")
            versus = gr.Button("Compare", variant="primary")
        table = gr.Dataframe(headers=COMPARE_HEADERS, label="Time, judged accuracy and diversity (mean pairwise cosine distance of the judge's features)", wrap=True)
        pictures = gr.Gallery(label="Each family's samples, with the judge's reading", columns=4, height="auto", object_fit="contain", format="png", preview=False, elem_classes="dvl-fit")
    with gr.Accordion("The GAN learning: snapshots during training", open=False):
        gr.Markdown("The moving-average generator on fixed noise and prompts (large objects of every shape and colour) at a few steps of its training.")
        snapshots = training_snapshots()
        gr.Image(str(snapshots) if snapshots else None, label="gan-shapes: one row per training step", format="png", interactive=False)

    outputs = [samples, figures]
    wiring.run_on_example(prompts, _sample_ui, [prompt, model, seed, count], outputs)
    events = [
        go.click(wiring.named_endpoint(_sample_ui, ENDPOINT), [prompt, model, seed, count], outputs, api_name=ENDPOINT),
        prompt.submit(_sample_ui, [prompt, model, seed, count], outputs, api_visibility="private"),
    ]
    for event in events:
        wiring.clear_on_failure(event, outputs)
    wiring.clear_on_failure(between.click(_interpolate_ui, [prompt, model, seed, seed_b, frames], strip, api_visibility="private"), [strip])
    wiring.clear_on_failure(mapped.click(_map_ui, prompt, latent, api_visibility="private"), [latent])
    wiring.on_new_input(
        _autoencode_ui, [image, coder, told], [round_trip, coded], button=encode, image=image, examples=examples,
        api_name=AUTOENCODE_ENDPOINT, new_scene=new_object, draw=scenes.new_object_file,
    )
    wiring.clear_on_failure(versus.click(_compare_ui, [versus_prompt, versus_seed, versus_count], [table, pictures], api_visibility="private"), [table, pictures])
