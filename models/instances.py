"""Instance segmentation models: Mask R-CNN on both tiers, through the detectors' own wrapper.

A Mask R-CNN is a Faster R-CNN with one more RoI head that predicts a mask per box, so it runs
through ``models.detection.Detector`` unchanged: the raw candidates simply carry their masks.
"""

from __future__ import annotations

from torchvision.models import detection as tv_det

from .detection import local_spec, pretrained_spec
from .spec import ModelSpec

TASK = "instances"


def specs() -> list[ModelSpec]:
    W = tv_det
    return [
        pretrained_spec(
            TASK, "maskrcnn-resnet50-v2", "Mask R-CNN ResNet-50 FPN v2", W.MaskRCNN_ResNet50_FPN_V2_Weights.DEFAULT, W.maskrcnn_resnet50_fpn_v2,
            "two-stage + mask head", fast_on_cpu=True,
        ),
        local_spec(
            TASK, "maskrcnn-shapes", "Mask R-CNN (ShapesWorld)", "two-stage + mask head",
            {"ShapesWorld test mask mAP@0.5": "mask_map_50", "mask mAP@[.5:.95]": "mask_map", "box mAP@0.5": "map_50"},
        ),
    ]
