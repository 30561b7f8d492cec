"""RoIAlign versus RoIPool on one proposal, as in the lecture on instance segmentation (Mask R-CNN).

A two-stage detector crops a fixed-size (7x7) feature patch for every box. Fast R-CNN's
*RoIPool* rounds the box to whole feature cells and splits it into bins whose edges are
rounded again; Mask R-CNN's *RoIAlign* keeps the box's exact coordinates, splits it into equal
bins and reads each bin at a few regular points by bilinear interpolation. This module holds
that arithmetic as small pure functions (numpy in, numpy out), written to follow torchvision's
kernels step by step (float32, the same rounding, the same border rules), so the tests can
prove them equal to ``torchvision.ops.roi_pool`` / ``roi_align`` and to the network's own
``MultiScaleRoIAlign``; then the drawing of the four views, and the panel.

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

import gradio as gr
import numpy as np
import torch
from PIL import Image, ImageDraw
from torchvision.ops import MultiScaleRoIAlign, roi_align, roi_pool

from . import drawing

__all__ = [
    "EXPLANATION",
    "RoiAnalysis",
    "pool_level",
    "fpn_level",
    "feature_scales",
    "roi_pool_region",
    "roi_pool_bins",
    "roi_pool_reference",
    "roi_align_points",
    "bilinear_sample",
    "roi_align_reference",
    "box_pooler",
    "analyse_roi",
    "pool_view",
    "align_view",
    "pooled_view",
    "render_views",
    "roi_views",
    "roi_summary",
    "build_roi_panel",
]

POOL_COLOUR = (40, 200, 255)  # RoIPool: cyan
ALIGN_COLOUR = (90, 235, 110)  # RoIAlign: green
GRID_COLOUR = (150, 150, 150, 150)
OUTSIDE_COLOUR = (95, 95, 105)  # beyond the feature map's edge
VIEW_SIDE = 520  # longer side of the feature views, in pixels
POOLED_CELL = 64  # pixels per cell of the pooled 7x7 views

EXPLANATION = (
    "**Why quantisation misaligns masks.** RoIPool snaps the box to whole feature cells and then "
    "cuts it into bins whose edges are snapped again (floor for a bin's start, ceil for its end), so "
    "neighbouring bins overlap or differ in size and each output cell describes a slightly shifted "
    "piece of the object. On a stride-16 level one cell is 16 image pixels. For classification that "
    "barely matters (the maximum over roughly the right region still says *circle*), but a mask is "
    "predicted in the box's own frame and pasted back onto the *exact* box: features read from a "
    "shifted window give a mask shifted by the same pixels, which is fatal at the strict IoU "
    "thresholds of mask AP. RoIAlign never rounds: it cuts the exact box into equal bins and "
    "reads each bin at regular points (here 2x2) by bilinear interpolation between the four nearest "
    "cells, so output cell (i, j) always describes the same part of the box. The Mask R-CNN paper "
    "reports that this change alone improves mask accuracy by 10 to 50 % (relative), most at strict "
    "IoU thresholds. (torchvision's `MultiScaleRoIAlign` uses `aligned=False`, which still reads "
    "features half a cell down and to the right of the box; `aligned=True`, Detectron2's RoIAlignV2, removes that too.)"
)


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


# ---------------------------------------------------------------- one box through a real network


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
    pooled_max: np.ndarray  # (out_h, out_w): torchvision.ops.roi_pool of the channel-mean map (see analyse_roi)
    pooled_align: np.ndarray  # (out_h, out_w): torchvision.ops.roi_align of the features, channel mean

    @property
    def highlight(self) -> tuple[int, int]:
        """The bin every view highlights: the centre one."""
        return self.output_size[0] // 2, self.output_size[1] // 2


def box_pooler(detector) -> MultiScaleRoIAlign:
    """The detector's box RoI pooler, or a clear ValueError for a model without one."""
    network = getattr(detector, "network", None)
    pooler = getattr(getattr(network, "roi_heads", None), "box_roi_pool", None)
    if not isinstance(pooler, MultiScaleRoIAlign):
        raise ValueError(
            "This model has no RoI pooler: one-stage detectors (FCOS, RetinaNet, SSD) and DETR predict from the whole "
            "feature map. Pick a two-stage model (Faster or Mask R-CNN)."
        )
    return pooler


@torch.inference_mode()
def analyse_roi(detector, image: Image.Image, box) -> RoiAnalysis:
    """Pool ``box`` (x0, y0, x1, y1 in ``image``'s pixels) the way ``detector``'s box head does, with both operators.

    The image goes through the network's own transform and backbone; the level and scale are
    the pooler's (``pool_level``, ``feature_scales``), and the pooled 7x7 outputs come from
    ``torchvision.ops.roi_pool`` and ``roi_align`` on that level. Both are taken of what the views
    show, the level's channel mean: for RoIAlign (linear) that *is* the channel mean of the pooled
    features, exactly what the box head receives; for RoIPool it is the largest *shown* value in
    each bin, which a student can check against the drawn bins. (The channel mean of per-channel
    maxima would be far brighter than any average, so the two outputs could not share a colour scale.)
    """
    pooler = box_pooler(detector)
    network = detector.network
    images, _ = network.transform([detector.preprocess(image)])
    height, width = (int(v) for v in images.image_sizes[0])
    features = network.backbone(images.tensors)
    names = [name for name in features if name in pooler.featmap_names]  # the pooler's own order
    scales = pooler.scales or feature_scales([tuple(features[n].shape[-2:]) for n in names], (height, width))
    strides = [int(round(1 / s)) for s in scales]
    ratio = np.array([width / image.width, height / image.height] * 2, dtype=np.float32)
    box_input = np.asarray(box, dtype=np.float32).reshape(4) * ratio
    index = pool_level(box_input, strides, pooler.canonical_scale, pooler.canonical_level)
    scale = float(scales[index])
    level = features[names[index]][0].float()
    output_size = tuple(int(v) for v in pooler.output_size)
    rois = torch.tensor([[0.0, *box_input.tolist()]], dtype=torch.float32, device=level.device)
    pooled_max = roi_pool(level.mean(0)[None, None], rois, output_size, scale)[0, 0]
    pooled_align = roi_align(level[None], rois, output_size, scale, pooler.sampling_ratio, aligned=False)[0].mean(0)
    return RoiAnalysis(
        level_name=names[index],
        level_names=names,
        strides=strides,
        stride=strides[index],
        spatial_scale=scale,
        canonical=(int(pooler.canonical_scale), int(pooler.canonical_level)),
        input_size=(height, width),
        image_size=image.size,
        box_input=box_input,
        box_cells=box_input * np.float32(scale),
        feature_mean=level.mean(0).cpu().numpy(),
        output_size=output_size,
        sampling_ratio=int(pooler.sampling_ratio),
        pool_region=roi_pool_region(box_input, scale),
        pool_bins=roi_pool_bins(box_input, scale, output_size, tuple(level.shape[-2:])),
        align_points=roi_align_points(box_input, scale, output_size, pooler.sampling_ratio, aligned=False),
        pooled_max=pooled_max.cpu().numpy(),
        pooled_align=pooled_align.cpu().numpy(),
    )


# ---------------------------------------------------------------- drawing


@dataclass(frozen=True)
class _Window:
    """A crop of the feature map around the box: cells [row0, row1) x [col0, col1), ``cell`` pixels each."""

    row0: int
    row1: int
    col0: int
    col1: int
    cell: int

    def px(self, x: float, y: float) -> tuple[float, float]:
        """Feature coordinates (cell i centred at i) -> canvas pixels."""
        return (x - self.col0 + 0.5) * self.cell, (y - self.row0 + 0.5) * self.cell

    def edge(self, col: float, row: float) -> tuple[float, float]:
        """Cell-boundary indices (boundary k lies before cell k) -> canvas pixels."""
        return (col - self.col0) * self.cell, (row - self.row0) * self.cell


def _window(a: RoiAnalysis) -> _Window:
    """Cells around the box, its RoIPool region and its sample points, with context; at most one cell beyond the map."""
    height, width = a.feature_mean.shape
    q0, r0, q1, r1 = a.pool_region
    pts = a.align_points.reshape(-1, 2)
    lo_x = min(a.box_cells[0], q0, pts[:, 0].min())
    hi_x = max(a.box_cells[2], q1, pts[:, 0].max())
    lo_y = min(a.box_cells[1], r0, pts[:, 1].min())
    hi_y = max(a.box_cells[3], r1, pts[:, 1].max())
    margin = max(2, math.ceil(0.3 * max(hi_x - lo_x, hi_y - lo_y)))

    def span(lo: float, hi: float, size: int) -> tuple[int, int]:
        first, last = math.floor(lo + 0.5), math.floor(hi + 0.5)  # the cells holding lo and hi
        start = max(first - margin, min(first, -1))  # one cell beyond the edge shows where the map ends
        stop = min(last + 1 + margin, max(last + 1, size + 1))
        return start, stop

    row0, row1 = span(lo_y, hi_y, height)
    col0, col1 = span(lo_x, hi_x, width)
    cell = max(3, VIEW_SIDE // max(row1 - row0, col1 - col0))
    return _Window(row0, row1, col0, col1, cell)


def _value_range(a: RoiAnalysis) -> tuple[float, float]:
    """One colour scale for all four views: the shown cells of the map and both pooled outputs."""
    w = _window(a)
    height, width = a.feature_mean.shape
    crop = a.feature_mean[max(w.row0, 0) : min(w.row1, height), max(w.col0, 0) : min(w.col1, width)]
    values = np.concatenate([crop.ravel(), a.pooled_max.ravel(), a.pooled_align.ravel()])
    return float(values.min()), float(values.max())


def _feature_canvas(a: RoiAnalysis, w: _Window, value_range: tuple[float, float]) -> Image.Image:
    """The level's channel mean over the window as a heat map, one square per cell, with the cell grid."""
    height, width = a.feature_mean.shape
    rows = np.arange(w.row0, w.row1)
    cols = np.arange(w.col0, w.col1)
    inside_r = (rows >= 0) & (rows < height)
    inside_c = (cols >= 0) & (cols < width)
    crop = a.feature_mean[np.ix_(rows.clip(0, height - 1), cols.clip(0, width - 1))]
    rgb = drawing.heatmap(crop, value_range)
    rgb[~(inside_r[:, None] & inside_c[None, :])] = OUTSIDE_COLOUR
    canvas = Image.fromarray(rgb).resize((len(cols) * w.cell, len(rows) * w.cell), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(canvas, "RGBA")
    if w.cell >= 5:
        for k in range(1, len(cols)):
            draw.line([(k * w.cell, 0), (k * w.cell, canvas.height)], fill=GRID_COLOUR, width=1)
        for k in range(1, len(rows)):
            draw.line([(0, k * w.cell), (canvas.width, k * w.cell)], fill=GRID_COLOUR, width=1)
    return canvas


def _dashed_rectangle(draw: ImageDraw.ImageDraw, box, colour, width: int, dash: int = 8) -> None:
    x0, y0, x1, y1 = box
    for (a, b), (c, d) in (((x0, y0), (x1, y0)), ((x1, y0), (x1, y1)), ((x1, y1), (x0, y1)), ((x0, y1), (x0, y0))):
        length = math.hypot(c - a, d - b)
        steps = max(1, int(length // dash))
        for s in range(0, steps, 2):
            t0, t1 = s / steps, min(1.0, (s + 1) / steps)
            draw.line([(a + (c - a) * t0, b + (d - b) * t0), (a + (c - a) * t1, b + (d - b) * t1)], fill=colour, width=width)


def _line_width(w: _Window) -> int:
    return max(2, round(VIEW_SIDE / 170))


_LANE, _LANE_GAP = 9, 3
_MARGIN = 2 * _LANE + 3 * _LANE_GAP


def _with_bin_margins(canvas: Image.Image, columns, rows, colour, highlight: tuple[int, int]) -> Image.Image:
    """Add a strip above and left of ``canvas`` with one bar per bin column / row, over the pixels it spans.

    Bars alternate between two lanes, so bins that overlap (RoIPool) or abut (RoIAlign) stay
    distinguishable. ``columns`` and ``rows`` are (start, end) canvas pixels per bin, None for an empty bin.
    """
    framed = Image.new("RGB", (canvas.width + _MARGIN, canvas.height + _MARGIN), (236, 236, 236))
    framed.paste(canvas, (_MARGIN, _MARGIN))
    draw = ImageDraw.Draw(framed)
    for axis, spans in ((0, columns), (1, rows)):
        for k, span in enumerate(spans):
            if span is None:
                continue
            lo, hi = (min(max(v, 0), (canvas.width if axis == 0 else canvas.height) - 1) + _MARGIN for v in span)
            lo, hi = (lo + 2, hi - 2) if hi - lo > 6 else (lo, hi)  # a gap between bars that touch
            lane = _LANE_GAP + (k % 2) * (_LANE + _LANE_GAP)
            fill = (255, 255, 255) if k == highlight[axis == 0] else colour
            bar = (lo, lane, hi, lane + _LANE) if axis == 0 else (lane, lo, lane + _LANE, hi)
            draw.rectangle(bar, fill=fill, outline=(0, 0, 0))
    return framed


def pool_view(a: RoiAnalysis, value_range: tuple[float, float] | None = None) -> Image.Image:
    """RoIPool's view: the exact box (dashed white), the whole cells it is rounded to, and the bins' snapped edges."""
    w = _window(a)
    canvas = _feature_canvas(a, w, value_range or _value_range(a))
    draw = ImageDraw.Draw(canvas, "RGBA")
    thick = _line_width(w)
    _dashed_rectangle(draw, (*w.px(*a.box_cells[:2]), *w.px(*a.box_cells[2:])), (255, 255, 255, 230), thick)
    bins = a.pool_bins
    q0, r0, q1, r1 = a.pool_region
    top, bottom = w.edge(0, r0)[1], w.edge(0, r1 + 1)[1]
    left, right = w.edge(q0, 0)[0], w.edge(q1 + 1, 0)[0]
    for col in sorted(set(bins[0, :, 2:].ravel().tolist())):
        x = w.edge(col, 0)[0]
        draw.line([(x, top), (x, bottom)], fill=(*POOL_COLOUR, 220), width=2)
    for row in sorted(set(bins[:, 0, :2].ravel().tolist())):
        y = w.edge(0, row)[1]
        draw.line([(left, y), (right, y)], fill=(*POOL_COLOUR, 220), width=2)
    i, j = a.highlight
    rs, re_, cs, ce = bins[i, j]
    if re_ > rs and ce > cs:
        draw.rectangle((*w.edge(cs, rs), *w.edge(ce, re_)), fill=(*POOL_COLOUR, 90), outline=(255, 255, 255, 255), width=thick)
    draw.rectangle((left, top, right, bottom), outline=POOL_COLOUR, width=thick + 1)
    columns = [(w.edge(c0, 0)[0], w.edge(c1, 0)[0]) if c1 > c0 else None for c0, c1 in bins[0, :, 2:]]
    rows = [(w.edge(0, r0)[1], w.edge(0, r1)[1]) if r1 > r0 else None for r0, r1 in bins[:, 0, :2]]
    return _with_bin_margins(canvas, columns, rows, POOL_COLOUR, a.highlight)


def align_view(a: RoiAnalysis, value_range: tuple[float, float] | None = None) -> Image.Image:
    """RoIAlign's view: the exact box, its equal bins and the bilinear sample points.

    The centre bin's points are joined to the four cell centres each one interpolates.
    """
    w = _window(a)
    canvas = _feature_canvas(a, w, value_range or _value_range(a))
    draw = ImageDraw.Draw(canvas, "RGBA")
    thick = _line_width(w)
    out_h, out_w = a.output_size
    x0, y0, x1, y1 = (float(v) for v in a.box_cells)
    width, height = max(x1 - x0, 1.0), max(y1 - y0, 1.0)  # RoIAlign (aligned=False) widens boxes under a cell
    x1, y1 = x0 + width, y0 + height
    for k in range(1, out_w):
        x = x0 + k * width / out_w
        draw.line([w.px(x, y0), w.px(x, y1)], fill=(*ALIGN_COLOUR, 220), width=2)
    for k in range(1, out_h):
        y = y0 + k * height / out_h
        draw.line([w.px(x0, y), w.px(x1, y)], fill=(*ALIGN_COLOUR, 220), width=2)
    i, j = a.highlight
    bin_w, bin_h = width / out_w, height / out_h
    bin_box = (*w.px(x0 + j * bin_w, y0 + i * bin_h), *w.px(x0 + (j + 1) * bin_w, y0 + (i + 1) * bin_h))
    draw.rectangle(bin_box, fill=(*ALIGN_COLOUR, 70), outline=(255, 255, 255, 255), width=thick)
    draw.rectangle((*w.px(x0, y0), *w.px(x1, y1)), outline=ALIGN_COLOUR, width=thick + 1)
    radius = _point_radius(a, w)
    for bi in range(out_h):
        for bj in range(out_w):
            if (bi, bj) != (i, j):
                for px_, py_ in a.align_points[bi, bj].reshape(-1, 2):
                    cx, cy = w.px(float(px_), float(py_))
                    dot = (cx - radius, cy - radius, cx + radius, cy + radius)
                    draw.ellipse(dot, fill=(255, 255, 255, 230), outline=(0, 0, 0, 200))
    fmap_h, fmap_w = a.feature_mean.shape
    marker = max(3, w.cell // 9)
    for px_, py_ in a.align_points[i, j].reshape(-1, 2):  # each centre-bin sample and the four cells it mixes
        x, y = min(max(float(px_), 0.0), fmap_w - 1), min(max(float(py_), 0.0), fmap_h - 1)
        xl, yl = min(math.floor(x), fmap_w - 1), min(math.floor(y), fmap_h - 1)
        xh, yh = min(xl + 1, fmap_w - 1), min(yl + 1, fmap_h - 1)
        for nx, ny in {(xl, yl), (xh, yl), (xl, yh), (xh, yh)}:
            cx, cy = w.px(nx, ny)
            draw.line([w.px(float(px_), float(py_)), (cx, cy)], fill=(255, 255, 255, 230), width=2)
            square = (cx - marker, cy - marker, cx + marker, cy + marker)
            draw.rectangle(square, fill=(255, 255, 255, 255), outline=(0, 0, 0, 255))
    for px_, py_ in a.align_points[i, j].reshape(-1, 2):
        cx, cy = w.px(float(px_), float(py_))
        r = radius * 1.5
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=ALIGN_COLOUR, outline=(0, 0, 0, 255), width=2)
    columns = [(w.px(x0 + k * width / out_w, 0)[0], w.px(x0 + (k + 1) * width / out_w, 0)[0]) for k in range(out_w)]
    rows = [(w.px(0, y0 + k * height / out_h)[1], w.px(0, y0 + (k + 1) * height / out_h)[1]) for k in range(out_h)]
    return _with_bin_margins(canvas, columns, rows, ALIGN_COLOUR, a.highlight)


def _point_radius(a: RoiAnalysis, w: _Window) -> float:
    """Dots small enough that neighbouring sample points never merge, large enough to see."""
    pts = a.align_points
    gh, gw = pts.shape[2:4]
    spacing = min(
        float(a.box_cells[2] - a.box_cells[0]) / (a.output_size[1] * gw),
        float(a.box_cells[3] - a.box_cells[1]) / (a.output_size[0] * gh),
    )
    return float(np.clip(spacing * w.cell / 5, 1.5, 4.5))


def pooled_view(
    values: np.ndarray, value_range: tuple[float, float], colour: tuple[int, int, int], highlight: tuple[int, int]
) -> Image.Image:
    """A pooled output (out_h x out_w) as a heat map of big cells, the highlighted bin outlined."""
    out_h, out_w = values.shape
    size = (out_w * POOLED_CELL, out_h * POOLED_CELL)
    canvas = Image.fromarray(drawing.heatmap(values, value_range)).resize(size, Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(canvas, "RGBA")
    for k in range(1, out_w):
        draw.line([(k * POOLED_CELL, 0), (k * POOLED_CELL, canvas.height)], fill=GRID_COLOUR, width=1)
    for k in range(1, out_h):
        draw.line([(0, k * POOLED_CELL), (canvas.width, k * POOLED_CELL)], fill=GRID_COLOUR, width=1)
    i, j = highlight
    cell = (j * POOLED_CELL, i * POOLED_CELL, (j + 1) * POOLED_CELL - 1, (i + 1) * POOLED_CELL - 1)
    draw.rectangle(cell, outline=colour, width=4)
    return canvas


def _level_words(a: RoiAnalysis) -> str:
    height, width = a.feature_mean.shape
    return f"FPN level '{a.level_name}' (P{int(round(math.log2(a.stride)))}, stride {a.stride} px, {height}×{width} cells)"


def _span(sizes: np.ndarray) -> str:
    low, high = int(sizes.min()), int(sizes.max())
    return f"{low}" if low == high else f"{low}–{high}"


def render_views(a: RoiAnalysis) -> list[tuple[Image.Image, str]]:
    """The four gallery items: both operators' views of the feature map, then both pooled outputs."""
    x0, y0, x1, y1 = (float(v) for v in a.box_cells)
    q0, r0, q1, r1 = a.pool_region
    out_h, out_w = a.output_size
    i, j = a.highlight
    rows, cols = a.pool_bins[:, 0, 1] - a.pool_bins[:, 0, 0], a.pool_bins[0, :, 3] - a.pool_bins[0, :, 2]
    gh, gw = a.align_points.shape[2:4]
    shared = _value_range(a)
    box_words = f"box x {x0:.2f}–{x1:.2f}, y {y0:.2f}–{y1:.2f} in feature cells"
    return [
        (
            pool_view(a, shared),
            f"RoIPool on {_level_words(a)}, channel mean as a heat map · {box_words} (dashed) → "
            f"whole cells x {q0}–{q1}, y {r0}–{r1} "
            f"(cyan) · {out_h}×{out_w} bins with floor/ceil edges, {_span(cols)} cells wide and "
            f"{_span(rows)} tall (bars above and left: each bin's columns and rows); bin ({i + 1}, {j + 1}) filled",
        ),
        (
            align_view(a, shared),
            f"RoIAlign on the same level · {box_words} (green), {out_h}×{out_w} equal bins of "
            f"{(x1 - x0) / out_w:.2f}×{(y1 - y0) / out_h:.2f} cells, {gh}×{gw} bilinear sample points each; bin "
            f"({i + 1}, {j + 1})'s points are joined to the 4 cells each one mixes "
            "(bars above and left: each bin's columns and rows)",
        ),
        (
            pooled_view(a.pooled_max, shared, POOL_COLOUR, a.highlight),
            f"RoIPool output, {out_h}×{out_w}: the largest value of the map above in each bin "
            "(same colour scale in all four views)",
        ),
        (
            pooled_view(a.pooled_align, shared, ALIGN_COLOUR, a.highlight),
            f"RoIAlign output, {out_h}×{out_w}: the mean of the {gh * gw} bilinear samples in each bin, "
            "what the box head receives (channel mean)",
        ),
    ]


def roi_summary(a: RoiAnalysis) -> str:
    """Markdown: why this level, and how far RoIPool's rounding moved this box's edges, in image pixels."""
    width_px, height_px = float(a.box_input[2] - a.box_input[0]), float(a.box_input[3] - a.box_input[1])
    scale, k0 = a.canonical
    k = fpn_level(a.box_input, scale, k0)
    levels = ", ".join(f"'{n}' (stride {s})" for n, s in zip(a.level_names, a.strides))
    q0, r0, q1, r1 = a.pool_region
    x0, y0, x1, y1 = (float(v) for v in a.box_cells)
    shifts = np.array([q0 - 0.5 - x0, r0 - 0.5 - y0, q1 + 0.5 - x1, r1 + 0.5 - y1])  # in cells, cell i spanning i ± 0.5
    to_image = np.array([a.image_size[0] / a.input_size[1], a.image_size[1] / a.input_size[0]] * 2)
    shifts_px = shifts * a.stride * to_image
    worst = int(np.argmax(np.abs(shifts_px)))
    side = ["left", "top", "right", "bottom"][worst]
    return (
        f"**This box** is {width_px:.1f}×{height_px:.1f} px in the network input ({a.input_size[1]}×{a.input_size[0]}): "
        f"k = ⌊{k0} + log2(√({width_px:.1f}·{height_px:.1f}) / {scale})⌋ = {k}, clamped to the pooled levels {levels} → "
        f"level '{a.level_name}'. RoIPool's whole cells move its edges by "
        f"{', '.join(f'{s:+.2f}' for s in shifts)} cells (left, top, right, bottom); the {side} edge by "
        f"{abs(shifts_px[worst]):.1f} image pixels.\n\n" + EXPLANATION
    )


def roi_views(image: Image.Image, model_name: str, box: np.ndarray) -> list[tuple[Image.Image, str]]:
    """Gallery items for one box (x0, y0, x1, y1 in ``image``'s pixels) and a two-stage model from the registry."""
    import models

    return render_views(analyse_roi(models.get(model_name), image, box))


# ---------------------------------------------------------------- the panel


def _roi_ui(image_path, model_name: str, score: float, number, progress: gr.Progress = gr.Progress()):
    from models.detection import select

    from . import common
    from .detector_outputs import predict

    if not image_path:
        raise ValueError("Pick or upload an image first.")
    if number is None or not math.isfinite(float(number)) or float(number) != int(float(number)) or int(number) < 1:
        raise ValueError("Detection # is a whole number from 1 (the best-scoring detection).")
    image = common.read_image(image_path)
    detector = common.load_model(model_name, progress)
    box_pooler(detector)  # before running anything: a model without an RoI pooler is a clear error
    detections = select(predict(image, model_name, progress).raw, float(score))
    if not len(detections):
        raise ValueError(f"No detection scores above {float(score):.2f}: lower the score threshold.")
    if int(number) > len(detections):
        count = len(detections)
        raise ValueError(f"There are {count} detections above {float(score):.2f}: pick a detection # from 1 to {count}.")
    index = int(number) - 1
    analysis = analyse_roi(detector, image, detections.boxes[index])
    label = detections.categories[int(detections.labels[index])]
    head = f"Detection #{index + 1}: **{label}** ({float(detections.scores[index]):.2f}).\n\n"
    return render_views(analysis), head + roi_summary(analysis)


def build_roi_panel(image: gr.components.Component, model: gr.Dropdown, score: gr.Slider) -> None:
    """The accordion under a two-stage detector's tab: one detection pooled by RoIPool and by RoIAlign.

    ``image`` is the tab's image component (a file path), ``model`` its model picker and
    ``score`` its score threshold: the panel pools detection # n of what the tab shows.
    """
    from .common import clear_on_failure, user_errors

    with gr.Accordion("RoIAlign versus RoIPool", open=False):
        gr.Markdown(
            "A two-stage detector crops a fixed 7×7 feature patch for every box from one level of its feature pyramid. "
            "Pick a detection (1 = best score) to see which level it is pooled from, how **RoIPool** rounds the box to "
            "whole feature cells, and where **RoIAlign** samples instead. Feature cells are drawn centred on whole "
            "coordinates, the convention both torchvision operators use."
        )
        with gr.Row():
            number = gr.Number(value=1, precision=0, minimum=1, label="Detection #")
            show = gr.Button("Pool this detection")
        views = gr.Gallery(label="RoIPool versus RoIAlign", columns=2, height="auto", object_fit="contain", elem_classes="dvl-fit")
        summary = gr.Markdown()
        pooled = show.click(user_errors(_roi_ui), [image, model, score, number], [views, summary], api_visibility="private")
        clear_on_failure(pooled, [views, summary])
