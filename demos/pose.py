"""Pose tab: a skeleton per person, each joint with its confidence, and the heatmap a joint comes from.

Pure functions first (``estimate_pose``, ``heatmap_view``), then ``build()``. Keypoint R-CNN
runs once per (model, image) through the detectors' shared cache; thresholds re-draw.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import numpy as np
from PIL import Image

import models
from models.detection import Detections, select
from models.pose import keypoint_heatmaps

from . import common, detector_outputs, drawing, errors, picker, scene_truth, scenes, wiring
from .examples import example_images
from .inputs import NO_IMAGE
from .upload import UploadedImage

TITLE = "Pose"
TASK = "pose"
ENDPOINT = "pose"  # the tab's main action, served at /pose

TABLE_HEADERS = ["person", "keypoint", "x", "y", "score", "shown"]
DEFAULT_KEYPOINT_THRESHOLD = 2.0


@dataclass
class PoseResult:
    drawn: Image.Image
    detections: Detections
    records: list[dict]
    coco: dict
    summary: str


def person_colours(count: int) -> list[tuple[int, int, int]]:
    return [drawing.class_colour(i + 1) for i in range(count)]


def render(image: Image.Image, detections: Detections, keypoint_threshold: float = DEFAULT_KEYPOINT_THRESHOLD, skeleton=None) -> Image.Image:
    """Person boxes and skeletons (torchvision's draw_keypoints); joints scoring below the threshold, and their limbs, faded."""
    colours = person_colours(len(detections))
    canvas = drawing.draw_boxes(image, detections.boxes, [f"person {s:.2f}" for s in detections.scores], colours)
    scale = canvas.width / image.width
    confident = detections.keypoint_scores >= keypoint_threshold
    return drawing.draw_skeletons(canvas, detections.keypoints * scale, confident, skeleton or [], colours)


def estimate_pose(
    image: Image.Image,
    model_name: str,
    score_threshold: float = 0.5,
    keypoint_threshold: float = DEFAULT_KEYPOINT_THRESHOLD,
    max_people: int = 20,
    progress: gr.Progress | None = None,
) -> PoseResult:
    detector_outputs.check_thresholds(score_threshold, max_people)
    model = common.load_model(model_name, progress)
    prediction = detector_outputs.predict(image, model_name, progress)
    if prediction.raw.keypoints is None:
        raise ValueError(f"{models.spec(model_name).title} predicts no keypoints; pick a Keypoint R-CNN.")
    found = select(prediction.raw, score_threshold, max_detections=int(max_people))
    records = []
    for record, points, scores in zip(found.records(), found.keypoints, found.keypoint_scores):
        record["keypoints"] = [
            {"name": name, "x": round(float(x), 1), "y": round(float(y), 1), "score": round(float(s), 2), "shown": bool(s >= keypoint_threshold)}
            for name, (x, y), s in zip(model.keypoint_names, points, scores)
        ]
        records.append(record)
    shown = int((found.keypoint_scores >= keypoint_threshold).sum()) if len(found) else 0
    summary = (
        f"**{len(found)} {'person' if len(found) == 1 else 'people'}** above score {score_threshold:.2f} · "
        f"{shown} of {len(found) * len(model.keypoint_names)} joints score at least {keypoint_threshold:g} (the rest are faded) · "
        f"network {prediction.seconds * 1000:.0f} ms (once per image)"
    )
    coco = detector_outputs.coco_results(found, image.size)
    coco["categories"] = [{"id": 1, "name": "person", "keypoints": list(model.keypoint_names), "skeleton": [[a + 1, b + 1] for a, b in model.skeleton]}]
    return PoseResult(render(image, found, keypoint_threshold, model.skeleton), found, records, coco, summary)


def table_rows(records: list[dict]) -> list[list]:
    return [[p, k["name"], k["x"], k["y"], k["score"], "yes" if k["shown"] else "faded"] for p, r in enumerate(records, start=1) for k in r["keypoints"]]


HEATMAP_SIDE = 384  # the person's crop is enlarged to about this many pixels, so a 30 px figure's heatmap is readable


def heatmap_view(image: Image.Image, model_name: str, score_threshold: float, person: int, keypoint: str) -> tuple[Image.Image, str]:
    """One person's heatmap for one keypoint, upsampled over that person's crop, with its colour scale and its peak marked.

    The keypoint head predicts a 56x56 map of logits per joint over the person's box; torchvision
    resizes it to the box and places the joint at its peak. Shown as logits (not a softmax, which
    puts nearly all mass on one pixel), so the whole map's shape reads, and the bar gives the values.
    """
    model = common.load_model(model_name)
    raw = detector_outputs.predict(image, model_name).raw
    if raw.keypoints is None:
        raise ValueError(f"{models.spec(model_name).title} predicts no keypoints; pick a Keypoint R-CNN.")
    found = select(raw, score_threshold)
    if not 1 <= person <= len(found):
        raise ValueError(f"There are {len(found)} people above score {score_threshold:.2f}; pick a person from 1 to {max(len(found), 1)}.")
    if keypoint not in model.keypoint_names:
        raise ValueError(f"{keypoint!r} is not a keypoint of this model: {', '.join(model.keypoint_names)}")
    k = model.keypoint_names.index(keypoint)
    box = found.boxes[person - 1]
    logits = keypoint_heatmaps(model, image, box[None])[0, k]
    x0, y0, x1, y1 = (int(round(v)) for v in box)  # torchvision clips boxes to the image
    crop = image.convert("RGB").crop((x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)))
    low, high = float(logits.min()), float(logits.max())
    view = drawing.heat_overlay(crop, logits, opacity=0.6, target=HEATMAP_SIDE, scale=(low, high, f"{keypoint} logit"))
    zoom = drawing.display_scale(crop.size, HEATMAP_SIDE)
    x, y = found.keypoints[person - 1, k]
    peak = np.array([[[(x - x0) * zoom, (y - y0) * zoom]]], np.float32)
    marked = drawing.draw_skeletons(view, peak, np.array([[True]]), [], [(255, 255, 255)])
    note = (
        f"**{keypoint}** of person {person}: the keypoint head's {logits.shape[1]}×{logits.shape[0]} heatmap, stretched over the "
        f"person's box ({x1 - x0}×{y1 - y0} px, enlarged ×{zoom}); colour = logit, from {low:.1f} to {high:.1f} (bar on the right). "
        f"The joint is placed at its peak, the white dot ({x:.0f}, {y:.0f}); its score is the peak's logit, {found.keypoint_scores[person - 1, k]:.2f}."
    )
    return marked, note


def live_frame(frame: np.ndarray | None, model_name: str, score_threshold: float) -> Image.Image | None:
    model = common.load_model(model_name)
    return detector_outputs.live_frame(frame, model_name, score_threshold, lambda image, found: render(image, found, skeleton=model.skeleton))


# ---------------------------------------------------------------- UI


@errors.user_errors
def _pose_ui(image_path, model_name, score, keypoint_threshold, max_people, progress: gr.Progress = gr.Progress()):
    """Pose estimation: the keypoints and skeleton of every person.

    Args:
        image_path: the image (a file path or URL).
        model_name: a pose model's name, e.g. "keypointrcnn-shapes" (local) or "keypointrcnn-resnet50".
        score: the lowest person score shown, 0 to 1.
        keypoint_threshold: joints whose confidence is below this are drawn faded.
        max_people: at most this many people, best first.

    Returns:
        The image with skeletons, a summary, a keypoint table, the records (box, score, keypoints with confidence), and COCO keypoint results as a JSON file.
    """
    image = common.read_image(image_path)
    result = estimate_pose(image, model_name, score, keypoint_threshold, max_people, progress)
    return result.drawn, result.summary, table_rows(result.records), result.records, common.save_output(result.coco, "pose-coco")


def _redraw(image_path, model_name, score, keypoint_threshold, max_people, progress: gr.Progress = gr.Progress()):
    """Redraw after a control moves or a model is picked; with no image, do nothing; without the model's weights, empty."""
    if not image_path:
        return (gr.skip(),) * 5
    if unusable := picker.unusable_outputs(model_name, 5):
        return unusable
    return _pose_ui(image_path, model_name, score, keypoint_threshold, max_people, progress)


@errors.user_errors
def _model_changed(model_name: str):
    """A new model: its keypoints in the picker and its card, read without loading it (its weights need not be here)."""
    names = models.spec(model_name).labels.keypoints
    return gr.update(choices=names, value=names[0] if names else None), picker.model_picked(model_name)


@errors.user_errors
def _heatmap_ui(image_path, model_name, score, person, keypoint):
    if not image_path:
        raise ValueError(NO_IMAGE)
    return heatmap_view(common.read_image(image_path), model_name, score, int(person), keypoint)


def build() -> None:
    gr.Markdown(
        "Keypoint R-CNN is a Faster R-CNN for people with one more head: for each person box, RoIAlign crops a feature "
        "patch and the head predicts one heatmap per joint; the joint sits at the heatmap's peak. The pretrained model "
        "knows COCO's 17 keypoints; the local one ShapesWorld's stick figures (14). Faded joints score below the threshold."
    )
    with gr.Row():
        with gr.Column():
            image = UploadedImage(label="Image", sources=["upload", "clipboard"], height=320, elem_classes="dvl-image")
            new_scene = scenes.new_scene_button()
            model = picker.model_picker(TASK)
            with gr.Row():
                score = gr.Slider(0.05, 1, value=0.5, step=0.01, label="Person score threshold")
                keypoint_threshold = gr.Slider(-2, 12, value=DEFAULT_KEYPOINT_THRESHOLD, step=0.1, label="Joint score threshold", info="the heatmap peak's logit")
            max_people = common.int_slider(1, 50, 20, label="Maximum people")
            run = gr.Button("Estimate pose", variant="primary")
        with gr.Column():
            panel = detector_outputs.result_panel(
                "Skeletons", "Keypoints (pixels)", TABLE_HEADERS, ["COCO keypoint results (JSON)"], "People as returned by /pose"
            )
            card = gr.Markdown(picker.model_card_markdown(model.value))
    examples = gr.Examples(example_images(), inputs=image, label="Examples: unseen ShapesWorld scenes and real photos")

    controls = [image, model, score, keypoint_threshold, max_people]
    outputs = panel.outputs
    wiring.on_new_input(_pose_ui, controls, outputs, button=run, image=image, examples=examples, new_scene=new_scene, api_name=ENDPOINT)
    scene_truth.show_beside(panel, image, model, score)
    redraw = gr.on([score.release, keypoint_threshold.release, max_people.release], _redraw, controls, outputs, api_visibility="private")
    wiring.clear_on_failure(redraw, outputs)

    with gr.Accordion("Where the model looked: one joint's heatmap", open=False):
        with gr.Row():
            person = gr.Number(value=1, precision=0, minimum=1, label="Person #")
            names = models.spec(model.value).labels.keypoints
            keypoint = gr.Dropdown(choices=names, value=names[0] if names else None, label="Keypoint")
            show = gr.Button("Show heatmap")
        with gr.Row():
            heat = gr.Image(label="Heatmap over the person (colour scale on the right)", type="pil", format="png", interactive=False, height=320, elem_classes="dvl-image")
            note = gr.Markdown(label="About this heatmap")
        wiring.clear_on_failure(show.click(_heatmap_ui, [image, model, score, person, keypoint], [heat, note], api_visibility="private"), [heat, note])
    # .change, not .input: Gradio's dropdown fires .input twice per pick (twice the work, two messages)
    picked = model.change(_model_changed, model, [keypoint, card], api_visibility="private")
    wiring.clear_on_failure(picked.then(_redraw, controls, outputs, api_visibility="private"), outputs)
    detector_outputs.webcam_panel(live_frame, [model, score], "Skeletons on your webcam with the model and score threshold chosen above.")
