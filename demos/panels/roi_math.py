"""RoIPool and RoIAlign by hand: the arithmetic of the RoIAlign-versus-RoIPool panel, as pure functions.

A two-stage detector crops a fixed-size (7x7) feature patch for every box. Fast R-CNN's
*RoIPool* rounds the box to whole feature cells and splits it into bins whose edges are
rounded again; Mask R-CNN's *RoIAlign* keeps the box's exact coordinates, splits it into equal
bins and reads each bin at a few regular points by bilinear interpolation. The functions here
(numpy in, numpy out) follow torchvision's kernels step by step (float32, the same rounding, the
same border rules), so the tests can prove them equal to ``torchvision.ops.roi_pool`` /
``roi_align`` and to the network's own ``MultiScaleRoIAlign``; ``analyse`` applies them to one
box and the feature levels a real network computed (``models.internals.pooler_inputs``).

Coordinates. A box ``(x0, y0, x1, y1)`` in the network's input pixels times a level's
``spatial_scale`` (1 / stride) gives *feature coordinates*. Both torchvision operators (with
``aligned=False``, as ``MultiScaleRoIAlign`` uses them) treat feature cell ``i`` as sitting *at*
coordinate ``i``: a sample at ``y = 2.0`` reads exactly row 2, one at ``y = 2.3`` mixes rows 2 and 3.
The views draw cells in that convention (cell ``i`` spans ``i - 0.5 .. i + 0.5``), so what is
drawn is exactly what the operators compute. (A cell really summarises the image around
``(i + 0.5) * stride``; ``aligned=True`` shifts boxes by half a cell to account for it.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torchvision.ops import roi_align, roi_pool

if TYPE_CHECKING:
    from models.internals import PoolerInputs

__all__ = [
    "RoiAnalysis",
    "analyse",
    "bilinear_sample",
    "feature_scales",
    "fpn_level",
    "pool_level",
    "roi_align_points",
    "roi_align_reference",
    "roi_pool_bins",
    "roi_pool_reference",
    "roi_pool_region",
]


# ---------------------------------------------------------------- which level, which scale


def pool_level(box, strides, canonical_scale: int = 224, canonical_level: int = 4) -> int:
    """Which of the pooler's FPN levels a box is pooled from (Eqn. 1 of the FPN paper).

    ``k = floor(k0 + log2(sqrt(w * h) / 224))`` with ``k0 = canonical_level``, clamped to the
    pooled levels ``log2(strides[0]) .. log2(strides[-1])`` (level ``k`` has stride ``2**k``):
    a 224x224 box goes to P4 (stride 16), one half that size to P3, and so on. ``box`` is
    (x0, y0, x1, y1) in the network's input pixels; ``strides`` are those of the pooled levels,
    finest first. Returns an index into ``strides``. As in torchvision's ``LevelMapper`` the
    arithmetic is float32 with a 1e-6 nudge before the floor, and a pooler with one level
    always uses it.
    """
    strides = [int(s) for s in strides]
    if len(strides) == 1:
        return 0
    k = fpn_level(box, canonical_scale, canonical_level)
    k_min, k_max = int(round(math.log2(strides[0]))), int(round(math.log2(strides[-1])))
    return int(np.clip(k, k_min, k_max)) - k_min


def fpn_level(box, canonical_scale: int = 224, canonical_level: int = 4) -> int:
    """The FPN paper's level ``k`` for a box before clamping (``pool_level`` clamps it to the pooled levels)."""
    x0, y0, x1, y1 = np.asarray(box, dtype=np.float32)
    size = np.sqrt((x1 - x0) * (y1 - y0), dtype=np.float32)
    with np.errstate(divide="ignore"):  # an empty box: log2(0) = -inf, clamped to the finest level
        k = np.floor(np.float32(canonical_level) + np.log2(size / np.float32(canonical_scale)) + np.float32(1e-6))
    return int(max(k, -64))


def feature_scales(feature_sizes, image_size) -> list[float]:
    """The ``spatial_scale`` (1 / stride) of each feature map, as ``MultiScaleRoIAlign`` infers it.

    ``feature_sizes`` are (height, width) of each level, ``image_size`` the (height, width) of the
    network input before batch padding. The ratio of heights is rounded to a power of two:
    padding makes feature maps slightly larger than ``image / stride``.
    """
    return [2.0 ** round(math.log2(float(h) / float(image_size[0]))) for h, _ in feature_sizes]


# ---------------------------------------------------------------- RoIPool


def _c_round(v: np.ndarray) -> np.ndarray:
    """C's ``round``: halves away from zero (numpy's ``round`` sends halves to even)."""
    return np.sign(v) * np.floor(np.abs(v) + np.float32(0.5))


def roi_pool_region(box, spatial_scale: float) -> tuple[int, int, int, int]:
    """The whole feature cells RoIPool reads for ``box``: (col_start, row_start, col_end, row_end), ends inclusive.

    Each box edge times the scale is rounded to the nearest cell; a box thinner than a cell
    still gets one.
    """
    scaled = np.asarray(box, dtype=np.float32) * np.float32(spatial_scale)
    x0, y0, x1, y1 = (int(v) for v in _c_round(scaled))
    return x0, y0, max(x1, x0), max(y1, y0)


def roi_pool_bins(box, spatial_scale: float, output_size=7, feature_size: tuple[int, int] | None = None) -> np.ndarray:
    """RoIPool's bins as integer cell ranges: an (out_h, out_w, 4) array of (row_start, row_end, col_start, col_end).

    Ends are exclusive. The region of ``roi_pool_region`` (``n`` cells a side) is cut into
    ``out`` bins of ``n / out`` cells, and bin ``p`` takes cells ``floor(p * n / out)`` up to
    ``ceil((p + 1) * n / out)``: where ``n / out`` is not whole, neighbouring bins share a row or
    column of cells (and when ``n < out`` several bins read the same cells). With
    ``feature_size`` = (height, width) the ranges are clipped to the map as torchvision does; a bin
    left empty outputs 0.
    """
    out_h, out_w = (output_size, output_size) if isinstance(output_size, int) else output_size
    x0, y0, x1, y1 = roi_pool_region(box, spatial_scale)

    def ranges(start: int, end: int, count: int, limit: int | None) -> np.ndarray:
        size = np.float32(end - start + 1) / np.float32(count)
        p = np.arange(count, dtype=np.float32)
        lo = np.floor(p * size).astype(np.int64) + start
        hi = np.ceil((p + np.float32(1)) * size).astype(np.int64) + start
        if limit is not None:
            lo, hi = np.clip(lo, 0, limit), np.clip(hi, 0, limit)
        return np.stack([lo, hi], axis=1)

    height, width = feature_size if feature_size is not None else (None, None)
    rows = ranges(y0, y1, out_h, height)
    cols = ranges(x0, x1, out_w, width)
    bins = np.empty((out_h, out_w, 4), dtype=np.int64)
    bins[..., :2] = rows[:, None, :]
    bins[..., 2:] = cols[None, :, :]
    return bins


def roi_pool_reference(features, bins: np.ndarray) -> np.ndarray:
    """Max over each bin of a (C, H, W) feature map: (C, out_h, out_w); an empty bin gives 0, as in torchvision."""
    f = np.asarray(features)
    out = np.zeros((f.shape[0], *bins.shape[:2]), dtype=f.dtype)
    for i in range(bins.shape[0]):
        for j in range(bins.shape[1]):
            r0, r1, c0, c1 = bins[i, j]
            if r1 > r0 and c1 > c0:
                out[:, i, j] = f[:, r0:r1, c0:c1].max(axis=(1, 2))
    return out


# ---------------------------------------------------------------- RoIAlign


def roi_align_points(box, spatial_scale: float, output_size=7, sampling_ratio: int = 2, aligned: bool = False) -> np.ndarray:
    """Where RoIAlign samples the feature map: (out_h, out_w, gh, gw, 2) points as (x, y) feature coordinates.

    The box times the scale (minus half a cell if ``aligned``) is cut into equal bins, each
    sampled on a regular ``gh`` x ``gw`` grid at the centres of its sub-cells: ``gh = gw =
    sampling_ratio``, or ``ceil(bin size)`` per axis when ``sampling_ratio <= 0`` (adaptive). Without
    ``aligned`` a box smaller than one cell is widened to one cell. float32 arithmetic in
    torchvision's order, so the points are bit-for-bit the kernel's.
    """
    out_h, out_w = (output_size, output_size) if isinstance(output_size, int) else output_size
    f32 = np.float32
    offset = f32(0.5) if aligned else f32(0.0)
    x0, y0, x1, y1 = np.asarray(box, dtype=f32) * f32(spatial_scale) - offset
    roi_w, roi_h = x1 - x0, y1 - y0
    if not aligned:
        roi_w, roi_h = max(roi_w, f32(1)), max(roi_h, f32(1))
    bin_w, bin_h = roi_w / f32(out_w), roi_h / f32(out_h)
    grid_h = sampling_ratio if sampling_ratio > 0 else int(np.ceil(roi_h / f32(out_h)))
    grid_w = sampling_ratio if sampling_ratio > 0 else int(np.ceil(roi_w / f32(out_w)))

    def axis(start, bin_size, count, grid):
        p = np.arange(count, dtype=f32)[:, None]
        k = np.arange(grid, dtype=f32)[None, :] + f32(0.5)
        return (start + p * bin_size) + k * bin_size / f32(grid)  # (count, grid)

    ys, xs = axis(y0, bin_h, out_h, grid_h), axis(x0, bin_w, out_w, grid_w)
    points = np.empty((out_h, out_w, grid_h, grid_w, 2), dtype=f32)
    points[..., 0] = xs[None, :, None, :]
    points[..., 1] = ys[:, None, :, None]
    return points


def bilinear_sample(features, points) -> np.ndarray:
    """Bilinear interpolation of a (C, H, W) map at (..., 2) points (x, y), with RoIAlign's border rules.

    Cell (i, j) sits at (x=j, y=i). A point more than one cell outside the map reads 0; one in
    the last cell's margin is clamped to the edge. Otherwise the value mixes the four nearest
    cells, each weighted by the area of the opposite sub-rectangle. Returns (C, ...).
    """
    f = torch.as_tensor(np.asarray(features), dtype=torch.float32)
    _, height, width = f.shape
    p = torch.as_tensor(np.asarray(points, dtype=np.float32)).reshape(-1, 2)
    x, y = p[:, 0].clone(), p[:, 1].clone()
    outside = (y < -1.0) | (y > height) | (x < -1.0) | (x > width)
    x, y = x.clamp(min=0), y.clamp(min=0)
    y_low, x_low = y.floor().long().clamp(max=height - 1), x.floor().long().clamp(max=width - 1)
    y = torch.where(y_low >= height - 1, y_low.float(), y)
    x = torch.where(x_low >= width - 1, x_low.float(), x)
    y_high, x_high = (y_low + 1).clamp(max=height - 1), (x_low + 1).clamp(max=width - 1)
    ly, lx = y - y_low, x - x_low
    hy, hx = 1 - ly, 1 - lx
    value = (
        hy * hx * f[:, y_low, x_low]
        + hy * lx * f[:, y_low, x_high]
        + ly * hx * f[:, y_high, x_low]
        + ly * lx * f[:, y_high, x_high]
    )
    value = torch.where(outside, torch.zeros_like(value), value)
    return value.reshape(f.shape[0], *np.shape(points)[:-1]).numpy()


def roi_align_reference(features, points: np.ndarray) -> np.ndarray:
    """RoIAlign by hand: the mean of the bilinear samples of each bin, (C, out_h, out_w)."""
    return bilinear_sample(features, points).mean(axis=(-2, -1))


# ---------------------------------------------------------------- one box through a real network's levels


@dataclass
class RoiAnalysis:
    """One box pooled from a two-stage detector's features, with everything the views draw."""

    level_name: str  # the FPN level's key in the backbone's output, e.g. "0"
    level_names: list[str]  # the levels the pooler pools from, finest first
    strides: list[int]
    stride: int
    spatial_scale: float
    canonical: tuple[int, int]  # (canonical_scale, canonical_level) of the pooler's LevelMapper
    input_size: tuple[int, int]  # (height, width) of the network input (after resizing)
    image_size: tuple[int, int]  # (width, height) of the image the box came from
    box_input: np.ndarray  # the box in network-input pixels
    box_cells: np.ndarray  # the box in feature coordinates of the level
    feature_mean: np.ndarray  # (H, W) channel mean of the level
    output_size: tuple[int, int]
    sampling_ratio: int
    pool_region: tuple[int, int, int, int]  # whole cells, ends inclusive
    pool_bins: np.ndarray  # (out_h, out_w, 4)
    align_points: np.ndarray  # (out_h, out_w, gh, gw, 2)
    pooled_max: np.ndarray  # (out_h, out_w): torchvision.ops.roi_pool of the channel-mean map (see analyse)
    pooled_align: np.ndarray  # (out_h, out_w): torchvision.ops.roi_align of the features, channel mean

    @property
    def highlight(self) -> tuple[int, int]:
        """The bin every view highlights: the centre one."""
        return self.output_size[0] // 2, self.output_size[1] // 2



@torch.inference_mode()
def analyse(inputs: PoolerInputs, image_size: tuple[int, int], box) -> RoiAnalysis:
    """Pool ``box`` (x0, y0, x1, y1 in the pixels of an image ``image_size`` = (width, height)) as the box head does, with both operators.

    ``inputs`` are the levels the network computed for that image. The level and scale are the
    pooler's (``pool_level``, ``feature_scales``), and the pooled 7x7 outputs come from
    ``torchvision.ops.roi_pool`` and ``roi_align`` on that level. Both are taken of what the views
    show, the level's channel mean: for RoIAlign (linear) that *is* the channel mean of the pooled
    features, exactly what the box head receives; for RoIPool it is the largest *shown* value in
    each bin, which a student can check against the drawn bins. (The channel mean of per-channel
    maxima would be far brighter than any average, so the two outputs could not share a colour scale.)
    """
    names = list(inputs.features)
    height, width = inputs.input_size
    scales = inputs.scales or feature_scales([tuple(inputs.features[n].shape[-2:]) for n in names], (height, width))
    strides = [int(round(1 / s)) for s in scales]
    ratio = np.array([width / image_size[0], height / image_size[1]] * 2, dtype=np.float32)
    box_input = np.asarray(box, dtype=np.float32).reshape(4) * ratio
    index = pool_level(box_input, strides, inputs.canonical_scale, inputs.canonical_level)
    scale = float(scales[index])
    level = inputs.features[names[index]]
    output_size = inputs.output_size
    rois = torch.tensor([[0.0, *box_input.tolist()]], dtype=torch.float32, device=level.device)
    pooled_max = roi_pool(level.mean(0)[None, None], rois, output_size, scale)[0, 0]
    pooled_align = roi_align(level[None], rois, output_size, scale, inputs.sampling_ratio, aligned=False)[0].mean(0)
    return RoiAnalysis(
        level_name=names[index],
        level_names=names,
        strides=strides,
        stride=strides[index],
        spatial_scale=scale,
        canonical=(inputs.canonical_scale, inputs.canonical_level),
        input_size=(height, width),
        image_size=tuple(image_size),
        box_input=box_input,
        box_cells=box_input * np.float32(scale),
        feature_mean=level.mean(0).cpu().numpy(),
        output_size=output_size,
        sampling_ratio=inputs.sampling_ratio,
        pool_region=roi_pool_region(box_input, scale),
        pool_bins=roi_pool_bins(box_input, scale, output_size, tuple(level.shape[-2:])),
        align_points=roi_align_points(box_input, scale, output_size, inputs.sampling_ratio, aligned=False),
        pooled_max=pooled_max.cpu().numpy(),
        pooled_align=pooled_align.cpu().numpy(),
    )
