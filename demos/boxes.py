"""Intersection over union and non-maximum suppression, step by step, as in the detection lecture.

The math is small and pure (numpy in, dataclasses out) and is checked against torchvision's
own operators (``box_iou``, ``nms``) in the tests, so the step-by-step view shows exactly what
a detector's post-processing does. ``build_iou_panel`` is the IoU teaching panel; the NMS view
is wired by the detection tab, which owns the candidates it steps through.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import gradio as gr
import numpy as np
from PIL import Image

from . import drawing, errors, picker, wiring

KEPT, SUPPRESSED, WAITING = (40, 170, 60), (220, 40, 40), (150, 150, 150)
INTERSECTION = (245, 140, 20)


@dataclass(frozen=True)
class IoUParts:
    intersection: float
    union: float
    iou: float
    overlap: tuple[float, float, float, float] | None  # the intersection box, if the boxes overlap


def iou_parts(a: np.ndarray, b: np.ndarray) -> IoUParts:
    """Intersection, union and IoU of two (x0, y0, x1, y1) boxes."""
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    intersection = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = _area(a) + _area(b) - intersection
    overlap = (float(x0), float(y0), float(x1), float(y1)) if intersection > 0 else None
    return IoUParts(float(intersection), float(union), float(intersection / union) if union > 0 else 0.0, overlap)


def _area(box: np.ndarray) -> float:
    return float(max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1]))


@dataclass(frozen=True)
class NmsStep:
    """One candidate in score order: kept, or suppressed by an earlier kept box with IoU above the threshold."""

    rank: int  # 1 = highest score
    index: int  # position in the candidates given
    score: float
    kept: bool
    suppressed_by: int | None = None  # rank of the kept box that suppressed it
    iou: float | None = None  # IoU with that box (for kept boxes: the highest IoU with any earlier kept box)


def nms_walkthrough(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list[NmsStep]:
    """Greedy NMS as torchvision does it: best score first; a box survives unless it overlaps a kept box by more than the threshold."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    kept_ranks: list[int] = []
    steps: list[NmsStep] = []
    for rank, index in enumerate(order, start=1):
        ious = [(r, iou_parts(boxes[order[r - 1]], boxes[index]).iou) for r in kept_ranks]
        over = [(r, v) for r, v in ious if v > iou_threshold]
        if over:
            by, iou = over[0]
            steps.append(NmsStep(rank, int(index), float(scores[index]), False, by, iou))
        else:
            steps.append(NmsStep(rank, int(index), float(scores[index]), True, None, max((v for _, v in ious), default=None)))
            kept_ranks.append(rank)
    return steps


def _upto(steps: list[NmsStep], step: int | None) -> int:
    """How many steps are done: ``step`` clamped to 1..len(steps); None means all of them."""
    return len(steps) if step is None else min(max(int(step), 1), len(steps))


def nms_rows(steps: list[NmsStep], step: int | None = None) -> list[list]:
    """The walkthrough up to ``step`` (all by default) as table rows: rank, score, verdict, and why."""
    rows = []
    for s in steps[: _upto(steps, step)]:
        if s.kept:
            why = "no kept box overlaps it enough" if s.iou is None else f"largest IoU with a kept box: {s.iou:.2f}"
            rows.append([s.rank, round(s.score, 3), "kept", why])
        else:
            rows.append([s.rank, round(s.score, 3), "suppressed", f"by #{s.suppressed_by}, IoU {s.iou:.2f}"])
    return rows


def nms_step_note(steps: list[NmsStep], step: int, iou_threshold: float) -> str:
    """What step ``step`` decides, in one sentence, and the count so far."""
    done = steps[: _upto(steps, step)]
    current = done[-1]
    kept = sum(s.kept for s in done)
    if current.kept:
        why = "no kept box overlaps it at all" if current.iou is None else f"its largest IoU with a kept box is {current.iou:.2f} ≤ {iou_threshold:.2f}"
        verdict = f"**kept**: {why}"
    else:
        verdict = f"**suppressed**: IoU {current.iou:.2f} with kept #{current.suppressed_by} exceeds {iou_threshold:.2f}"
    return (
        f"Step {len(done)} of {len(steps)}: candidate #{current.rank} (score {current.score:.2f}) is {verdict}. "
        f"So far {kept} kept, {len(done) - kept} suppressed, {len(steps) - len(done)} waiting."
    )


def nms_figure(image: Image.Image, boxes: np.ndarray, steps: list[NmsStep], step: int | None = None) -> Image.Image:
    """The candidates after ``step`` steps (all by default): kept boxes solid, numbered, and drawn on top of the rest.

    Suppressed boxes are faint red, the ones not yet reached faint grey; the box this step decides
    is drawn solid in its verdict's colour, with its rank, so the step reads at a glance. Drawing
    order is back to front, and kept boxes come last.
    """
    upto = _upto(steps, step)
    done, waiting = steps[:upto], steps[upto:]
    current = done[-1]
    layers = (
        [(s, WAITING, True, "") for s in waiting]
        + [(s, SUPPRESSED, True, "") for s in done[:-1] if not s.kept]
        + ([] if current.kept else [(current, SUPPRESSED, False, f"#{current.rank} suppressed")])
        + [(s, KEPT, False, f"#{s.rank} {s.score:.2f}") for s in done if s.kept]
    )
    return drawing.draw_boxes(
        image,
        np.array([boxes[s.index] for s, *_ in layers]).reshape(-1, 4),
        [caption for *_, caption in layers],
        [colour for _, colour, *_ in layers],
        faint=[faint for _, _, faint, _ in layers],
    )


# ---------------------------------------------------------------- the IoU panel

_NUMBER = r"-?\d+(?:\.\d+)?"


def parse_box(text: str, name: str = "box") -> np.ndarray:
    """``"x0 y0 x1 y1"`` (spaces or commas) -> a float array; a clear ValueError otherwise."""
    values = re.findall(_NUMBER, text or "")
    if len(values) != 4 or re.sub(rf"{_NUMBER}|[\s,;()\[\]]", "", text or ""):
        raise ValueError(f"{name}: type four numbers, x0 y0 x1 y1 (e.g. 10 20 60 80)")
    box = np.array([float(v) for v in values])
    if box[2] <= box[0] or box[3] <= box[1]:
        raise ValueError(f"{name}: x1 must be greater than x0 and y1 greater than y0")
    if np.abs(box).max() > 10_000:
        raise ValueError(f"{name}: coordinates up to 10000 pixels, please")
    return box


def iou_figure(a: np.ndarray, b: np.ndarray, parts: IoUParts) -> Image.Image:
    """Both boxes on a blank canvas, the intersection filled."""
    low = np.minimum(a[:2], b[:2]) - 10
    high = np.maximum(a[2:], b[2:]) + 10
    size = (int(np.ceil(high[0] - low[0])), int(np.ceil(high[1] - low[1])))
    offset = np.concatenate([low, low])
    canvas = Image.new("RGB", size, (250, 250, 250))
    boxes = [a - offset, b - offset]
    if parts.overlap:
        boxes.append(np.array(parts.overlap) - offset)
    return drawing.draw_boxes(
        canvas, np.array(boxes), ["A", "B", ""][: len(boxes)], [(40, 80, 220), (140, 50, 180), INTERSECTION][: len(boxes)], fills=[0, 0, 0.55]
    )


def explain_iou(box_a: str, box_b: str) -> tuple[Image.Image, str]:
    a, b = parse_box(box_a, "Box A"), parse_box(box_b, "Box B")
    parts = iou_parts(a, b)
    text = (
        f"area(A) = {_area(a):g}, area(B) = {_area(b):g}  \n"
        f"intersection = **{parts.intersection:g}** (orange) · union = area(A) + area(B) − intersection = **{parts.union:g}**  \n"
        f"**IoU = {parts.intersection:g} / {parts.union:g} = {parts.iou:.3f}**. "
        + picker.no_autolink(
            "A detection counts as correct at mAP@0.5 when its IoU with a true box is at least 0.5; mAP@[0.5:0.95] "
            "averages over thresholds 0.5, 0.55, …, 0.95, so it rewards tight boxes."
        )
    )
    return iou_figure(a, b, parts), text


def build_iou_panel() -> None:
    """Type two boxes; see intersection, union and IoU."""
    with gr.Accordion("IoU: intersection over union", open=False):
        with gr.Row():
            box_a = gr.Textbox(value="20 20 100 90", label="Box A (x0 y0 x1 y1)")
            box_b = gr.Textbox(value="60 40 140 120", label="Box B (x0 y0 x1 y1)")
            show = gr.Button("Compute IoU")
        with gr.Row():
            figure = gr.Image(label="A, B and their intersection", type="pil", format="png", interactive=False, height=260)
            text = gr.Markdown()
        explain = errors.user_errors(explain_iou)
        computed = gr.on([show.click, box_a.submit, box_b.submit], explain, [box_a, box_b], [figure, text], api_visibility="private")
        wiring.clear_on_failure(computed, [figure, text])  # no stale "IoU = ..." beside the error
