"""Object detection tab: boxes, labels and scores, and how a detector gets from features to boxes.

Pure functions first (``predict``, ``detect``, ``coco_results``, ``proposal_views``, ``nms_view``,
``compare``), then ``build()``, which only wires them to widgets. The network runs once per
(model, image): every threshold, class filter and teaching view re-uses its cached raw candidates.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import gradio as gr
import numpy as np
from PIL import Image

import models
from models.detection import SCORE_FLOOR, Detections, RawDetections, rpn_proposals, select

from . import boxes, common, detector_outputs, drawing, errors, picker, scene_truth, scenes, wiring
from .examples import example_images
from .detector_outputs import PLACEHOLDERS, class_ids, coco_results, predict
from .inputs import NO_IMAGE
from .upload import UploadedImage

TITLE = "Object detection"
TASK = "detection"
ENDPOINT = "detect"  # the tab's main action, served at /detect

TABLE_HEADERS = ["#", "label", "score", "x0", "y0", "x1", "y1"]


@dataclass
class DetectResult:
    drawn: Image.Image
    detections: Detections
    records: list[dict]
    coco: dict
    summary: str


def class_choices(model_name: str) -> list[str]:
    """The class names a model can detect, for the class filter (placeholders left out); its weights need not be here."""
    return [c for c in dict.fromkeys(models.spec(model_name).labels.categories) if c not in PLACEHOLDERS]


def render(image: Image.Image, detections: Detections) -> Image.Image:
    """Boxes in one fixed colour per class, each tagged with its label and score."""
    return drawing.draw_boxes(
        image,
        detections.boxes,
        [f"{detections.categories[c]} {s:.2f}" for c, s in zip(detections.labels, detections.scores)],
        [drawing.class_colour(int(c)) for c in detections.labels],
    )


def detect(
    image: Image.Image,
    model_name: str,
    score_threshold: float = 0.5,
    nms_iou: float = 0.5,
    classes: list[str] | None = None,
    max_detections: int = 100,
    progress: gr.Progress | None = None,
) -> DetectResult:
    """Detections of ``image`` at these thresholds, drawn, as records, and in COCO's format."""
    detector_outputs.check_thresholds(score_threshold, max_detections, nms_iou)
    prediction = predict(image, model_name, progress)
    raw = prediction.raw
    start = time.perf_counter()
    found = select(raw, score_threshold, nms_iou, class_ids(raw.categories, classes), int(max_detections))
    drawn = render(image, found)
    refilter_ms = (time.perf_counter() - start) * 1000
    nms_note = f"NMS at IoU {nms_iou:.2f}" if raw.uses_nms else "no NMS (DETR predicts a set: one query per object)"
    summary = (
        f"**{len(found)} detection{'s' * (len(found) != 1)}** above score {score_threshold:.2f} · "
        f"{len(raw.scores)} raw candidates above {SCORE_FLOOR} · {nms_note}  \n"
        f"network {prediction.seconds * 1000:.0f} ms (once per image) · thresholds and drawing {refilter_ms:.0f} ms"
    )
    return DetectResult(drawn, found, found.records(), coco_results(found, image.size), summary)


def table_rows(records: list[dict]) -> list[list]:
    return [[i, r["label"], r["score"], *r["box"]] for i, r in enumerate(records, start=1)]


# ---------------------------------------------------------------- teaching views


def proposal_views(image: Image.Image, model_name: str, score_threshold: float, nms_iou: float, top_n: int = 50) -> list[tuple[Image.Image, str]]:
    """Two-stage detection in three pictures: RPN proposals before NMS, after NMS, and the final detections."""
    model = common.load_model(model_name)
    stages = models.cache().derived(("proposals", model_name, common.image_key(image), int(top_n)), lambda: rpn_proposals(model, image, int(top_n)))
    grey = (250, 250, 250)
    before = drawing.draw_boxes(image, stages.before_nms, [""] * len(stages.before_nms), [grey] * len(stages.before_nms))
    after = drawing.draw_boxes(image, stages.after_nms, [""] * len(stages.after_nms), [grey] * len(stages.after_nms))
    final = detect(image, model_name, score_threshold, nms_iou)
    return [
        (before, f"1. RPN: top {len(stages.before_nms)} of {stages.pre_nms_top_n} proposals by objectness, before NMS"),
        (after, f"2. after the RPN's NMS (IoU {stages.rpn_nms_iou:.1f}): top {len(stages.after_nms)} of {stages.extra['after_nms_total']} go to the box head"),
        (final.drawn, f"3. final: {len(final.detections)} detections (box head, score > {score_threshold:.2f}, NMS {nms_iou:.2f})"),
    ]


@dataclass
class NmsView:
    """Step ``step`` of NMS on one class's candidates: the picture, the table so far, what the step decides."""

    figure: Image.Image
    rows: list[list]
    note: str
    class_name: str
    classes: list[str]  # the classes with candidates above the score threshold, most candidates first
    step: int
    steps: int


def nms_view(
    image: Image.Image, model_name: str, score_threshold: float, nms_iou: float, class_name: str | None, step: int | None = None
) -> NmsView:
    """NMS on one class's candidates above the score threshold, at the current IoU threshold, after ``step`` steps (all by default)."""
    raw = predict(image, model_name).raw
    present = _classes_with_candidates(raw, score_threshold)
    if not present:
        raise ValueError(f"No candidate scores above {score_threshold:.2f}; lower the score threshold.")
    name = class_name if class_name in present else present[0]
    chosen = (raw.scores > score_threshold) & (raw.labels == raw.categories.index(name))
    candidates, scores = raw.boxes[chosen], raw.scores[chosen]
    steps = boxes.nms_walkthrough(candidates, scores, nms_iou)
    step = len(steps) if step is None else min(max(int(step), 1), len(steps))
    kept = sum(s.kept for s in steps)
    note = (
        f"**{name}**: {len(steps)} candidates above {score_threshold:.2f}, best first; NMS at IoU {nms_iou:.2f} keeps **{kept}** in the end.  \n"
        + boxes.nms_step_note(steps, step, nms_iou)
    )
    if not raw.uses_nms:
        note += " (This model does not use NMS: DETR's queries already avoid duplicates. This is what NMS *would* do.)"
    return NmsView(boxes.nms_figure(image, candidates, steps, step), boxes.nms_rows(steps, step), note, name, present, step, len(steps))


def _classes_with_candidates(raw: RawDetections, score_threshold: float) -> list[str]:
    labels = raw.labels[raw.scores > score_threshold]
    counts = np.bincount(labels, minlength=len(raw.categories)) if len(labels) else np.zeros(len(raw.categories), int)
    return [raw.categories[i] for i in np.argsort(-counts, kind="stable") if counts[i] > 0]


def compare(image: Image.Image, model_a: str, model_b: str, score_threshold: float) -> list[tuple[Image.Image, str]]:
    """The same image through two models, each with its network time."""
    views = []
    for name in (model_a, model_b):
        prediction = predict(image, name)
        result = detect(image, name, score_threshold, prediction.raw.default_nms_iou)
        views.append((result.drawn, f"{models.spec(name).title}: {len(result.detections)} detections, network {prediction.seconds * 1000:.0f} ms"))
    return views


def live_frame(frame: np.ndarray | None, model_name: str, score_threshold: float) -> Image.Image | None:
    return detector_outputs.live_frame(frame, model_name, score_threshold, render)


# ---------------------------------------------------------------- UI


@errors.user_errors
def _detect_ui(image_path, model_name, score, nms_iou, classes, max_detections, progress: gr.Progress = gr.Progress()):
    """Object detection: a box, a class and a score for every object found.

    Args:
        image_path: the image (a file path or URL).
        model_name: a detection model's name, e.g. "fasterrcnn-shapes" (local) or "fasterrcnn-mobilenet".
        score: the lowest score shown, 0 to 1.
        nms_iou: the IoU above which non-maximum suppression drops the weaker of two boxes of one class.
        classes: the class names to keep (empty keeps all).
        max_detections: at most this many detections, best first.

    Returns:
        The image with boxes drawn, a summary, a table of detections, the detections as a list of records (label, score, box in pixels), and a COCO results JSON file.
    """
    image = common.read_image(image_path)
    result = detect(image, model_name, score, nms_iou, classes, max_detections, progress)
    return result.drawn, result.summary, table_rows(result.records), result.records, common.save_output(result.coco, "detections-coco")


def _refilter(image_path, model_name, score, nms_iou, classes, max_detections, progress: gr.Progress = gr.Progress()):
    """Redraw after a control moves (the network's output is cached); with no image, do nothing; without the model's weights, empty."""
    if not image_path:
        return (gr.skip(),) * 5
    if unusable := picker.unusable_outputs(model_name, 5):
        return unusable
    return _detect_ui(image_path, model_name, score, nms_iou, classes, max_detections, progress)


@errors.user_errors
def _model_changed(model_name: str):
    """A new model: its own classes in the filter, its card, and its own default NMS IoU (from its spec: weights here or not)."""
    card = picker.model_picked(model_name)
    nms_default = models.spec(model_name).default_nms_iou
    return gr.update(choices=class_choices(model_name), value=[]), gr.skip() if nms_default is None else nms_default, card


@errors.user_errors
def _proposals_ui(image_path, model_name, score, nms_iou, top_n):
    if not image_path:
        raise ValueError(NO_IMAGE)
    return proposal_views(common.read_image(image_path), model_name, score, nms_iou, top_n)


@errors.user_errors
def _nms_ui(image_path, model_name, score, nms_iou, class_name, step):
    """NMS at step ``step`` (clamped to the candidates there are); the class and step controls follow."""
    if not image_path:
        raise ValueError(NO_IMAGE)
    view = nms_view(common.read_image(image_path), model_name, score, nms_iou, class_name, step)
    return (
        view.figure, view.rows, view.note,
        gr.update(choices=view.classes, value=view.class_name), gr.update(maximum=max(view.steps, 2), value=view.step),
    )


def _nms_start(image_path, model_name, score, nms_iou, class_name):
    return _nms_ui(image_path, model_name, score, nms_iou, class_name, 1)


def _nms_next(image_path, model_name, score, nms_iou, class_name, step):
    return _nms_ui(image_path, model_name, score, nms_iou, class_name, int(step) + 1)


@errors.user_errors
def _compare_ui(image_path, model_a, model_b, score):
    if not image_path:
        raise ValueError(NO_IMAGE)
    return compare(common.read_image(image_path), model_a, model_b, score)


def build() -> None:
    gr.Markdown(
        "A detector finds each object and puts a box, a class and a score on it. Two-stage models (Faster R-CNN) first "
        "propose regions, then classify each; one-stage models (RetinaNet, FCOS, SSD) predict boxes straight from every "
        "feature-map location; DETR predicts a *set* of boxes with a transformer and needs no NMS. The local models know "
        "ShapesWorld's shapes and stick figures; the pretrained ones COCO's 80 classes. Moving a control re-filters the "
        "model's cached candidates: the network does not run again."
    )
    with gr.Row():
        with gr.Column():
            image = UploadedImage(label="Image", sources=["upload", "clipboard"], height=320, elem_classes="dvl-image")
            new_scene = scenes.new_scene_button()
            model = picker.model_picker(TASK)
            with gr.Row():
                score = gr.Slider(SCORE_FLOOR, 1, value=0.5, step=0.01, label="Score threshold")
                nms_iou = gr.Slider(0.05, 1, value=0.5, step=0.01, label="NMS IoU threshold", info="1 = no suppression")
            with gr.Row():
                classes = gr.Dropdown(choices=class_choices(model.value), value=[], multiselect=True, label="Only these classes (empty: all)")
                max_detections = common.int_slider(1, 300, 100, label="Maximum detections")
            run = gr.Button("Detect", variant="primary")
        with gr.Column():
            panel = detector_outputs.result_panel(
                "Detections", "Detections (box corners in pixels)", TABLE_HEADERS,
                ["COCO results (JSON: images, categories, annotations with bbox = x, y, w, h and score)"], "Detections as returned by /detect",
            )
            card = gr.Markdown(picker.model_card_markdown(model.value))
    examples = gr.Examples(example_images(), inputs=image, label="Examples: unseen ShapesWorld scenes and real photos")

    controls = [image, model, score, nms_iou, classes, max_detections]
    outputs = panel.outputs
    wiring.on_new_input(_detect_ui, controls, outputs, button=run, image=image, examples=examples, new_scene=new_scene, api_name=ENDPOINT)
    scene_truth.show_beside(panel, image, model, score)
    refilter = gr.on([score.release, nms_iou.release, max_detections.release, classes.input], _refilter, controls, outputs, api_visibility="private")
    wiring.clear_on_failure(refilter, outputs)
    # .change, not .input: Gradio's dropdown fires .input twice per pick (twice the work, two messages)
    picked = model.change(_model_changed, model, [classes, nms_iou, card], api_visibility="private")
    wiring.clear_on_failure(picked.then(_refilter, controls, outputs, api_visibility="private"), outputs)

    with gr.Accordion("Two-stage detectors: region proposals → NMS → detections", open=False):
        gr.Markdown(
            "Faster R-CNN's region proposal network scores thousands of anchors for *objectness* and refines them; its own "
            "NMS thins them to a few hundred proposals; RoIAlign crops each proposal's features for the box head, which "
            "classifies it and refines its box. Pick a Faster R-CNN model."
        )
        with gr.Row():
            top_n = common.int_slider(5, 300, 50, step=5, label="Proposals shown (top N)")
            show_proposals = gr.Button("Show the stages")
        stages = gr.Gallery(label="Stages", columns=3, height="auto", object_fit="contain")
        wiring.clear_on_failure(show_proposals.click(_proposals_ui, [image, model, score, nms_iou, top_n], stages, api_visibility="private"), [stages])

    with gr.Accordion("NMS step by step", open=False):
        gr.Markdown(
            "Candidates of one class above the score threshold, best first. Each is kept unless it overlaps an already kept "
            "box by more than the NMS IoU threshold. Start, then step with Next or the Step slider; move the threshold "
            "above and start again: lower suppresses more."
        )
        with gr.Row():
            nms_class = gr.Dropdown(choices=[], label="Class", allow_custom_value=True)
            show_nms = gr.Button("Start NMS")
            nms_next = gr.Button("Next step")
        nms_step = common.int_slider(1, 2, 1, label="Step", info="how many candidates NMS has decided so far")
        with gr.Row():
            nms_figure = gr.Image(
                label="Kept (green, numbered, on top), suppressed (faint red), waiting (faint grey)",
                type="pil", format="png", interactive=False, height=320, elem_classes="dvl-image",
            )
            with gr.Column():
                nms_note = gr.Markdown(label="This step")
                nms_table = gr.Dataframe(headers=["#", "score", "verdict", "why"], label="Decisions so far", interactive=False, max_height=320)
        nms_outputs = [nms_figure, nms_table, nms_note]
        nms_inputs = [image, model, score, nms_iou, nms_class]
        for event in (
            show_nms.click(_nms_start, nms_inputs, [*nms_outputs, nms_class, nms_step], api_visibility="private"),
            nms_next.click(_nms_next, [*nms_inputs, nms_step], [*nms_outputs, nms_class, nms_step], api_visibility="private"),
            nms_step.release(_nms_ui, [*nms_inputs, nms_step], [*nms_outputs, nms_class, nms_step], api_visibility="private"),
        ):
            wiring.clear_on_failure(event, nms_outputs)

    boxes.build_iou_panel()

    with gr.Accordion("Compare two models on the same image", open=False):
        with gr.Row():
            model_a = picker.model_picker(TASK, label="Model A")
            model_b = picker.model_picker(TASK, label="Model B", value=picker.second_choice(TASK))
            show_compare = gr.Button("Compare")
        side_by_side = gr.Gallery(label="Side by side", columns=2, height="auto", object_fit="contain")
        wiring.clear_on_failure(show_compare.click(_compare_ui, [image, model_a, model_b, score], side_by_side, api_visibility="private"), [side_by_side])

    detector_outputs.webcam_panel(live_frame, [model, score], "Detect on your webcam with the model and score threshold chosen above.")
