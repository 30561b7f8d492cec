"""Image restoration tab: degrade an image with known parameters (or bring a degraded photo), restore it, and score it.

Pure functions first (``degrade_input``, ``restore``, ``zoom_view``, ``residual_view``, ``metrics_html``),
then ``build()``, which only wires them to widgets. Where the clean image is known (an image the
tab degraded itself, or a ShapesWorld scene, whose clean image is its noise-free rendering) the
input and the output are scored against it with PSNR and SSIM (torchmetrics), as the local
model's card scores it over 500 unseen scenes.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import numpy as np
from PIL import Image, ImageDraw, ImageFont

import models
import shapesworld
from models.restoration import RestorationOutput, Scores, scores, shrink, to_size
from shapesworld import Degradation

from . import common, drawing, errors, picker, scenes, wiring
from .examples import example_images
from .panels.deconvolution_panel import build_deconvolution_panel
from .upload import UploadedImage

TITLE = "Image restoration"
TASK = "restoration"
ENDPOINT = "restore"
DEGRADE_HERE, ALREADY_DEGRADED = "Clean: degrade it here", "Already degraded: restore as it is"
ZOOM_TILE = 240  # each zoomed crop's side in the picture, pixels
LABEL_SIZE = 30  # the zoomed crops' labels, pixels
NOISE_SEED = 0  # the tab's noise is drawn from this seed: the same settings give the same image
PANEL_SIDE = 256  # the deblurring panel works on at most this many pixels a side


@dataclass
class Prepared:
    """What the model is given, and what it is scored against."""

    degraded: Image.Image
    clean: np.ndarray | None  # HxWx3 uint8 at the degraded image's size, or None when not known
    degradation: Degradation | None  # None: the input came degraded
    notes: list[str]


@dataclass
class RestoreResult:
    degraded: Image.Image  # the input to the network, the zoomed region outlined
    restored: Image.Image
    zoom: Image.Image
    residual: Image.Image
    metrics: dict
    summary: str  # HTML


def degradation_of(blur: str, length: float, angle: float, noise: float, jpeg_quality: int) -> Degradation:
    """The controls as a ``Degradation`` (JPEG quality 0 means no compression)."""
    return Degradation(str(blur), float(length), float(angle), float(noise), int(jpeg_quality) or None)


def degrade_input(
    image: Image.Image, degradation: Degradation, already_degraded: bool, max_side: int, scene: shapesworld.Scene | None = None
) -> Prepared:
    """The image the model gets and the clean image it is scored against.

    A ShapesWorld scene's clean image is its noise-free rendering (the pixel noise baked into a
    scene is a degradation too). A clean image larger than the model takes is shrunk *before*
    it is degraded, so the model sees the blur and noise as set.
    """
    notes = []
    clean = shapesworld.generate(scene.seed, scene.image.shape[0], noise=0.0).image if scene is not None else None
    if already_degraded:
        return Prepared(image, clean, None, notes + (["The clean image is the scene's noise-free rendering."] if scene else []))
    source = Image.fromarray(clean) if clean is not None else image
    small = shrink(source, max_side)
    if small is not source:
        notes.append(f"The image was shrunk from {source.width}×{source.height} to {small.width}×{small.height} before degrading: this model takes at most {max_side} px here.")
    clean = np.asarray(small)
    return Prepared(Image.fromarray(shapesworld.degrade.apply(clean, degradation, NOISE_SEED)), clean, degradation, notes)


def predict(image: Image.Image, model_name: str, progress: gr.Progress | None = None) -> RestorationOutput:
    """The model's output for ``image``; cached per (model, image), so moving the zoom is free."""
    model = common.load_model(model_name, progress)
    return models.cache().derived(("restore", model_name, common.image_key(image)), lambda: model(image))


def crop_box(size: tuple[int, int], cx: float, cy: float, side: float) -> tuple[int, int, int, int]:
    """A square (x0, y0, x1, y1) of ``side`` x the shorter side, centred at fractions (cx, cy), kept inside the image."""
    width, height = size
    n = max(4, round(side * min(width, height)))
    x0 = int(np.clip(round(cx * width - n / 2), 0, width - n))
    y0 = int(np.clip(round(cy * height - n / 2), 0, height - n))
    return x0, y0, x0 + n, y0 + n


def zoom_view(tiles: list[tuple[np.ndarray, str]], box: tuple[int, int, int, int], scales: list[int]) -> Image.Image:
    """The same region of each image, enlarged with nearest neighbour so single pixels show, labelled below.

    ``scales`` gives each image's size relative to the input (a x4 super-resolver's output is 4).
    Labels are large: on a phone the page shrinks the whole picture to a third.
    """
    font = ImageFont.load_default(size=LABEL_SIZE)
    foot, gap = LABEL_SIZE + 14, 8
    canvas = Image.new("RGB", (len(tiles) * (ZOOM_TILE + gap) - gap, ZOOM_TILE + foot), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for i, ((image, label), s) in enumerate(zip(tiles, scales)):
        crop = Image.fromarray(image).crop(tuple(v * s for v in box))
        x = i * (ZOOM_TILE + gap)
        canvas.paste(crop.resize((ZOOM_TILE, ZOOM_TILE), Image.Resampling.NEAREST), (x, 0))
        draw.text((x + ZOOM_TILE / 2, ZOOM_TILE + foot / 2), label, fill=(20, 20, 20), font=font, anchor="mm")
    return canvas


def outlined(image: np.ndarray, box: tuple[int, int, int, int]) -> Image.Image:
    """``image`` enlarged for display with the zoomed region outlined."""
    shown = drawing.upscale_for_display(Image.fromarray(image), 384)
    k = shown.width // image.shape[1]
    draw = ImageDraw.Draw(shown)
    x0, y0, x1, y1 = (v * k for v in box)
    for width, colour in ((3, (255, 255, 255)), (1, (230, 30, 30))):
        draw.rectangle((x0 - 1, y0 - 1, x1, y1), outline=colour, width=width)
    return shown


def residual_view(given: np.ndarray, restored: np.ndarray) -> Image.Image:
    """What the network added: output minus input, averaged over R, G and B, on a symmetric colour scale.

    A super-resolver's input is first enlarged to its output's size (bicubic), so the picture shows
    what the network added beyond plain interpolation.
    """
    base = to_size(given, (restored.shape[1], restored.shape[0])) if given.shape != restored.shape else given
    added = restored.astype(np.float32).mean(-1) - base.astype(np.float32).mean(-1)
    limit = max(1.0, float(np.ceil(np.percentile(np.abs(added), 99.5))))
    return drawing.heat_image(added, drawing.HeatScale(-limit, limit, "output − input (grey levels)"))


def metrics_of(prepared: Prepared, output: RestorationOutput, model_name: str) -> dict:
    """The result's numbers: PSNR/SSIM of the input and the output against the clean image where it is known."""
    height, width = output.input.shape[:2]
    record: dict = {
        "model": model_name,
        "scale": output.scale,
        "input_size": [width, height],
        "output_size": [output.restored.shape[1], output.restored.shape[0]],
        "degradation": prepared.degradation.to_dict() if prepared.degradation else None,
        "input_shrunk_from": list(output.downscaled_from) if output.downscaled_from else None,
        "clean_known": prepared.clean is not None and output.downscaled_from is None,
    }
    if record["clean_known"]:
        before = scores(output.input, prepared.clean)
        after = scores(to_size(output.restored, (width, height)), prepared.clean)
        record |= {
            "degraded": vars(before), "restored": vars(after),
            "psnr_gain_db": round(after.psnr - before.psnr, 4), "ssim_gain": round(after.ssim - before.ssim, 4),
        }
    return record


def metrics_html(metrics: dict, notes: list[str]) -> str:
    """The scores as a small table, then what the reader must know to read them."""
    parts = []
    if metrics["clean_known"]:
        before, after = Scores(**metrics["degraded"]), Scores(**metrics["restored"])
        parts.append(
            "<table><tr><th></th><th>PSNR (dB)</th><th>SSIM</th></tr>"
            f"<tr><td>input (degraded)</td><td>{before.psnr:.2f}</td><td>{before.ssim:.3f}</td></tr>"
            f"<tr><td>restored</td><td><b>{after.psnr:.2f}</b></td><td><b>{after.ssim:.3f}</b></td></tr>"
            f"<tr><td>gain</td><td><b>{metrics['psnr_gain_db']:+.2f}</b></td><td><b>{metrics['ssim_gain']:+.3f}</b></td></tr></table>"
            "<p>Against the clean image, with torchmetrics (PSNR: higher is better, +6 dB is a quarter of the error's energy; SSIM: 1 is identical).</p>"
        )
    else:
        parts.append("<p>No clean image is known for this input, so there is no PSNR or SSIM: judge by eye, and by the zoomed crop.</p>")
    if metrics["degradation"]:
        parts.append(f"<p>Degradation applied: {Degradation(**metrics['degradation']).describe()}.</p>")
    if metrics["scale"] > 1:
        parts.append(
            f"<p>This model super-resolves ×{metrics['scale']} ({metrics['input_size'][0]}×{metrics['input_size'][1]} → "
            f"{metrics['output_size'][0]}×{metrics['output_size'][1]}); for the scores its output is resized back to the "
            "input's size (antialiased bicubic), and the residual compares it with the input enlarged by bicubic interpolation.</p>"
        )
    if metrics["input_shrunk_from"]:
        w, h = metrics["input_shrunk_from"]
        parts.append(f"<p>The image ({w}×{h}) was shrunk to {metrics['input_size'][0]}×{metrics['input_size'][1]} first: this model takes at most that much here on a CPU.</p>")
    return "".join(parts) + "".join(f"<p>{note}</p>" for note in notes)


def restore(
    image: Image.Image, model_name: str, degradation: Degradation, already_degraded: bool, crop: tuple[float, float, float],
    scene: shapesworld.Scene | None = None, progress: gr.Progress | None = None,
) -> RestoreResult:
    """Degrade (unless ``already_degraded``), restore, zoom into ``crop`` (centre x, centre y, side; fractions), and score."""
    model = common.load_model(model_name, progress)
    prepared = degrade_input(image, degradation, already_degraded, model.max_side, scene)
    output = predict(prepared.degraded, model_name, progress)
    box = crop_box((output.input.shape[1], output.input.shape[0]), *crop)
    tiles = [(output.input, "input"), (output.restored, f"output (×{output.scale})" if output.scale > 1 else "output")]
    metrics = metrics_of(prepared, output, model_name)
    if metrics["clean_known"]:
        tiles.append((prepared.clean, "clean"))
    return RestoreResult(
        degraded=outlined(output.input, box),
        restored=Image.fromarray(output.restored),
        zoom=zoom_view(tiles, box, [1, output.scale, 1][: len(tiles)]),
        residual=residual_view(output.input, output.restored),
        metrics=metrics,
        summary=metrics_html(metrics, prepared.notes),
    )


# ---------------------------------------------------------------- UI

OUTPUTS = 6


@errors.user_errors
def _restore_ui(
    image_path: str, model_name: str, mode: str, blur: str, length: float, angle: float, noise: float, jpeg_quality: int,
    crop_x: float, crop_y: float, crop_side: float, progress: gr.Progress = gr.Progress(),
):
    """Image restoration: remove blur, noise and JPEG artefacts; degrade a clean image first with known settings, or restore a degraded one.

    Args:
        image_path: the image (a file path or URL; PNG, JPEG or WebP).
        model_name: a restoration model's name, e.g. "restore-shapes" (local), "swin2sr-realworld-x4" or "swin2sr-classical-x2".
        mode: "Clean: degrade it here" (apply the settings below, then restore; scored against the clean image) or "Already degraded: restore as it is".
        blur: "none", "motion" or "defocus".
        length: the motion blur's length, or the defocus blur's radius, in pixels.
        angle: the motion's direction in degrees (0 = horizontal).
        noise: the Gaussian noise's standard deviation, on 0..255.
        jpeg_quality: JPEG quality 1..95 applied last; 0 for no compression.
        crop_x: the zoomed crop's centre, as a fraction of the width.
        crop_y: the zoomed crop's centre, as a fraction of the height.
        crop_side: the zoomed crop's side, as a fraction of the shorter side.

    Returns:
        The input the model got (zoomed region outlined), the restored image as a PNG, the zoomed crops, what the network added (output minus input), the metrics as JSON (PSNR and SSIM against the clean image where it is known), and a summary in HTML.
    """
    image = common.read_image(image_path)
    degradation = degradation_of(blur, length, angle, noise, jpeg_quality)
    result = restore(image, model_name, degradation, mode == ALREADY_DEGRADED, (crop_x, crop_y, crop_side), scenes.scene_of(image_path), progress)
    return result.degraded, result.restored, result.zoom, result.residual, result.metrics, result.summary


def _rerender(image_path, model_name, *args, progress: gr.Progress = gr.Progress()):
    """Redraw after a zoom control moves (the restoration is cached); with no image, do nothing; without the weights, empty."""
    if not image_path:
        return (gr.skip(),) * OUTPUTS
    if unusable := picker.unusable_outputs(model_name, OUTPUTS):
        return (*unusable[:1], *unusable[2:], unusable[1])  # the note goes to the summary, the last output
    return _restore_ui(image_path, model_name, *args, progress=progress)


def _clean_of(image_path, mode: str, blur: str, length: float, angle: float, noise: float, jpeg_quality: int):
    """For the deblurring panel: the clean image (None when the input came degraded), the degradation and the noise seed."""
    degradation = degradation_of(blur, length, angle, noise, jpeg_quality)
    if mode == ALREADY_DEGRADED:
        return None, degradation, NOISE_SEED
    prepared = degrade_input(common.read_image(image_path), degradation, False, PANEL_SIDE, scenes.scene_of(image_path))
    return prepared.clean, degradation, NOISE_SEED


def _random_levels():
    """Blur, noise and JPEG at levels drawn as the training scenes' are (``shapesworld.degrade.draw``)."""
    d = shapesworld.degrade.draw(scenes.random_unseen_seed())
    return d.blur, d.length, d.angle, d.noise, d.jpeg or 0


def build() -> None:
    gr.Markdown(
        "Restoration undoes what the camera and the file did: blur (a moving camera, a lens out of focus), sensor "
        "noise, JPEG blocks. Degrade a clean image with settings you choose, so the clean image is known and the "
        "result gets a PSNR and an SSIM, or bring a photo that is already degraded. The local network was trained on "
        "ShapesWorld scenes; the Swin2SR models on real photos, and they also enlarge ×4 or ×2."
    )
    with gr.Row():
        with gr.Column(scale=2, min_width=300):
            image = UploadedImage(label="Image", sources=["upload", "clipboard"], height=300, elem_classes="dvl-image")
            new_scene = scenes.new_scene_button()
            mode = gr.Radio([DEGRADE_HERE, ALREADY_DEGRADED], value=DEGRADE_HERE, label="The image is")
            with gr.Group():
                blur = gr.Radio(list(shapesworld.degrade.BLURS), value="motion", label="Blur")
                length = gr.Slider(0, 15, value=6, step=0.5, label="Blur length (motion) or radius (defocus), px")
                angle = gr.Slider(0, 180, value=30, step=5, label="Motion direction, degrees")
                noise = gr.Slider(0, 30, value=8, step=0.5, label="Gaussian noise σ (0..255)")
                jpeg_quality = common.int_slider(0, 95, 0, label="JPEG quality (0 = no compression)")
                levels = gr.Button("Random levels, as in training", size="sm")
            model = picker.model_picker(TASK)
            run = gr.Button("Restore", variant="primary")
        with gr.Column(scale=3, min_width=300):
            with gr.Row():
                degraded = gr.Image(label="Input to the model (zoomed region outlined)", type="pil", format="png", interactive=False, height=320, min_width=260, elem_classes="dvl-image")
                restored = gr.Image(label="Restored", type="pil", format="png", interactive=False, height=320, min_width=260, elem_classes="dvl-image")
            summary = gr.HTML(label="Scores")
            zoom = gr.Image(label="Zoomed crops", type="pil", format="png", interactive=False, elem_classes="dvl-fit")
            with gr.Row():
                crop_x = gr.Slider(0, 1, value=0.5, step=0.01, label="Crop centre x")
                crop_y = gr.Slider(0, 1, value=0.5, step=0.01, label="Crop centre y")
                crop_side = gr.Slider(0.1, 1, value=0.3, step=0.05, label="Crop side (of the image)")
            residual = gr.Image(label="What the network added (output − input)", type="pil", format="png", interactive=False, height=340, elem_classes="dvl-image")
            with gr.Accordion("Numbers", open=False):
                metrics = gr.JSON(label="Metrics")
            card = gr.Markdown(picker.model_card_markdown(model.value))
    examples = gr.Examples(example_images(), inputs=image, label="Examples: unseen ShapesWorld scenes and real photos")

    inputs = [image, model, mode, blur, length, angle, noise, jpeg_quality, crop_x, crop_y, crop_side]
    outputs = [degraded, restored, zoom, residual, metrics, summary]
    wiring.on_new_input(_restore_ui, inputs, outputs, button=run, image=image, examples=examples, api_name=ENDPOINT, new_scene=new_scene)
    for control in (crop_x, crop_y, crop_side):
        redraw = control.input(_rerender, inputs, outputs, api_visibility="private", trigger_mode="always_last", show_progress="hidden")
        wiring.clear_on_failure(redraw, outputs)
    levels.click(_random_levels, None, [blur, length, angle, noise, jpeg_quality], api_visibility="private", show_progress="hidden")
    model.change(picker.model_picked, model, card, api_visibility="private")
    build_deconvolution_panel([image, mode, blur, length, angle, noise, jpeg_quality], _clean_of)
