"""Evaluation metrics shared by the trainers and `python -m models evaluate`."""

from __future__ import annotations

import numpy as np


class ConfusionMatrix:
    """Accumulates a per-pixel confusion matrix over many images; IoU comes from the totals.

    Dataset-level IoU (sum of intersections over sum of unions) is the standard for semantic
    segmentation: a class absent from one image does not count as a perfect or a failed score.
    """

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(self, target: np.ndarray, prediction: np.ndarray) -> None:
        index = target.astype(np.int64).ravel() * self.num_classes + prediction.astype(np.int64).ravel()
        self.matrix += np.bincount(index, minlength=self.num_classes**2).reshape(self.num_classes, -1)

    def iou(self) -> np.ndarray:
        """Per-class IoU; NaN for a class that never appears in target or prediction."""
        tp = np.diag(self.matrix).astype(np.float64)
        union = self.matrix.sum(0) + self.matrix.sum(1) - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            return tp / union

    def mean_iou(self) -> float:
        return float(np.nanmean(self.iou()))

    def pixel_accuracy(self) -> float:
        return float(np.diag(self.matrix).sum() / max(self.matrix.sum(), 1))
