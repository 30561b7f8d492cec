"""Semantic segmentation tab: label every pixel, and look at how a U-Net gets there.

Pure functions first (``segment``, ``render``, ``scene_scores``, ``truth_view``, ``feature_maps``),
then ``build()``, which only wires them to widgets. On a ShapesWorld scene (``scenes.scene_of``)
the true classes are drawn beside the prediction, in the same colours, with the prediction's
mIoU and pixel accuracy on that one image: the metrics the U-Net's card reports over 500 scenes.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import numpy as np
import torch
from PIL import Image
from torchmetrics.functional.classification import multiclass_accuracy
from torchmetrics.functional.segmentation import mean_iou

import models
import shapesworld
from models.segmentation import SegmentationOutput

from . import common, drawing, errors, legends, picker, scenes, semantic, wiring
from .examples import example_images
from .upload import UploadedImage
from .panels.upsampling_panel import build_upsampling_panel
from .semantic import predict

TITLE = "Semantic segmentation"
TASK = "segmentation"
ENDPOINT = "segment"  # the tab's main action, served at /segment
CONFIDENCE_SCALE = drawing.HeatScale(0.0, 1.0, "probability of the chosen class")
GROUND_TRUTH = "True classes (ShapesWorld scene)"


@dataclass
class SegmentResult:
    overlay: Image.Image
    mask: Image.Image  # palette PNG whose pixel values are class indices
    shares: dict[str, float]  # class -> fraction of pixels, largest first
    legend: str  # HTML
    confidence: Image.Image  # the winning class's probability per pixel, dark = unsure, with its colour bar
    output: SegmentationOutput


@dataclass
class SceneScores:
    """One prediction against its scene's truth."""

    mean_iou: float  # over the classes in the truth or the prediction
    pixel_accuracy: float
    iou_per_class: dict[str, float]  # those classes only


def render(image: Image.Image, output: SegmentationOutput, opacity: float) -> SegmentResult:
    """Overlay, palette mask, pixel shares and legend for one prediction."""
    colours = drawing.palette(len(output.categories))
    shares = legends.class_shares(output.labels, output.categories)
    return SegmentResult(
        overlay=semantic.overlay(image, output, opacity),
        mask=drawing.indexed_mask(output.labels, colours),
        shares=shares,
        legend=legends.legend_html(shares, output.categories, colours),
        confidence=drawing.heat_image(output.confidence, CONFIDENCE_SCALE),
        output=output,
    )


def scene_scores(predicted: np.ndarray, truth: np.ndarray, categories: list[str]) -> SceneScores:
    """mIoU and pixel accuracy of ``predicted`` against ``truth`` (class indices, H x W), from torchmetrics.

    A class in neither map has no IoU (torchmetrics marks it -1) and is left out of the mean, as in
    the dataset-level mIoU of the card, which counts every class present somewhere in 500 scenes.
    """
    preds, target = (torch.from_numpy(np.asarray(a, dtype=np.int64))[None] for a in (predicted, truth))
    per_class = mean_iou(preds, target, num_classes=len(categories), input_format="index", per_class=True)[0]
    present = per_class >= 0
    accuracy = multiclass_accuracy(preds, target, num_classes=len(categories), average="micro")
    return SceneScores(
        mean_iou=float(per_class[present].mean()),
        pixel_accuracy=float(accuracy),
        iou_per_class={categories[i]: float(per_class[i]) for i in np.flatnonzero(present.numpy())},
    )


def truth_view(
    scene: shapesworld.Scene, output: SegmentationOutput | None, model_title: str, opacity: float
) -> tuple[Image.Image, str]:
    """The scene's true classes over its image (the prediction's colours and opacity), and HTML: scores, then a legend.

    ``output`` is the model's prediction on the scene, or None for a model whose classes are not
    ShapesWorld's (the pretrained ones know PASCAL VOC's): then the truth is shown alone.
    """
    classes = list(shapesworld.CLASSES)
    colours = drawing.palette(len(classes))
    drawn = drawing.overlay_labels(Image.fromarray(scene.image), scene.semantic, opacity, colours)
    if output is None:
        head = (
            f"<p>Ground truth of ShapesWorld scene {scene.seed}. The classes of {model_title} are not ShapesWorld's "
            "(the pretrained models know PASCAL VOC's), so it is not scored here.</p>"
        )
    else:
        scores = scene_scores(output.labels, scene.semantic, classes)
        per_class = " · ".join(f"{name} {iou:.2f}" for name, iou in scores.iou_per_class.items())
        head = (
            f"<p><b>On this scene</b> (ShapesWorld seed {scene.seed}): mIoU <b>{scores.mean_iou:.2f}</b> over the "
            f"{len(scores.iou_per_class)} classes in the truth or the prediction, "
            f"pixel accuracy <b>{scores.pixel_accuracy:.2f}</b> (torchmetrics).<br>IoU per class: {per_class}</p>"
        )
    shares = legends.class_shares(scene.semantic, classes)
    return drawn, head + "<p>True classes:</p>" + legends.legend_html(shares, classes, colours)


def segment(image: Image.Image, model_name: str, opacity: float = 0.6, progress: gr.Progress | None = None) -> SegmentResult:
    return render(image, predict(image, model_name, progress), opacity)


def feature_maps(image: Image.Image, model_name: str) -> list[tuple[Image.Image, str]]:
    """The U-Net's encoder and decoder activations for ``image``, one channel grid per level."""
    model = common.load_model(model_name)
    network = model.network
    if not hasattr(network, "forward_with_features"):
        raise ValueError("Feature maps are shown for the local U-Net; pick “U-Net (ShapesWorld)”.")
    with torch.inference_mode():
        _, features = network.forward_with_features(model.preprocess(image)[0])
    return [(drawing.channel_grid(f[0].float().cpu().numpy()), name) for name, f in features.items()]


# ---------------------------------------------------------------- UI


@errors.user_errors
def _segment_ui(image_path: str, model_name: str, opacity: float, progress: gr.Progress = gr.Progress()):
    """Semantic segmentation: the class of every pixel of an image.

    Args:
        image_path: the image (a file path or URL; PNG, JPEG or WebP).
        model_name: a segmentation model's name from the picker, e.g. "unet-shapes" (local) or "deeplabv3-mobilenet".
        opacity: how strongly the class colours cover the image in the overlay, 0 to 1.

    Returns:
        The overlay image, an HTML legend, the mask as a PNG (pixel value = class index), each class's share of the pixels, and a confidence image (softmax probability of the chosen class).
    """
    image = common.read_image(image_path)
    result = segment(image, model_name, opacity, progress)
    return result.overlay, result.legend, common.save_output(result.mask, "mask"), result.shares, result.confidence


def _rerender(image_path: str | None, model_name: str, opacity: float, progress: gr.Progress = gr.Progress()):
    """Redraw after a slider move (the prediction itself is cached); with no image, do nothing."""
    if not image_path:
        return (gr.skip(),) * 5
    return _segment_ui(image_path, model_name, opacity, progress)


@errors.user_errors
def _truth_ui(image_path: str | None, model_name: str, opacity: float):
    """Beside a ShapesWorld scene's prediction, its truth and the prediction's scores; hidden for any other image."""
    scene = scenes.scene_of(image_path)
    if scene is None:
        return gr.update(value=None, visible=False), gr.update(value="", visible=False)
    spec = models.spec(model_name)
    output = None
    if spec.tier == "local" and spec.availability().usable:
        output = predict(Image.fromarray(scene.image), model_name)  # cached: the tab has just run it
        output = output if list(output.categories) == list(shapesworld.CLASSES) else None
    drawn, text = truth_view(scene, output, spec.title, opacity)
    return gr.update(value=drawn, visible=True), gr.update(value=text, visible=True)


@errors.user_errors
def _features_ui(image_path: str, model_name: str):
    """Feature maps of the local U-Net's encoder and decoder for an image (a gallery, one tile per channel)."""
    return feature_maps(common.read_image(image_path), model_name)


def build() -> None:
    gr.Markdown(
        "Every pixel gets a class. The pretrained models know the 20 PASCAL VOC classes (person, cat, car, …); "
        "the local U-Net knows ShapesWorld's five shapes and stick figures. Move the opacity slider to compare "
        "with the image. Try a real photo with the U-Net: a model only knows the world it was trained on."
    )
    with gr.Row():
        with gr.Column():
            image = UploadedImage(label="Image", sources=["upload", "clipboard"], height=320, elem_classes="dvl-image")
            new_scene = scenes.new_scene_button()
            model = picker.model_picker(TASK)
            opacity = gr.Slider(0, 1, value=0.6, step=0.05, label="Overlay opacity")
            run = gr.Button("Segment", variant="primary")
        with gr.Column():
            with gr.Row():
                overlay = gr.Image(
                    label="Classes over the image", type="pil", format="png", interactive=False, height=320, elem_classes="dvl-image",
                    min_width=260,  # side by side with the truth on a desktop, above it on a phone
                )
                truth = gr.Image(
                    label=GROUND_TRUTH, type="pil", format="png", interactive=False, height=320, elem_classes="dvl-image",
                    min_width=260, visible=False,
                )
            legend = gr.HTML(label="Legend")
            truth_notes = gr.HTML(label="Scores on this scene, and its true classes", visible=False)
            mask = gr.File(label="Mask (PNG; pixel value = class index)")
            with gr.Accordion("Where is the model unsure?", open=False):
                confidence = gr.Image(
                    label="Confidence (bright = sure, dark = unsure)",
                    type="pil", format="png", interactive=False, height=280, elem_classes="dvl-image",
                )
                gr.Markdown(
                    "Each pixel shows the softmax probability of the class the model chose, from 0 (dark) to 1 (bright), "
                    "as the colour bar says. Uncertainty concentrates on object boundaries and on things the model never "
                    "saw in training."
                )
            with gr.Accordion("Numbers", open=False):
                shares = gr.JSON(label="Share of pixels per class")
            card = gr.Markdown(picker.model_card_markdown(model.value))
    examples = gr.Examples(example_images(), inputs=image, label="Examples: unseen ShapesWorld scenes and real photos")

    inputs, outputs = [image, model, opacity], [overlay, legend, mask, shares, confidence]
    wiring.on_new_input(
        _segment_ui, inputs, outputs, button=run, image=image, examples=examples, api_name=ENDPOINT, new_scene=new_scene
    )
    # A slider reports a typed value (and every step of a drag) as input, and release only on blur or pointer-up:
    # redraw on input, keeping only the latest value while a redraw runs.
    redraw = opacity.input(
        _rerender, inputs, outputs, api_visibility="private", trigger_mode="always_last", show_progress="hidden"
    )
    wiring.clear_on_failure(redraw, outputs)
    overlay.change(_truth_ui, inputs, [truth, truth_notes], api_visibility="private", show_progress="hidden")
    model.change(picker.model_picked, model, card, api_visibility="private")

    with gr.Accordion("Inside the U-Net: encoder and decoder feature maps", open=False):
        gr.Markdown(
            "The encoder halves the resolution and doubles the channels at each level; the decoder "
            "upsamples with transposed convolutions and concatenates the encoder map of the same size "
            "(skip connection). Each tile is one channel, on its own colour scale."
        )
        show = gr.Button("Show feature maps of the current image")
        gallery = gr.Gallery(label="Feature maps", columns=4, height="auto", object_fit="contain", elem_classes="dvl-fit")
        wiring.clear_on_failure(show.click(wiring.named_endpoint(_features_ui, "segment_features"), [image, model], gallery, api_name="segment_features"), [gallery])
    build_upsampling_panel()
