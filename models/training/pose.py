"""Train and evaluate the local Keypoint R-CNN on ShapesWorld stick figures (14 keypoints).

    python -m models train keypointrcnn-shapes
    python -m models evaluate keypointrcnn-shapes --seed 2000000 --count 500 --json

The same loop as the detectors (``detection.fit``) with one class (person) and keypoints as
the extra target; training scenes always hold one or two figures. Metrics: person box AP@0.5
from torchmetrics, and PCK@0.1 (``pck``): a visible keypoint counts as found when the
prediction lies within 0.1 of the person box's longer side.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from PIL import Image
from torchmetrics.detection import MeanAveragePrecision

import shapesworld
from models.detection import RawDetections, select
from models.pose import pck

from .detection import TEST_SEED, Recipe, fit

CLASSES = ("background", shapesworld.PERSON)


def keypoint_targets(scene: shapesworld.Scene) -> dict[str, torch.Tensor]:
    people = scene.people
    keypoints = np.stack([p.keypoints for p in people]) if people else np.zeros((0, len(shapesworld.KEYPOINTS), 3), np.float32)
    return {
        "boxes": torch.tensor([p.box for p in people], dtype=torch.float32).reshape(-1, 4),
        "labels": torch.ones(len(people), dtype=torch.int64),
        "keypoints": torch.from_numpy(keypoints),
    }


def evaluate(detector: Callable[[Image.Image], RawDetections], seed: int = TEST_SEED, count: int = 500, size: int = 128) -> dict:
    """Person box AP@0.5 (torchmetrics) and PCK@0.1 over visible keypoints, on scenes ``seed..seed+count-1``.

    PCK takes the detections a user sees at the default threshold (score above 0.5).
    """
    metric = MeanAveragePrecision(iou_type="bbox")
    found_all, which_all = [], []
    for s in range(seed, seed + count):
        scene = shapesworld.generate(s, size)
        target = keypoint_targets(scene)
        raw = detector(Image.fromarray(scene.image))
        candidates = select(raw, score_threshold=0.0, max_detections=100)
        metric.update(
            [{"boxes": torch.from_numpy(candidates.boxes), "scores": torch.from_numpy(candidates.scores), "labels": torch.from_numpy(candidates.labels)}],
            [{"boxes": target["boxes"], "labels": target["labels"]}],
        )
        shown = select(raw, score_threshold=0.5)
        found, which = pck(target["boxes"].numpy(), target["keypoints"].numpy(), shown.boxes, shown.keypoints)
        found_all.append(found)
        which_all.append(which)
    found, which = np.concatenate(found_all), np.concatenate(which_all)
    result = metric.compute()
    return {
        "pck_0.1": round(float(found.mean()), 4) if len(found) else 0.0,
        "map_50": round(float(result["map_50"]), 4),
        "map": round(float(result["map"]), 4),
        "pck_per_keypoint": {name: round(float(found[which == k].mean()), 4) for k, name in enumerate(shapesworld.KEYPOINTS) if (which == k).any()},
        "visible_keypoints": int(len(found)),
        "eval_seeds": f"{seed}..{seed + count - 1}",
        "eval_count": count,
    }


RECIPES = {
    "keypointrcnn-shapes": Recipe(
        "keypoint_rcnn", steps=1800, targets=keypoint_targets, evaluate=evaluate, classes=CLASSES,
        num_keypoints=len(shapesworld.KEYPOINTS), people=(1, 2), half_precision_file=True,
    )
}


def train(name: str, **kwargs) -> dict:
    return fit(name, RECIPES[name], **kwargs)
