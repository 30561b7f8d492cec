"""Train and evaluate the local Mask R-CNN on ShapesWorld instances (five shapes and person).

    python -m models train maskrcnn-shapes
    python -m models evaluate maskrcnn-shapes --seed 2000000 --count 500 --json

The same loop as the detectors (``detection.fit``) with a mask per object as the extra target.
Metrics: COCO box and mask mAP from torchmetrics (pycocotools underneath).
"""

from __future__ import annotations

from typing import Callable

import torch
from PIL import Image
from torchmetrics.detection import MeanAveragePrecision

import shapesworld
from models.detection import RawDetections, select

from .detection import TEST_SEED, Recipe, box_targets, fit


def mask_targets(scene: shapesworld.Scene) -> dict[str, torch.Tensor]:
    return box_targets(scene) | {"masks": torch.from_numpy(scene.masks).to(torch.uint8)}


def evaluate(detector: Callable[[Image.Image], RawDetections], seed: int = TEST_SEED, count: int = 500, size: int = 128) -> dict:
    """COCO box and mask mAP on scenes ``seed..seed+count-1``; masks are the model's probabilities above 0.5."""
    metric = MeanAveragePrecision(iou_type=("bbox", "segm"), class_metrics=True)
    for s in range(seed, seed + count):
        scene = shapesworld.generate(s, size)
        found = select(detector(Image.fromarray(scene.image)), score_threshold=0.0, max_detections=100)
        metric.update(
            [
                {
                    "boxes": torch.from_numpy(found.boxes),
                    "scores": torch.from_numpy(found.scores),
                    "labels": torch.from_numpy(found.labels),
                    "masks": torch.from_numpy(found.masks >= 128),
                }
            ],
            [{"boxes": torch.from_numpy(scene.boxes), "labels": torch.from_numpy(scene.labels), "masks": torch.from_numpy(scene.masks)}],
        )
    result = metric.compute()
    classes = result["classes"].tolist()
    return {
        "mask_map_50": round(float(result["segm_map_50"]), 4),
        "mask_map": round(float(result["segm_map"]), 4),
        "map_50": round(float(result["bbox_map_50"]), 4),
        "map": round(float(result["bbox_map"]), 4),
        "mask_map_per_class": {shapesworld.CLASSES[c]: round(v, 4) for c, v in zip(classes, result["segm_map_per_class"].tolist())},
        "eval_seeds": f"{seed}..{seed + count - 1}",
        "eval_count": count,
    }


RECIPES = {
    # Scenes are drawn at 128 px but the network sees them at 192 (network image_size): masks are
    # cut from the stride-4 feature map, and at 128 px a 20 px square spans 5 cells of it, too few
    # for edges that hold at IoU 0.9. On a GPU sweep (50 validation scenes after 1000 steps) mask
    # mAP@[.5:.95] was 0.66 at 128 px, 0.68 with the mask loss doubled, 0.77 at 192, 0.75 at 256.
    # 900 steps: the whole command must fit 30 min on 2 CPU cores, and a step slows from 1.3 s to
    # 1.9 s as proposals sharpen; 1000 steps took 30.4 min there (mask mAP 0.760), 1200 up to 34 min.
    "maskrcnn-shapes": Recipe(
        "mask_rcnn", steps=900, targets=mask_targets, evaluate=evaluate, half_precision_file=True, network={"image_size": 192}
    )
}


def train(name: str, **kwargs) -> dict:
    return fit(name, RECIPES[name], **kwargs)
