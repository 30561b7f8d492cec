"""Depth estimation tab: how far is every pixel, from one image, and why a single image cannot say at what scale.

Pure functions first (``estimate``, ``render``, ``png16``, ``alignment``, ``profile_table``), then
``build()``, which only wires them. The map is shown with its colour scale and what it is (the
pretrained models' relative disparity, the local U-Net's ShapesWorld depth), lifted into a 3-D mesh
you can turn, cut along a line you choose, and on a ShapesWorld scene compared with the true
depth, before and after the least-squares scale and shift.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

import models
import shapesworld
from models.depth import DepthMap
from models.depth_metrics import DEPTH, DepthScores, align, as_depth, score

from . import common, depth3d, drawing, errors, picker, scenes, wiring
from .examples import example_images
from .upload import UploadedImage

TITLE = "Depth estimation"
TASK = "depth"
ENDPOINT = "depth"  # the tab's main action, served at /depth
TRUTH_SCALE = drawing.HeatScale(shapesworld.GROUND_NEAR * 0.5, shapesworld.GROUND_FAR, "depth (ShapesWorld units), bright = far")
PNG_MAX = 65535
DEFAULT_LINE = (50, 100, 50, 0)  # x0, y0, x1, y1 in % of the image: up the middle, from near to far


@dataclass
class DepthResult:
    picture: Image.Image  # the map in colour with its colour bar
    png: Image.Image  # 16-bit grey: round((value - min) / (max - min) * 65535)
    numbers: dict  # what the map is, its range, and on a ShapesWorld scene its scores
    mesh: bytes  # the image lifted by its depth, as binary glTF (.glb)


def estimate(image: Image.Image, model_name: str, progress: gr.Progress | None = None) -> DepthMap:
    """The model's map for ``image``; cached per (model, image), so redraws (a line moved) cost nothing."""
    model = common.load_model(model_name, progress)
    return models.cache().derived(("depth", model_name, common.image_key(image)), lambda: model(image))


def meaning(output: DepthMap) -> str:
    if output.kind == DEPTH:
        return "depth (ShapesWorld units), bright = far"
    return "relative inverse depth, bright = near"


def png16(output: DepthMap) -> Image.Image:
    """The map as a 16-bit grey PNG over its own range (a flat map is all zeros): the range goes beside it in JSON."""
    low, high = output.range
    span = high - low
    scaled = (output.values - low) / span if span > 0 else np.zeros_like(output.values)
    return Image.fromarray(np.rint(scaled * PNG_MAX).astype(np.uint16))


def viewing_depth(output: DepthMap) -> np.ndarray:
    """Depth to lift the image by: the map itself, or for a relative disparity 1 / (disparity rescaled to [0.1, 1]).

    A relative model gives no scale and no shift, so this choice (a scene ten times deeper than its
    nearest point) is the page's, and the mesh's proportions are only suggestive.
    """
    if output.kind == DEPTH:
        return output.values
    low, high = output.range
    share = (output.values - low) / (high - low) if high > low else np.ones_like(output.values)
    return 1.0 / (0.1 + 0.9 * share)


def render(image: Image.Image, output: DepthMap, scene: shapesworld.Scene | None) -> DepthResult:
    low, high = output.range
    numbers = {
        "model": output.model, "kind": output.kind, "min": low, "max": high,
        "png": f"uint16 = round((value - min) / (max - min) * {PNG_MAX})",
        "shapesworld_seed": scene.seed if scene is not None else None,
        "metrics": scene_scores(output, scene).as_dict() if scene is not None else None,
    }
    return DepthResult(
        picture=drawing.heat_image(output.values, (low, high, meaning(output))),
        png=png16(output),
        numbers=numbers,
        mesh=depth3d.glb_bytes(depth3d.lift(image, viewing_depth(output))),
    )


def scene_scores(output: DepthMap, scene: shapesworld.Scene) -> DepthScores:
    """abs_rel and delta1 against the scene's true depth, as given and after scale-and-shift alignment (at the scene's size)."""
    if output.values.shape != scene.depth.shape:
        raise ValueError("the depth map's size differs from the scene's")
    return score(output.values, output.kind, scene.depth)


@dataclass
class Alignment:
    truth: Image.Image  # the true depth, on TRUTH_SCALE
    aligned: Image.Image  # the prediction after scale and shift, on the same scale
    table: str  # Markdown: the fit and the error before and after it
    scatter: pd.DataFrame  # sampled pixels: "truth" (in the fitted space) against "prediction" (as given)
    space: str  # what the fit matched: "depth" or "disparity (1 / depth)"


def alignment(output: DepthMap, scene: shapesworld.Scene) -> Alignment:
    """True depth and the aligned prediction on one colour scale, a table of the error before and after, and a scatter of pixels."""
    aligned, s, t = align(output.values, output.kind, scene.depth)
    scores = scene_scores(output, scene)
    space = "depth" if output.kind == DEPTH else "disparity (1 / depth)"
    read = "" if output.kind == DEPTH else " (1 / value)"
    table = (
        f"On ShapesWorld scene {scene.seed}, against its true depth. The fit: true {space} ≈ s · prediction + t, "
        f"least squares over every pixel, s = {s:.4g}, t = {t:.4g}.\n\n"
        "| prediction | abs rel ↓ | δ < 1.25 ↑ |\n| --- | --- | --- |\n"
        f"| as the model gives it, read as depth{read} | {scores.abs_rel:.3f} | {scores.delta1:.3f} |\n"
        f"| after scale and shift | {scores.aligned_abs_rel:.3f} | {scores.aligned_delta1:.3f} |\n\n"
        + ("The local U-Net learnt ShapesWorld's own units, so it needs little alignment (the fit minimises the squared "
           "error in depth, not the relative error, so abs rel may even rise). " if output.kind == DEPTH else
           "A relative model's raw numbers are no depth at all: trained on many datasets with a loss blind to scale and "
           "shift, it only orders and shapes the scene. ")
        + "One image cannot tell a small, near scene from a large, far one: a monocular model's depth is known at best "
        "up to scale, and this fit borrows the scale from the truth, as the benchmarks' evaluations do."
    )
    rng = np.random.default_rng(0)
    pick = rng.choice(output.values.size, size=min(1500, output.values.size), replace=False)
    truth_axis = scene.depth.ravel()[pick] if output.kind == DEPTH else 1.0 / scene.depth.ravel()[pick]
    scatter = pd.DataFrame({"truth": truth_axis, "prediction": output.values.ravel()[pick]})
    return Alignment(drawing.heat_image(scene.depth, TRUTH_SCALE), drawing.heat_image(aligned, TRUTH_SCALE), table, scatter, space)


def profile_table(output: DepthMap, scene: shapesworld.Scene | None, line: tuple[float, float, float, float]) -> pd.DataFrame:
    """Depth along the line (x0, y0, x1, y1 in % of the image): on a scene the truth and the aligned prediction, else the map as given."""
    start, end = (line[0] / 100, line[1] / 100), (line[2] / 100, line[3] / 100)
    if scene is not None:
        series = {"true depth": scene.depth, "prediction, aligned": align(output.values, output.kind, scene.depth)[0]}
    else:
        series = {f"prediction ({meaning(output).split(',')[0]})": output.values}
    frames = []
    for name, values in series.items():
        distance, value = depth3d.profile(values, start, end)
        frames.append(pd.DataFrame({"distance along the line (px)": distance, "value": value, "series": name}))
    return pd.concat(frames, ignore_index=True)


def line_picture(image: Image.Image, line: tuple[float, float, float, float]) -> Image.Image:
    """The image, enlarged for display, with the profile's line from its start (a dot) to its end (an arrow-like tick)."""
    shown = drawing.upscale_for_display(image.convert("RGB"), 384)
    w, h = shown.width - 1, shown.height - 1
    x0, y0, x1, y1 = line[0] / 100 * w, line[1] / 100 * h, line[2] / 100 * w, line[3] / 100 * h
    draw = ImageDraw.Draw(shown)
    width = max(2, shown.width // 150)
    draw.line((x0, y0, x1, y1), fill=(255, 255, 255), width=width + 2)
    draw.line((x0, y0, x1, y1), fill=(230, 30, 30), width=width)
    r = 3 * width
    draw.ellipse((x0 - r, y0 - r, x0 + r, y0 + r), fill=(230, 30, 30), outline=(255, 255, 255))
    return shown


# ---------------------------------------------------------------- UI


def _scene(image_path: str | None, image: Image.Image) -> shapesworld.Scene | None:
    """The ShapesWorld scene the input is, at the size the model saw it (a scene file is never resized), else None."""
    scene = scenes.scene_of(image_path)
    return scene if scene is not None and scene.depth.shape == (image.height, image.width) else None


@errors.user_errors
def _depth_ui(image_path: str, model_name: str, progress: gr.Progress = gr.Progress()):
    """Monocular depth estimation: how far every pixel is, from one image.

    Args:
        image_path: the image (a file path or URL; PNG, JPEG or WebP).
        model_name: a depth model's name from the picker, e.g. "unet-depth-shapes" (local) or "depth-anything-v2-small".

    Returns:
        The depth map in colour with its colour scale, the map as a 16-bit grey PNG (scaled over its range), JSON with the model, what the map is ("depth", or "relative inverse depth (disparity)"), its min and max (the PNG's 0 and 65535), and on a ShapesWorld scene abs_rel and delta1 before and after scale-and-shift alignment, and the image lifted by its depth as a glTF mesh (.glb).
    """
    image = common.read_image(image_path)
    output = estimate(image, model_name, progress)
    result = render(image, output, _scene(image_path, image))
    return result.picture, common.save_output(result.png, "depth16"), result.numbers, common.save_output(result.mesh, "depth-mesh", ".glb")


@errors.user_errors
def _truth_ui(image_path: str | None, model_name: str):
    """Beside a ShapesWorld scene's depth, its truth, the aligned prediction, the scores and the scatter; hidden for any other image."""
    hidden = (gr.update(visible=False),) * 4
    if not image_path or not models.spec(model_name).availability().usable:
        return hidden
    image = common.read_image(image_path)
    scene = _scene(image_path, image)
    if scene is None:
        return hidden
    view = alignment(estimate(image, model_name), scene)  # cached: the tab has just run it
    return (gr.update(value=view.truth, visible=True), gr.update(value=view.aligned, visible=True), gr.update(value=view.table, visible=True),
            gr.update(value=view.scatter, visible=True, x_title=f"true {view.space}"))


@errors.user_errors
def _profile_ui(image_path: str | None, model_name: str, x0: float, y0: float, x1: float, y1: float):
    """The line over the image and the depth along it; nothing without an image or usable weights."""
    if not image_path or not models.spec(model_name).availability().usable:
        return None, None
    image = common.read_image(image_path)
    line = (x0, y0, x1, y1)
    return line_picture(image, line), profile_table(estimate(image, model_name), _scene(image_path, image), line)


def build() -> None:
    gr.Markdown(
        "How far is every pixel, from a single image (Eigen and Fergus, 2014–2015)? The pretrained models give "
        "*relative inverse depth*: larger is nearer, up to an unknown scale and shift. The local U-Net, trained on "
        "ShapesWorld's receding ground and standing cards, gives depth in ShapesWorld's units. Turn the 3-D view, "
        "cut the map along a line, and on a ShapesWorld scene see the alignment to the true depth."
    )
    with gr.Row():
        with gr.Column():
            image = UploadedImage(label="Image", sources=["upload", "clipboard"], height=320, elem_classes="dvl-image")
            new_scene = scenes.new_scene_button()
            model = picker.model_picker(TASK)
            run = gr.Button("Estimate depth", variant="primary")
            card = gr.Markdown(picker.model_card_markdown(model.value))
        with gr.Column():
            with gr.Row():
                picture = gr.Image(
                    label="Depth map with its colour scale", type="pil", format="png", interactive=False, height=320,
                    elem_classes="dvl-image", min_width=260,
                )
                mesh = gr.Model3D(
                    label="3-D: the image lifted by its depth", height=320, min_width=260,
                    clear_color=(0.95, 0.95, 0.95, 1.0), camera_position=(65, 70, None),  # a little from the side and above
                )
            numbers = gr.JSON(label="What the map is, its range and, on a ShapesWorld scene, its scores")
            png = gr.File(label="Depth map as a 16-bit PNG (0 = min, 65535 = max of the JSON's range)")
    examples = gr.Examples(example_images(), inputs=image, label="Examples: unseen ShapesWorld scenes and real photos")

    with gr.Accordion("Scale and shift: the true depth of a ShapesWorld scene", open=True):
        gr.Markdown("Shown for a ShapesWorld scene (an example, or **New unseen scene**): the truth and the prediction on one colour scale.")
        with gr.Row():
            truth = gr.Image(label="True depth", type="pil", format="png", interactive=False, height=300, elem_classes="dvl-image", min_width=240, visible=False)
            aligned = gr.Image(
                label="Prediction after scale and shift", type="pil", format="png", interactive=False, height=300,
                elem_classes="dvl-image", min_width=240, visible=False,
            )
        table = gr.Markdown(visible=False)
        scatter = gr.ScatterPlot(
            x="truth", y="prediction", x_title="truth", y_title="prediction as the model gives it",
            label="1,500 pixels: truth against the raw prediction (a line means scale and shift fix it)", height=300, visible=False,
        )
    with gr.Accordion("Profile: depth along a line you choose", open=True):
        with gr.Row():
            ends = [gr.Slider(0, 100, value=v, step=1, label=f"{name} (% of the image)", min_width=140)
                    for v, name in zip(DEFAULT_LINE, ("start x", "start y", "end x", "end y"))]
        with gr.Row():
            line = gr.Image(label="The line (from the dot)", type="pil", format="png", interactive=False, height=300, elem_classes="dvl-image", min_width=240)
            plot = gr.LinePlot(
                x="distance along the line (px)", y="value", color="series", label="Along the line, from the dot", min_width=240,
                y_title="depth, or the map as given",
            )

    inputs, outputs = [image, model], [picture, png, numbers, mesh]
    wiring.on_new_input(_depth_ui, inputs, outputs, button=run, image=image, examples=examples, api_name=ENDPOINT, new_scene=new_scene)
    picture.change(_truth_ui, inputs, [truth, aligned, table, scatter], api_visibility="private", show_progress="hidden")
    redraw = [image, model, *ends]
    picture.change(_profile_ui, redraw, [line, plot], api_visibility="private", show_progress="hidden")
    for end in ends:
        end.input(_profile_ui, redraw, [line, plot], api_visibility="private", trigger_mode="always_last", show_progress="hidden")
    model.change(picker.model_picked, model, card, api_visibility="private")
