"""The RoIAlign-versus-RoIPool panel's pictures and words, drawn from one ``roi_math.RoiAnalysis``.

Four gallery items: RoIPool's and RoIAlign's views of the feature map around the box (the level's
channel mean as a heat map, cells centred on whole coordinates as both operators read them), then
both pooled outputs on the same colour scale; and a summary of why the box was pooled from its
level and how far RoIPool's rounding moved its edges.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from .. import drawing
from .roi_math import RoiAnalysis, fpn_level

__all__ = ["EXPLANATION", "align_view", "pool_view", "pooled_view", "render_views", "roi_summary"]

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

