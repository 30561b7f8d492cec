"""A semantic segmentation model's per-pixel classes for an image, shared by every tab that shows them.

The segmentation tab draws them with its legend and confidence map; the instance segmentation
tab sets them beside its instances. Both ask here, so one prediction per (model, image) is
cached for both.
"""

from __future__ import annotations

import gradio as gr
from PIL import Image

import models
from models.segmentation import SegmentationOutput

from . import common, drawing

__all__ = ["overlay", "predict"]


def predict(image: Image.Image, model_name: str, progress: gr.Progress | None = None) -> SegmentationOutput:
    """Per-pixel classes for ``image``; cached per (model, image), so re-rendering is free."""
    model = common.load_model(model_name, progress)
    return models.cache().derived(("segment", model_name, common.image_key(image)), lambda: model(image))


def overlay(image: Image.Image, output: SegmentationOutput, opacity: float) -> Image.Image:
    """Each pixel's class colour over ``image`` at ``opacity``, in the palette of the model's classes."""
    return drawing.overlay_labels(image, output.labels, opacity, drawing.palette(len(output.categories)))
