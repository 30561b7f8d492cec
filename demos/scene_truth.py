"""A ShapesWorld input's ground truth beside a detector tab's prediction, and the prediction's score on that image.

When the input is a ShapesWorld scene (``scenes.scene_of``), the detection, instance and pose tabs
draw its true boxes, masks or skeletons, and score the model on this one image with the metric its
card reports over 500 scenes: box or mask AP from torchmetrics' ``MeanAveragePrecision`` (every
candidate, as the trainers evaluate), and PCK@0.1 from the pose trainer's own ``pck``. A
pretrained model knows COCO's classes and keypoints, not ShapesWorld's: for it, the truth alone.
"""

from __future__ import annotations

from typing import Callable

import gradio as gr
import numpy as np
import torch
from PIL import Image
from torchmetrics.detection import MeanAveragePrecision

import models
import shapesworld
from models.detection import Detections, select
from models.pose import pck

from . import detector_outputs, drawing, errors, picker, scenes

EVALUATED_AS = "every candidate, the model's own NMS, at most 100, as the card's evaluation"


def draw_boxes_truth(scene: shapesworld.Scene) -> Image.Image:
    """True boxes with their class, each class in the colour the local detectors draw it in."""
    labels = scene.labels
    return drawing.draw_boxes(
        Image.fromarray(scene.image), scene.boxes, [shapesworld.CLASSES[c] for c in labels], [drawing.class_colour(int(c)) for c in labels]
    )


def draw_masks_truth(scene: shapesworld.Scene) -> Image.Image:
    """True instance masks, one colour per instance, with their boxes and classes."""
    colours = [drawing.class_colour(i + 1) for i in range(len(scene.objects))]
    canvas = drawing.draw_masks(Image.fromarray(scene.image), scene.masks, colours)
    return drawing.draw_boxes(canvas, scene.boxes, [o.kind for o in scene.objects], colours)


def draw_keypoints_truth(scene: shapesworld.Scene) -> Image.Image:
    """True people: box and skeleton; visible joints solid, occluded ones faded."""
    people = scene.people
    colours = [drawing.class_colour(i + 1) for i in range(len(people))]
    canvas = drawing.draw_boxes(Image.fromarray(scene.image), np.array([p.box for p in people], np.float32).reshape(-1, 4), ["person"] * len(people), colours)
    if not people:
        return canvas
    keypoints = np.stack([p.keypoints for p in people])
    scale = canvas.width / scene.image.shape[1]
    visible = keypoints[..., 2] == shapesworld.vocab.VISIBLE
    return drawing.draw_skeletons(canvas, keypoints[..., :2] * scale, visible, list(shapesworld.SKELETON_INDICES), colours)


def to_shapesworld_labels(detections: Detections) -> np.ndarray:
    """The model's label indices as ShapesWorld class indices (a local model's class list need not be ShapesWorld's: pose has two)."""
    lookup = np.array([shapesworld.CLASSES.index(c) if c in shapesworld.CLASSES else -1 for c in detections.categories], np.int64)
    return lookup[detections.labels]


def average_precision(scene: shapesworld.Scene, found: Detections, masks: bool = False) -> dict[str, float]:
    """AP@0.5 and AP@[.5:.95] of ``found`` on this one scene (torchmetrics): boxes, or masks above probability 0.5."""
    metric = MeanAveragePrecision(iou_type="segm" if masks else "bbox")
    prediction = {"scores": torch.from_numpy(found.scores), "labels": torch.from_numpy(to_shapesworld_labels(found))}
    target = {"labels": torch.from_numpy(scene.labels)}
    if masks:
        prediction["masks"] = torch.from_numpy(found.masks >= 128)
        target["masks"] = torch.from_numpy(scene.masks)
    else:
        prediction["boxes"] = torch.from_numpy(found.boxes)
        target["boxes"] = torch.from_numpy(scene.boxes)
    metric.update([prediction], [target])
    result = metric.compute()
    return {"ap_50": float(result["map_50"]), "ap": float(result["map"])}


def pck_on_scene(scene: shapesworld.Scene, shown: Detections) -> tuple[float, int] | None:
    """PCK@0.1 of the people shown on this scene, and over how many visible keypoints; None if no keypoint is visible."""
    people = scene.people
    if not people:
        return None
    found, _ = pck(np.array([p.box for p in people], np.float32), np.stack([p.keypoints for p in people]), shown.boxes, shown.keypoints)
    return (float(found.mean()), len(found)) if len(found) else None


def score_markdown(scene: shapesworld.Scene, model_name: str, score_threshold: float) -> str:
    """How the model does on this scene, by the metric its card reports; or why there is no score."""
    spec = models.spec(model_name)
    if spec.tier != "local":
        return (
            f"Ground truth of ShapesWorld scene {scene.seed}. {spec.title} knows COCO's classes and keypoints, not ShapesWorld's, "
            "so it is not scored here."
        )
    if not spec.availability().usable:
        return f"Ground truth of ShapesWorld scene {scene.seed}. No score: the weights of {spec.title} are not here."
    raw = detector_outputs.predict(Image.fromarray(scene.image), model_name).raw  # cached: the tab just ran it
    head = f"**On this scene** (ShapesWorld seed {scene.seed}): "
    if spec.task == "pose":
        result = pck_on_scene(scene, select(raw, score_threshold))
        if result is None:
            return head + "no visible keypoint, so no PCK."
        value, count = result
        return picker.no_autolink(
            head + f"PCK@0.1 = **{value:.2f}** over {count} visible keypoints of the people above score {score_threshold:.2f} "
            "(a joint counts when within 0.1 of the person box's longer side)."
        )
    if not len(scene.objects):
        return head + "no objects, so no AP."
    found = select(raw, 0.0, max_detections=100)
    boxes = average_precision(scene, found)
    text = f"box AP@0.5 = **{boxes['ap_50']:.2f}**, AP@[.5:.95] = {boxes['ap']:.2f}"
    if spec.task == "instances":
        mask = average_precision(scene, found, masks=True)
        text = f"mask AP@0.5 = **{mask['ap_50']:.2f}**, AP@[.5:.95] = {mask['ap']:.2f} · " + text
    return picker.no_autolink(head + text + f" (torchmetrics; {EVALUATED_AS}).")


DRAW_TRUTH: dict[str, Callable[[shapesworld.Scene], Image.Image]] = {
    "detection": draw_boxes_truth,
    "instances": draw_masks_truth,
    "pose": draw_keypoints_truth,
}


def truth_view(image_path: str | None, model_name: str, score_threshold: float = 0.5) -> tuple[Image.Image | None, str]:
    """The drawn ground truth and the score, if ``image_path`` is a ShapesWorld scene; (None, "") for any other image."""
    scene = scenes.scene_of(image_path)
    if scene is None:
        return None, ""
    return DRAW_TRUTH[models.spec(model_name).task](scene), score_markdown(scene, model_name, score_threshold)


@errors.user_errors
def _truth_ui(image_path, model_name, score_threshold):
    drawn, score = truth_view(image_path, model_name, score_threshold)
    return gr.update(value=drawn, visible=drawn is not None), score


def show_beside(panel: detector_outputs.ResultPanel, image, model, score) -> None:
    """Keep ``panel``'s ground truth in step with its prediction: whenever the drawn result changes, so does the truth."""
    panel.drawn.change(_truth_ui, [image, model, score], [panel.truth, panel.truth_score], api_visibility="private", show_progress="hidden")
