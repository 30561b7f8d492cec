"""What the benchmark knows about each task, in one table; every other module is task-agnostic.

A task's row says which demo module serves it (its ``TASK`` and ``ENDPOINT`` are the app's own,
so a renamed endpoint cannot drift from the benchmark), which models ``--quick`` runs, the
endpoint's arguments after the image, which image a model is measured on, how to read the size
the network really sees, and how to re-render a cached prediction with other controls (what a
slider move costs). Another task of this kind (an image in, a prediction the tab re-renders
with other controls) is one more ``Task`` in ``TASKS`` (and its limits in bench/targets.py); a task
measured its own way is a module of its own, listed in ``bench.__main__.SECTIONS`` under its name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import torch
from PIL import Image
from torch import nn

import models
from demos import detection, instances, pose, segmentation
from models.detection import DetrDetector

from .images import BenchImage, image_for


@dataclass(frozen=True, eq=False)  # compared by identity: its controls hold lists and dicts
class Task:
    demo: ModuleType  # the tab's module: TASK, ENDPOINT and the pure function that ``rerender`` calls
    quick: tuple[str, ...]  # models that ``--quick`` runs
    call: str  # how the model object is called, as the report names it
    call_covers: str  # what that call includes, for the report's notes
    response_covers: str  # what the endpoint does after predicting, for the report's notes
    request_controls: tuple  # the endpoint's arguments after the image and the model name, in every request
    network_size: Callable[[nn.Module, Image.Image], tuple[int, int]]  # (width, height) of the network's input tensor
    rerender: Callable[..., object]  # the tab's pure function: (image, model name, **controls)
    control: str  # what a re-render changes, for the report
    controls: tuple[dict, ...]  # the re-renders' keyword arguments, in turn: a user moving the sliders
    image: Callable[[str], BenchImage] = image_for  # the native-size input of a model

    @property
    def name(self) -> str:
        return self.demo.TASK

    @property
    def endpoint(self) -> str:
        return self.demo.ENDPOINT

    @property
    def rerender_name(self) -> str:
        return f"{self.rerender.__module__}.{self.rerender.__name__}"

    def model_names(self) -> list[str]:
        """The task's models in registry order."""
        return [s.name for s in models.for_task(self.name)]

    def request(self, model_name: str) -> list:
        """The endpoint's arguments after the image."""
        return [model_name, *self.request_controls]

    def rerender_call(self, image: Image.Image, model_name: str, i: int) -> object:
        """Re-render number ``i``: the tab's function on a prediction the app has cached, with the next controls."""
        return self.rerender(image, model_name, **self.controls[i % len(self.controls)])


def _width_height(tensor: torch.Tensor) -> tuple[int, int]:
    height, width = tensor.shape[-2:]
    return int(width), int(height)


@torch.inference_mode()
def _detector_input_size(detector: nn.Module, image: Image.Image) -> tuple[int, int]:
    """After the detector's own resizing (and torchvision's padding to a multiple of 32), not just its transform."""
    if isinstance(detector, DetrDetector):
        return _width_height(detector.processor(images=image, return_tensors="pt")["pixel_values"])
    batch, _ = detector.network.transform([detector.preprocess(image)])
    return _width_height(batch.tensors)


SEGMENTATION = Task(
    demo=segmentation,
    quick=("unet-shapes", "lraspp-mobilenet", "deeplabv3-mobilenet"),
    call="segmenter(pil_image)",
    call_covers="preprocess, network, upsample logits to the image size, argmax",
    response_covers="drawing the overlay, legend and mask PNG",
    request_controls=(0.6,),  # overlay opacity
    network_size=lambda segmenter, image: _width_height(segmenter.preprocess(image)[0]),  # preprocess: (batch, unpadded size)
    rerender=segmentation.segment,
    control="opacity",
    controls=tuple({"opacity": opacity} for opacity in (0.3, 0.5, 0.7, 0.9)),
)

DETECTION = Task(
    demo=detection,
    quick=("fasterrcnn-shapes", "fcos-shapes", "fasterrcnn-mobilenet-320"),
    call="detector(pil_image)",
    call_covers="preprocess, the network with its own resize, box decoding, every candidate above the score floor (before NMS)",
    response_covers="score threshold, NMS and top-k on the candidates, drawing the boxes, the table, records and COCO JSON file",
    request_controls=(0.5, 0.5, [], 100),  # score threshold, NMS IoU, classes (empty: all), max detections
    network_size=_detector_input_size,
    rerender=detection.detect,
    control="thresholds",
    controls=tuple(
        {"score_threshold": score, "nms_iou": iou} for score, iou in ((0.3, 0.5), (0.5, 0.4), (0.7, 0.6), (0.4, 0.3), (0.6, 0.7))
    ),
)

INSTANCES = Task(
    demo=instances,
    quick=("maskrcnn-shapes",),
    call="detector(pil_image)",
    call_covers="as detection, plus a mask pasted at the image's size per candidate (at most 100)",
    response_covers="thresholds, masks drawn, the instance-id PNG, the table, records and COCO JSON with RLE masks",
    request_controls=(0.5, 0.5, True, True, 100),  # score, mask threshold, masks, boxes, max instances
    network_size=_detector_input_size,
    rerender=instances.segment_instances,
    control="thresholds",
    controls=tuple({"score_threshold": score, "mask_threshold": mask} for score, mask in ((0.3, 0.5), (0.5, 0.4), (0.7, 0.6))),
)

POSE = Task(
    demo=pose,
    quick=("keypointrcnn-shapes",),
    call="detector(pil_image)",
    call_covers="as detection, plus keypoints decoded from a heatmap per candidate (at most 100)",
    response_covers="thresholds, skeletons drawn, the keypoint table, records and COCO keypoint JSON",
    request_controls=(0.5, 2.0, 20),  # person score, joint score, max people
    network_size=_detector_input_size,
    rerender=pose.estimate_pose,
    control="thresholds",
    controls=tuple({"score_threshold": score, "keypoint_threshold": joint} for score, joint in ((0.3, 2.0), (0.5, 4.0), (0.7, 1.0))),
)

TASKS: dict[str, Task] = {task.name: task for task in (SEGMENTATION, DETECTION, INSTANCES, POSE)}


def of(model_name: str) -> Task:
    """The task a model belongs to."""
    return TASKS[models.spec(model_name).task]
