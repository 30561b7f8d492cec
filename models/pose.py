"""Pose models: Keypoint R-CNN on both tiers, through the detectors' own wrapper.

A Keypoint R-CNN is a Faster R-CNN for one class (person) with one more RoI head that predicts
a heatmap per keypoint, so it runs through ``models.detection.Detector`` unchanged: the raw
candidates carry their keypoints, and the wrapper carries the keypoint names and skeleton
(COCO's 17 for the pretrained model, ShapesWorld's 14 from the local model's card).
"""

from __future__ import annotations

from torchvision.models import detection as tv_det

from .detection import local_spec, torchvision_spec
from .spec import ModelSpec

TASK = "pose"


def specs() -> list[ModelSpec]:
    W = tv_det
    return [
        torchvision_spec(
            TASK, "keypointrcnn-resnet50", "Keypoint R-CNN ResNet-50 FPN", W.KeypointRCNN_ResNet50_FPN_Weights.DEFAULT, W.keypointrcnn_resnet50_fpn,
            "two-stage + keypoint head", fast_on_cpu=True,
        ),
        local_spec(
            TASK, "keypointrcnn-shapes", "Keypoint R-CNN (ShapesWorld)", "two-stage + keypoint head",
            {"ShapesWorld test PCK@0.1": "pck_0.1", "person box AP@0.5": "map_50"},
        ),
    ]
