"""What the detection, instance and pose tabs share: cached raw predictions, thresholds, COCO export, live frames.

All three run a torchvision-style detector once per (model, image) and keep its raw candidates
(boxes, plus masks or keypoints); every control then re-filters those candidates with
``models.detection.select``. The COCO results file carries whatever the model predicts: boxes,
RLE masks (pycocotools' encoder) and keypoints.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import gradio as gr
import numpy as np
from PIL import Image
from pycocotools import mask as coco_mask

import models
from models.detection import Detections, RawDetections, select

from . import common, errors

DETECTOR_TASKS = ("detection", "instances", "pose")  # the tasks whose models run through models.detection.Detector
PLACEHOLDERS = {"__background__", "background", "no person", "N/A"}  # category slots that are not classes (COCO's unused ids)


@dataclass
class Prediction:
    raw: RawDetections
    seconds: float  # how long the network took (the first time; later calls re-use it)


def predict(image: Image.Image, model_name: str, progress: gr.Progress | None = None) -> Prediction:
    """Raw candidates of ``image``; cached per (model, image), so thresholds and views never re-run the network."""
    spec = models.spec(model_name)
    if spec.task not in DETECTOR_TASKS:
        raise ValueError(f"{spec.title} is a {spec.task} model; pick a detection, instance or pose model.")
    model = common.load_model(model_name, progress)

    def run() -> Prediction:
        start = time.perf_counter()
        raw = model(image)
        return Prediction(raw, time.perf_counter() - start)

    return models.cache().derived(("detect", model_name, common.image_key(image)), run)


def check_thresholds(score_threshold: float, max_detections: float, nms_iou: float = 0.5) -> None:
    if not 0 <= score_threshold <= 1:
        raise ValueError("The score threshold is a probability: between 0 and 1.")
    if not 0 < nms_iou <= 1:
        raise ValueError("The NMS IoU threshold lies in (0, 1]: 1 keeps every box.")
    if not 1 <= max_detections <= 1000:
        raise ValueError("Maximum detections: between 1 and 1000.")


def class_ids(categories: list[str], names: list[str] | None) -> set[int] | None:
    """Category indices for the chosen class names (None: every class); an unknown name is a clear error."""
    if not names:
        return None
    unknown = [n for n in names if n not in categories or n in PLACEHOLDERS]
    if unknown:
        known = ", ".join(c for c in categories if c not in PLACEHOLDERS)
        raise ValueError(f"This model does not know {', '.join(map(repr, unknown))}. It knows: {known}")
    return {i for i, c in enumerate(categories) if c in names}


def coco_results(detections: Detections, image_size: tuple[int, int], file_name: str = "image.png", mask_threshold: float = 0.5) -> dict:
    """COCO's format: the image, the category list, and one annotation per detection, with its score.

    ``bbox`` is x, y, width, height; masks (Mask R-CNN) are RLE-encoded by pycocotools; keypoints
    (Keypoint R-CNN) are x, y, v triplets with v = 2. ``annotations`` is also a valid results list
    for pycocotools' ``loadRes``.
    """
    width, height = image_size
    annotations = []
    for i in range(len(detections)):
        x0, y0, x1, y1 = (float(v) for v in detections.boxes[i])
        annotation = {
            "id": i + 1,
            "image_id": 1,
            "category_id": int(detections.labels[i]),
            "bbox": [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
            "area": round((x1 - x0) * (y1 - y0), 2),
            "score": round(float(detections.scores[i]), 5),
            "iscrowd": 0,
        }
        if detections.masks is not None:
            binary = np.asfortranarray(detections.masks[i] >= mask_threshold * 255, dtype=np.uint8)
            rle = coco_mask.encode(binary)
            annotation["segmentation"] = {"size": list(rle["size"]), "counts": rle["counts"].decode("ascii")}
            annotation["area"] = float(coco_mask.area(rle))
        if detections.keypoints is not None:
            points = detections.keypoints[i]
            annotation["keypoints"] = [round(float(v), 2) for x, y in points for v in (x, y, 2)]
            annotation["num_keypoints"] = len(points)
        annotations.append(annotation)
    categories = [{"id": i, "name": c} for i, c in enumerate(detections.categories) if c not in PLACEHOLDERS]
    return {"images": [{"id": 1, "file_name": file_name, "width": width, "height": height}], "categories": categories, "annotations": annotations}


def live_frame(
    frame: np.ndarray | None, model_name: str, score_threshold: float, render: Callable[[Image.Image, Detections], Image.Image]
) -> Image.Image | None:
    """One webcam frame: detect without caching (every frame is new), draw with the tab's own ``render``."""
    if frame is None:
        return None
    image = common.read_image(frame)
    raw = common.load_model(model_name)(image)
    return render(image, select(raw, score_threshold))


@dataclass
class ResultPanel:
    """The right-hand column every detector tab shows: the drawing, a summary, a table, files, the raw records.

    ``truth`` and ``truth_score`` show a ShapesWorld input's ground truth and the score on it
    (``scene_truth.show_beside``); they are not outputs of the tab's endpoint.
    """

    drawn: gr.Image
    summary: gr.Markdown
    table: gr.Dataframe
    records: gr.JSON
    files: list[gr.File]
    truth: gr.Image
    truth_score: gr.Markdown

    @property
    def outputs(self) -> list:
        """In the order the tabs' UI functions return them."""
        return [self.drawn, self.summary, self.table, self.records, *self.files]


def result_panel(image_label: str, table_label: str, headers: list[str], file_labels: list[str], records_label: str) -> ResultPanel:
    with gr.Row():
        drawn = gr.Image(label=image_label, type="pil", format="png", interactive=False, height=320, elem_classes="dvl-image")
        truth = gr.Image(label="Ground truth", type="pil", format="png", interactive=False, height=320, elem_classes="dvl-image", visible=False)
    summary = gr.Markdown(label="Summary")
    truth_score = gr.Markdown(label="Score on this scene")
    table = gr.Dataframe(headers=headers, label=table_label, interactive=False, max_height=260)
    with gr.Row():
        files = [gr.File(label=label) for label in file_labels]
    with gr.Accordion("Numbers", open=False):
        records = gr.JSON(label=records_label)
    return ResultPanel(drawn, summary, table, records, files, truth, truth_score)


def webcam_panel(fn: Callable, inputs: list, note: str) -> None:
    """A live mode: webcam frames a few times a second; newer frames replace waiting ones (no backlog)."""
    with gr.Accordion("Live: your webcam", open=False):
        gr.Markdown(
            note + " Frames are sent a few times a second; while the model is busy, the newest frame replaces any "
            "waiting one, so it runs at the rate the model sustains and never falls behind."
        )
        with gr.Row():
            webcam = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Webcam", height=320)
            live = gr.Image(label="Live result", type="pil", interactive=False, height=320)
        webcam.stream(
            errors.user_errors(fn), [webcam, *inputs], live, stream_every=0.2, time_limit=120, trigger_mode="always_last",
            concurrency_limit=2, api_visibility="private",
        )
