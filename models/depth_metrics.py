"""Depth metrics of Eigen, Puhrsch and Fergus (NIPS 2014; Eigen and Fergus, ICCV 2015), and scale-and-shift alignment.

With d the predicted and d* the true depth over a map's N valid pixels:

- absolute relative error ``abs_rel`` = (1/N) sum |d - d*| / d*;
- threshold accuracy ``delta1`` = the share of pixels with max(d / d*, d* / d) < 1.25.

Each map is scored on its own and the dataset figure is the mean over maps, as in the papers'
evaluation code. A relative model (Depth Anything, MiDaS-style DPT) predicts disparity up to an
unknown scale and shift, so before scoring it is aligned to the truth by least squares in disparity
space (Ranftl et al., MiDaS, TPAMI 2020): one image cannot tell a small near scene from a big far one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DELTA = 1.25
MAX_DEPTH = 100.0  # an aligned disparity at or below 1 / MAX_DEPTH is clipped here (farther than any scene)
DISPARITY = "relative inverse depth (disparity)"
DEPTH = "depth"


def abs_rel(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Mean of |d - d*| / d* over the map (truth > 0)."""
    d, t = _valid(predicted, truth)
    return float(np.mean(np.abs(d - t) / t))


def delta1(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Share of pixels whose predicted and true depth differ by less than a factor 1.25, either way."""
    d, t = _valid(predicted, truth)
    return float(np.mean(np.maximum(d / t, t / d) < DELTA))


def _valid(predicted: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if predicted.shape != truth.shape:
        raise ValueError(f"prediction {predicted.shape} and truth {truth.shape} differ in shape")
    keep = truth > 0
    return np.maximum(predicted[keep].astype(np.float64), 1e-6), truth[keep].astype(np.float64)


def fit_scale_shift(predicted: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """(s, t) minimising sum (s * predicted + t - target)^2: the closed-form least-squares line."""
    x, y = predicted.astype(np.float64).ravel(), target.astype(np.float64).ravel()
    design = np.stack([x, np.ones_like(x)], axis=1)
    (s, t), *_ = np.linalg.lstsq(design, y, rcond=None)
    return float(s), float(t)


def as_depth(values: np.ndarray, kind: str) -> np.ndarray:
    """A model's map read as depth: itself, or 1 / disparity with disparity clipped at 1 / MAX_DEPTH."""
    if kind == DEPTH:
        return np.clip(values, 1 / MAX_DEPTH, MAX_DEPTH).astype(np.float32)
    return (1.0 / np.maximum(values, 1.0 / MAX_DEPTH)).astype(np.float32)


def align(values: np.ndarray, kind: str, truth: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Depth after the least-squares scale and shift that best match ``truth``, in the model's own space, and (s, t).

    Disparity maps are fitted to 1 / truth (where a relative model's error is an affine one); depth
    maps to the truth itself.
    """
    target = truth if kind == DEPTH else 1.0 / truth
    s, t = fit_scale_shift(values, target)
    return as_depth(s * values + t, kind), s, t


@dataclass
class DepthScores:
    """One map against its truth, as the model gives it and after scale-and-shift alignment."""

    abs_rel: float
    delta1: float
    aligned_abs_rel: float
    aligned_delta1: float
    scale: float
    shift: float

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in self.__dict__.items()}


def score(values: np.ndarray, kind: str, truth: np.ndarray) -> DepthScores:
    """abs_rel and delta1 of a model's map, raw (read as depth) and aligned; same shapes required."""
    raw = as_depth(values, kind)
    aligned, s, t = align(values, kind, truth)
    return DepthScores(abs_rel(raw, truth), delta1(raw, truth), abs_rel(aligned, truth), delta1(aligned, truth), s, t)
