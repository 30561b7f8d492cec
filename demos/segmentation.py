"""Semantic segmentation tab: label every pixel, and look at how a U-Net gets there.

Pure functions first (``segment``, ``render``, ``feature_maps``), then ``build()``, which only
wires them to widgets.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import torch
from PIL import Image

import models
from models.segmentation import SegmentationOutput

from . import common, drawing, legends
from .upload import UploadedImage
from .upsampling import build_upsampling_panel

TITLE = "Semantic segmentation"
TASK = "segmentation"
ENDPOINT = "segment"  # the tab's main action, served at /segment


@dataclass
class SegmentResult:
    overlay: Image.Image
    mask: Image.Image  # palette PNG whose pixel values are class indices
    shares: dict[str, float]  # class -> fraction of pixels, largest first
    legend: str  # HTML
    confidence: Image.Image  # the winning class's probability per pixel, dark = unsure
    output: SegmentationOutput


def predict(image: Image.Image, model_name: str, progress: gr.Progress | None = None) -> SegmentationOutput:
    """Per-pixel classes for ``image``; cached per (model, image), so re-rendering is free."""
    model = common.load_model(model_name, progress)
    return models.cache().derived(("segment", model_name, common.image_key(image)), lambda: model(image))


def render(image: Image.Image, output: SegmentationOutput, opacity: float) -> SegmentResult:
    """Overlay, palette mask, pixel shares and legend for one prediction."""
    colours = drawing.palette(len(output.categories))
    shares = legends.class_shares(output.labels, output.categories)
    return SegmentResult(
        overlay=drawing.overlay_labels(image, output.labels, opacity, colours),
        mask=drawing.indexed_mask(output.labels, colours),
        shares=shares,
        legend=legends.legend_html(shares, output.categories, colours),
        confidence=Image.fromarray(drawing.heatmap(output.confidence, value_range=(0.0, 1.0))),
        output=output,
    )


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


@common.user_errors
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


@common.user_errors
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
            model = common.model_picker(TASK)
            opacity = gr.Slider(0, 1, value=0.6, step=0.05, label="Overlay opacity")
            run = gr.Button("Segment", variant="primary")
        with gr.Column():
            overlay = gr.Image(
                label="Classes over the image", type="pil", format="png", interactive=False, height=320, elem_classes="dvl-image"
            )
            legend = gr.HTML(label="Legend")
            mask = gr.File(label="Mask (PNG; pixel value = class index)")
            with gr.Accordion("Where is the model unsure?", open=False):
                confidence = gr.Image(
                    label="Confidence (bright = sure, dark = unsure)",
                    type="pil", format="png", interactive=False, height=240, elem_classes="dvl-image",
                )
                gr.Markdown(
                    "Each pixel shows the softmax probability of the class the model chose, from 0 (dark) to 1 (bright). "
                    "Uncertainty concentrates on object boundaries and on things the model never saw in training."
                )
            with gr.Accordion("Numbers", open=False):
                shares = gr.JSON(label="Share of pixels per class")
            card = gr.Markdown(common.model_card_markdown(model.value))
    examples = gr.Examples(common.example_images(), inputs=image, label="Examples: unseen ShapesWorld scenes and real photos")

    inputs, outputs = [image, model, opacity], [overlay, legend, mask, shares, confidence]
    common.on_new_input(_segment_ui, inputs, outputs, button=run, image=image, examples=examples, api_name=ENDPOINT)
    common.clear_on_failure(opacity.release(_rerender, inputs, outputs, api_visibility="private"), outputs)
    model.change(common.model_card_markdown, model, card, api_visibility="private")

    with gr.Accordion("Inside the U-Net: encoder and decoder feature maps", open=False):
        gr.Markdown(
            "The encoder halves the resolution and doubles the channels at each level; the decoder "
            "upsamples with transposed convolutions and concatenates the encoder map of the same size "
            "(skip connection). Each tile is one channel, on its own colour scale."
        )
        show = gr.Button("Show feature maps of the current image")
        gallery = gr.Gallery(label="Feature maps", columns=4, height="auto", object_fit="contain")
        common.clear_on_failure(show.click(common.named_endpoint(_features_ui, "segment_features"), [image, model], gallery, api_name="segment_features"), [gallery])
    build_upsampling_panel()
