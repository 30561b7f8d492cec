"""Instance segmentation tab: a mask per object, and how that differs from semantic segmentation.

Pure functions first (``segment_instances``, ``instance_id_map``, ``semantic_versus_instance``),
then ``build()``. Mask R-CNN runs once per (model, image) through the detectors' shared cache;
the score and mask thresholds and the toggles re-draw cached candidates.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import numpy as np
from PIL import Image

import models
from models.detection import Detections, select

from . import common, detector_outputs, drawing, errors, picker, scene_truth, scenes, semantic, wiring
from .examples import example_images
from .panels.roi_panel import build_roi_panel
from .inputs import NO_IMAGE
from .upload import UploadedImage

TITLE = "Instance segmentation"
TASK = "instances"
ENDPOINT = "instances"  # the tab's main action, served at /instances

TABLE_HEADERS = ["#", "label", "score", "mask px", "x0", "y0", "x1", "y1"]
LOCAL_SEGMENTER = "unet-shapes"  # the segmentation tab's local model, for the semantic-versus-instance view


@dataclass
class InstancesResult:
    drawn: Image.Image
    detections: Detections
    records: list[dict]
    instance_png: Image.Image  # pixel value = instance number (1 = best score), 0 = background
    coco: dict
    summary: str


def instance_colours(count: int) -> list[tuple[int, int, int]]:
    """One distinct colour per instance (two circles get two colours), from the fixed palette."""
    return [drawing.class_colour(i + 1) for i in range(count)]


def binary_masks(detections: Detections, mask_threshold: float) -> np.ndarray:
    """(N, H, W) bool: each instance's mask probability above the threshold.

    The same rule as the COCO export (``detector_outputs.coco_results``): byte >= threshold x 255.
    ``round`` would differ where that is a half (0.3 -> 76.5, rounded to even: 76).
    """
    return detections.masks >= mask_threshold * 255


def instance_id_map(masks: np.ndarray) -> np.ndarray:
    """One label per pixel: the best-scoring instance that covers it (masks come best first)."""
    ids = np.zeros(masks.shape[1:], np.uint8)
    for number in range(len(masks), 0, -1):  # paint worst first, so better instances end on top
        ids[masks[number - 1]] = number
    return ids


def render(image: Image.Image, detections: Detections, mask_threshold: float = 0.5, show_masks: bool = True, show_boxes: bool = True) -> Image.Image:
    """Each instance in its own colour (torchvision's draw_segmentation_masks), with its label, score and box."""
    colours = instance_colours(len(detections))
    canvas = drawing.draw_masks(image, binary_masks(detections, mask_threshold), colours) if show_masks else image
    if not show_boxes:
        return drawing.upscale_for_display(canvas)  # the same display size as with boxes
    captions = [f"{detections.categories[c]} {s:.2f}" for c, s in zip(detections.labels, detections.scores)]
    return drawing.draw_boxes(canvas, detections.boxes, captions, colours)


def segment_instances(
    image: Image.Image,
    model_name: str,
    score_threshold: float = 0.5,
    mask_threshold: float = 0.5,
    show_masks: bool = True,
    show_boxes: bool = True,
    max_detections: int = 100,
    progress: gr.Progress | None = None,
) -> InstancesResult:
    detector_outputs.check_thresholds(score_threshold, max_detections)
    if not 0 < mask_threshold < 1:
        raise ValueError("The mask threshold is a probability strictly between 0 and 1.")
    prediction = detector_outputs.predict(image, model_name, progress)
    if prediction.raw.masks is None:
        raise ValueError(f"{models.spec(model_name).title} predicts no masks; pick a Mask R-CNN.")
    found = select(prediction.raw, score_threshold, max_detections=int(max_detections))
    masks = binary_masks(found, mask_threshold)
    records = [
        {**record, "mask_pixels": int(mask.sum())}
        for record, mask in zip(found.records(), masks)
    ]
    ids = instance_id_map(masks)
    summary = (
        f"**{len(found)} instance{'s' * (len(found) != 1)}** above score {score_threshold:.2f}, masks above {mask_threshold:.2f} · "
        f"network {prediction.seconds * 1000:.0f} ms (once per image; thresholds re-draw the cached masks)"
    )
    return InstancesResult(
        drawn=render(image, found, mask_threshold, show_masks, show_boxes),
        detections=found,
        records=records,
        instance_png=drawing.indexed_mask(ids, np.array([(0, 0, 0), *instance_colours(len(found))], np.uint8)),
        coco=detector_outputs.coco_results(found, image.size, mask_threshold=mask_threshold),
        summary=summary,
    )


def semantic_versus_instance(image: Image.Image, model_name: str, score_threshold: float, mask_threshold: float) -> list[tuple[Image.Image, str]]:
    """The same image as instances, as instances merged by class, and (local tier) as the U-Net's semantic map."""
    result = segment_instances(image, model_name, score_threshold, mask_threshold, show_boxes=False)
    masks = binary_masks(result.detections, mask_threshold)
    ids = instance_id_map(masks)
    classes = np.zeros_like(ids)
    classes[ids > 0] = result.detections.labels[ids[ids > 0] - 1]
    class_view = drawing.overlay_labels(image, classes, 0.6, drawing.palette(len(result.detections.categories)))
    views = [
        (result.drawn, f"instances: {len(result.detections)} objects, each its own colour"),
        (drawing.upscale_for_display(class_view), "merged by class: what semantic segmentation asks for (two circles, one colour)"),
    ]
    if models.spec(model_name).tier == "local" and models.spec(LOCAL_SEGMENTER).availability().usable:
        classes_view = semantic.overlay(image, semantic.predict(image, LOCAL_SEGMENTER), 0.6)
        views.append((drawing.upscale_for_display(classes_view), "the U-Net (segmentation tab): one class per pixel, no objects"))
    return views


def table_rows(records: list[dict]) -> list[list]:
    return [[i, r["label"], r["score"], r["mask_pixels"], *r["box"]] for i, r in enumerate(records, start=1)]


def live_frame(frame: np.ndarray | None, model_name: str, score_threshold: float) -> Image.Image | None:
    return detector_outputs.live_frame(frame, model_name, score_threshold, render)


# ---------------------------------------------------------------- UI


@errors.user_errors
def _instances_ui(image_path, model_name, score, mask_threshold, show_masks, show_boxes, max_detections, progress: gr.Progress = gr.Progress()):
    """Instance segmentation: a mask, box, class and score for every object.

    Args:
        image_path: the image (a file path or URL).
        model_name: an instance segmentation model's name, e.g. "maskrcnn-shapes" (local) or "maskrcnn-resnet50-v2".
        score: the lowest score shown, 0 to 1.
        mask_threshold: the mask probability above which a pixel belongs to the object.
        show_masks: draw the masks.
        show_boxes: draw the boxes.
        max_detections: at most this many instances, best first.

    Returns:
        The drawn image, a summary, a table, the records, an instance-id PNG (pixel value = instance number, 0 = none) and COCO results with RLE masks.
    """
    image = common.read_image(image_path)
    result = segment_instances(image, model_name, score, mask_threshold, show_masks, show_boxes, max_detections, progress)
    return (
        result.drawn, result.summary, table_rows(result.records), result.records,
        common.save_output(result.instance_png, "instances"), common.save_output(result.coco, "instances-coco"),
    )


def _redraw(image_path, model_name, score, mask_threshold, show_masks, show_boxes, max_detections, progress: gr.Progress = gr.Progress()):
    """Redraw after a control moves or a model is picked (the masks are cached); with no image, do nothing; without the model's weights, empty."""
    if not image_path:
        return (gr.skip(),) * 6
    if unusable := picker.unusable_outputs(model_name, 6):
        return unusable
    return _instances_ui(image_path, model_name, score, mask_threshold, show_masks, show_boxes, max_detections, progress)


@errors.user_errors
def _compare_ui(image_path, model_name, score, mask_threshold):
    if not image_path:
        raise ValueError(NO_IMAGE)
    return semantic_versus_instance(common.read_image(image_path), model_name, score, mask_threshold)


def build() -> None:
    gr.Markdown(
        "Instance segmentation = detection + a mask per object. Mask R-CNN adds one small head to Faster R-CNN: for each "
        "detected box, RoIAlign crops a 14x14 feature patch and a few convolutions predict a 28x28 mask, pasted back into "
        "the box. Unlike semantic segmentation, two objects of the same class are two instances."
    )
    with gr.Row():
        with gr.Column():
            image = UploadedImage(label="Image", sources=["upload", "clipboard"], height=320, elem_classes="dvl-image")
            new_scene = scenes.new_scene_button()
            model = picker.model_picker(TASK)
            with gr.Row():
                score = gr.Slider(0.05, 1, value=0.5, step=0.01, label="Score threshold")
                mask_threshold = gr.Slider(0.05, 0.95, value=0.5, step=0.05, label="Mask threshold", info="mask probability per pixel")
            with gr.Row():
                show_masks = gr.Checkbox(value=True, label="Masks")
                show_boxes = gr.Checkbox(value=True, label="Boxes")
                max_detections = common.int_slider(1, 100, 100, label="Maximum instances")
            run = gr.Button("Segment instances", variant="primary")
        with gr.Column():
            panel = detector_outputs.result_panel(
                "Instances", "Instances (box corners in pixels)", TABLE_HEADERS,
                ["Instance-id PNG (pixel value = instance #, 0 = background)", "COCO results (JSON, RLE masks)"], "Instances as returned by /instances",
            )
            card = gr.Markdown(picker.model_card_markdown(model.value))
    examples = gr.Examples(example_images(), inputs=image, label="Examples: unseen ShapesWorld scenes and real photos")

    controls = [image, model, score, mask_threshold, show_masks, show_boxes, max_detections]
    outputs = panel.outputs
    wiring.on_new_input(_instances_ui, controls, outputs, button=run, image=image, examples=examples, new_scene=new_scene, api_name=ENDPOINT)
    scene_truth.show_beside(panel, image, model, score)
    redraw = gr.on(
        [score.release, mask_threshold.release, max_detections.release, show_masks.input, show_boxes.input],
        _redraw, controls, outputs, api_visibility="private",
    )
    wiring.clear_on_failure(redraw, outputs)
    # .change, not .input: Gradio's dropdown fires .input twice per pick (twice the work, two messages)
    picked = model.change(errors.user_errors(picker.model_picked), model, card, api_visibility="private")
    wiring.clear_on_failure(picked.then(_redraw, controls, outputs, api_visibility="private"), outputs)

    with gr.Accordion("Semantic versus instance segmentation", open=False):
        gr.Markdown(
            "Left: instances, one colour each. Middle: the same masks merged by class, which is all a semantic "
            "segmentation asks for. With the local model, right: the segmentation tab's U-Net on the same image."
        )
        show = gr.Button("Compare on the current image")
        views = gr.Gallery(label="Instance versus semantic", columns=3, height="auto", object_fit="contain")
        wiring.clear_on_failure(show.click(_compare_ui, [image, model, score, mask_threshold], views, api_visibility="private"), [views])
    build_roi_panel(image, model, score)
    detector_outputs.webcam_panel(live_frame, [model, score], "Instance masks on your webcam with the model and score threshold chosen above.")
