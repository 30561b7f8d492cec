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
from torchvision.ops import box_iou

import shapesworld
from models.detection import RawDetections, select

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


def pck(
    true_boxes: np.ndarray, true_keypoints: np.ndarray, pred_boxes: np.ndarray, pred_keypoints: np.ndarray, alpha: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
    """Per visible true keypoint: found (bool) and its keypoint index, for one image.

    Each true person is matched to the unused prediction with the highest box IoU (at least 0.5;
    predictions come best-score first); an unmatched person's keypoints all count as missed. A
    keypoint is found when it lies within ``alpha`` x the true box's longer side of the truth.
    """
    found, which = [], []
    ious = box_iou(torch.from_numpy(true_boxes).float(), torch.from_numpy(pred_boxes).float()).numpy() if len(pred_boxes) else None
    used: set[int] = set()
    for t, (box, keypoints) in enumerate(zip(true_boxes, true_keypoints)):
        visible = np.flatnonzero(keypoints[:, 2] == shapesworld.vocab.VISIBLE)
        match = None
        if ious is not None:
            for p in np.argsort(-ious[t], kind="stable"):
                if ious[t, p] >= 0.5 and int(p) not in used:
                    match = int(p)
                    break
        if match is None:
            found.extend([False] * len(visible))
        else:
            used.add(match)
            limit = alpha * max(box[2] - box[0], box[3] - box[1])
            distance = np.linalg.norm(pred_keypoints[match, visible, :2] - keypoints[visible, :2], axis=1)
            found.extend((distance <= limit).tolist())
        which.extend(visible.tolist())
    return np.array(found, bool), np.array(which, int)


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
