"""The RoIAlign-versus-RoIPool panel under a two-stage detector's tab: one detection pooled by both operators.

Wiring only: the detection comes from the tab's cached outputs (``detector_outputs.predict``), the
network's feature levels from ``models.internals``, the arithmetic from ``roi_math`` and the
pictures from ``roi_drawing``.
"""

from __future__ import annotations

import math

import gradio as gr
from PIL import Image

from models.detection import select
from models.internals import box_pooler, pooler_inputs

from .. import common, errors, wiring
from ..detector_outputs import predict
from .roi_drawing import render_views, roi_summary
from .roi_math import RoiAnalysis, analyse

__all__ = ["analyse_roi", "build_roi_panel"]


def analyse_roi(detector, image: Image.Image, box) -> RoiAnalysis:
    """Pool ``box`` (x0, y0, x1, y1 in ``image``'s pixels) the way ``detector``'s box head does, with both operators."""
    return analyse(pooler_inputs(detector, image), image.size, box)


def _roi_ui(image_path, model_name: str, score: float, number, progress: gr.Progress = gr.Progress()):
    if not image_path:
        raise ValueError("Pick or upload an image first.")
    if number is None or not math.isfinite(float(number)) or float(number) != int(float(number)) or int(number) < 1:
        raise ValueError("Detection # is a whole number from 1 (the best-scoring detection).")
    image = common.read_image(image_path)
    detector = common.load_model(model_name, progress)
    box_pooler(detector)  # before running anything: a model without an RoI pooler is a clear error
    detections = select(predict(image, model_name, progress).raw, float(score))
    if not len(detections):
        raise ValueError(f"No detection scores above {float(score):.2f}: lower the score threshold.")
    if int(number) > len(detections):
        count = len(detections)
        raise ValueError(f"There are {count} detections above {float(score):.2f}: pick a detection # from 1 to {count}.")
    index = int(number) - 1
    analysis = analyse_roi(detector, image, detections.boxes[index])
    label = detections.categories[int(detections.labels[index])]
    head = f"Detection #{index + 1}: **{label}** ({float(detections.scores[index]):.2f}).\n\n"
    return render_views(analysis), head + roi_summary(analysis)


def build_roi_panel(image: gr.components.Component, model: gr.Dropdown, score: gr.Slider) -> None:
    """The accordion under a two-stage detector's tab: one detection pooled by RoIPool and by RoIAlign.

    ``image`` is the tab's image component (a file path), ``model`` its model picker and
    ``score`` its score threshold: the panel pools detection # n of what the tab shows.
    """
    with gr.Accordion("RoIAlign versus RoIPool", open=False):
        gr.Markdown(
            "A two-stage detector crops a fixed 7×7 feature patch for every box from one level of its feature pyramid. "
            "Pick a detection (1 = best score) to see which level it is pooled from, how **RoIPool** rounds the box to "
            "whole feature cells, and where **RoIAlign** samples instead. Feature cells are drawn centred on whole "
            "coordinates, the convention both torchvision operators use."
        )
        with gr.Row():
            number = gr.Number(value=1, precision=0, minimum=1, label="Detection #")
            show = gr.Button("Pool this detection")
        views = gr.Gallery(label="RoIPool versus RoIAlign", columns=2, height="auto", object_fit="contain", elem_classes="dvl-fit")
        summary = gr.Markdown()
        pooled = show.click(errors.user_errors(_roi_ui), [image, model, score, number], [views, summary], api_visibility="private")
        wiring.clear_on_failure(pooled, [views, summary])
