"""In-network upsampling, the arithmetic of the upsampling panel (the lecture on detection and segmentation).

A segmentation network downsamples (pooling, strided convolution) and then has to
*upsample* back to the image resolution. This module holds the operators the lecture
compares -- nearest-neighbour and "bed of nails" unpooling, max-unpooling that
remembers where the encoder's max-pooling found its maxima, and transposed convolution
(a learnable upsampling) -- as small pure functions (numpy in, numpy out), and the parsing
of the matrices a student types.

The functions are deliberately tiny and use the real torch operators where there is one
(``max_pool2d(return_indices=True)``, ``max_unpool2d``, ``conv_transpose2d``), so what
the panel shows is what a network does.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "MAX_PADDING",
    "MAX_SIDE",
    "MAX_STRIDE",
    "KernelCopy",
    "parse_matrix",
    "nearest_neighbor_unpool",
    "bed_of_nails_unpool",
    "max_pool_with_indices",
    "max_unpool",
    "transposed_conv",
    "transposed_conv_output_shape",
    "transposed_conv_steps",
]

#: Largest matrix side a user may type (rows and columns).
MAX_SIDE = 8
MAX_STRIDE = 4  #: largest stride (and output padding) of a transposed convolution
MAX_PADDING = 4


# --------------------------------------------------------------------------- parsing


def parse_matrix(text: str, max_side: int = MAX_SIDE) -> np.ndarray:
    """Parse a small matrix typed by a user, e.g. ``"1 2; 3 4"`` or ``"1, 2\\n3, 4"``.

    Rows are separated by newlines or ``;``, entries by spaces or commas. Blank rows are
    ignored. Returns a float64 array of shape (rows, cols).

    Raises ``ValueError`` with a message meant for the user for empty input, an entry
    that is not a (finite) number, rows of different lengths, or a matrix larger than
    ``max_side`` x ``max_side``.
    """
    if text is None or not str(text).strip():
        raise ValueError("The matrix is empty: type numbers such as '1 2; 3 4'.")
    rows: list[list[float]] = []
    for line in re.split(r"[;\n\r]+", str(text)):
        tokens = [t for t in re.split(r"[\s,]+", line.strip()) if t]
        if not tokens:
            continue
        row = []
        for j, tok in enumerate(tokens, start=1):
            try:
                value = float(tok)
            except ValueError:
                raise ValueError(
                    f"'{tok}' (row {len(rows) + 1}, entry {j}) is not a number."
                ) from None
            if not math.isfinite(value):
                raise ValueError(
                    f"'{tok}' (row {len(rows) + 1}, entry {j}) is not a finite number."
                )
            row.append(value)
        if rows and len(row) != len(rows[0]):
            raise ValueError(
                f"Row {len(rows) + 1} has {len(row)} entries but row 1 has "
                f"{len(rows[0])}: every row needs the same number of entries."
            )
        rows.append(row)
    if not rows:
        raise ValueError("The matrix is empty: type numbers such as '1 2; 3 4'.")
    n_rows, n_cols = len(rows), len(rows[0])
    if n_rows > max_side or n_cols > max_side:
        raise ValueError(
            f"The matrix is {n_rows}x{n_cols}; the limit is {max_side}x{max_side}."
        )
    return np.array(rows, dtype=np.float64)


def _as_2d(x) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or a.size == 0:
        raise ValueError(f"Expected a non-empty 2-D matrix, got shape {a.shape}.")
    return a


def _t(a: np.ndarray) -> torch.Tensor:
    """(H, W) numpy -> (1, 1, H, W) float64 tensor, the layout torch's 2-D ops expect."""
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))[None, None]


def _whole(value, name: str, minimum: int, maximum: int) -> int:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError(f"{name} is empty: type a whole number.")
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a whole number, got {value!r}.") from None
    if not math.isfinite(f) or f != int(f):
        raise ValueError(f"{name} must be a whole number, got {value!r}.")
    n = int(f)
    if not minimum <= n <= maximum:
        raise ValueError(f"{name} must be between {minimum} and {maximum}, got {n}.")
    return n


# ------------------------------------------------------------------------- operators


def nearest_neighbor_unpool(x, factor: int = 2) -> np.ndarray:
    """Nearest-neighbour unpooling: copy every value into a ``factor`` x ``factor`` block.

    It has no parameters and knows nothing about where details were; the result looks
    blocky. (Same as ``F.interpolate(mode="nearest")``, and as a transposed convolution
    with an all-ones ``factor`` x ``factor`` kernel and stride ``factor``.)
    """
    a = _as_2d(x)
    factor = _whole(factor, "Factor", 1, 16)
    return F.interpolate(_t(a), scale_factor=factor, mode="nearest")[0, 0].numpy()


def bed_of_nails_unpool(x, factor: int = 2) -> np.ndarray:
    """"Bed of nails" unpooling: put each value in the top-left of its ``factor`` x
    ``factor`` block and zeros elsewhere.

    Like max-unpooling whose remembered position is always the top-left corner (and
    a transposed convolution with kernel ``[[1, 0], [0, 0]]``, stride 2).
    """
    a = _as_2d(x)
    factor = _whole(factor, "Factor", 1, 16)
    out = np.zeros((a.shape[0] * factor, a.shape[1] * factor), dtype=np.float64)
    out[::factor, ::factor] = a
    return out


def max_pool_with_indices(x, k: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Max-pool with a ``k`` x ``k`` window and stride ``k``, remembering where each
    maximum was.

    Returns ``(pooled, indices)``; ``indices`` holds, for each pooled cell, the flat
    index (``row * width + col``) of the winning element in ``x`` -- the "switches" an
    encoder hands to its decoder. Rows/columns that do not fill a whole window are
    dropped, as in torch. On ties the first maximum (in reading order) wins.
    """
    a = _as_2d(x)
    k = _whole(k, "Pool size", 1, MAX_SIDE)
    if a.shape[0] < k or a.shape[1] < k:
        raise ValueError(
            f"A {a.shape[0]}x{a.shape[1]} matrix is too small for {k}x{k} max-pooling."
        )
    pooled, idx = F.max_pool2d(_t(a), kernel_size=k, stride=k, return_indices=True)
    return pooled[0, 0].numpy(), idx[0, 0].numpy()


def max_unpool(pooled_values, indices, output_shape: tuple[int, int], k: int = 2) -> np.ndarray:
    """Max-unpooling: put each value back at the position the *corresponding*
    max-pooling layer took its maximum from (``indices``), zeros elsewhere.

    ``pooled_values`` need not be the pooled maxima themselves: in a decoder they are
    whatever the layers in between computed, with the pooled shape. ``output_shape`` is
    the shape of the pooling layer's input and ``k`` its window size.
    """
    v = _as_2d(pooled_values)
    idx = np.asarray(indices, dtype=np.int64)
    if idx.shape != v.shape:
        raise ValueError(
            f"The values to unpool are {v.shape[0]}x{v.shape[1]} but the remembered "
            f"max positions are {'x'.join(map(str, idx.shape))}: they must match."
        )
    h, w = (int(s) for s in output_shape)
    if idx.min() < 0 or idx.max() >= h * w:
        raise ValueError(f"Max positions do not fit in a {h}x{w} output.")
    k = _whole(k, "Pool size", 1, MAX_SIDE)
    try:
        out = F.max_unpool2d(_t(v), torch.from_numpy(np.ascontiguousarray(idx))[None, None],
                             kernel_size=k, stride=k, output_size=(h, w))
    except RuntimeError as e:
        raise ValueError(
            f"A {v.shape[0]}x{v.shape[1]} matrix cannot be unpooled by {k}x{k} to {h}x{w}."
        ) from e
    return out[0, 0].numpy()


def transposed_conv_output_shape(
    input_shape: tuple[int, int],
    kernel_shape: tuple[int, int],
    stride: int,
    padding: int = 0,
    output_padding: int = 0,
) -> tuple[int, int]:
    """Output size of a transposed convolution, per side:
    ``(in - 1) * stride - 2 * padding + k + output_padding``."""
    return tuple(
        (n - 1) * stride - 2 * padding + k + output_padding
        for n, k in zip(input_shape, kernel_shape)
    )


def _check_tconv(a: np.ndarray, kern: np.ndarray, stride, padding, output_padding):
    stride = _whole(stride, "Stride", 1, MAX_STRIDE)
    padding = _whole(padding, "Padding", 0, MAX_PADDING)
    output_padding = _whole(output_padding, "Output padding", 0, MAX_STRIDE)
    if output_padding >= stride:
        raise ValueError(
            f"Output padding must be smaller than the stride ({stride}), got "
            f"{output_padding}."
        )
    shape = transposed_conv_output_shape(a.shape, kern.shape, stride, padding, output_padding)
    if min(shape) < 1:
        raise ValueError(
            f"Padding {padding} crops everything away: the output would be "
            f"{shape[0]}x{shape[1]}. Use less padding or a larger kernel."
        )
    return stride, padding, output_padding


def transposed_conv(x, kernel, stride: int = 1, padding: int = 0,
                    output_padding: int = 0) -> np.ndarray:
    """Transposed convolution (``torch.nn.functional.conv_transpose2d``): every input
    value scales the kernel, the scaled copies are placed ``stride`` apart and summed
    where they overlap; ``padding`` then crops that many rows/columns from each side.

    It is the transpose of an ordinary convolution written as a matrix product, which is
    why it is also called "backward-strided" or (misleadingly) "deconvolution". Output
    size per side is ``(in - 1) * stride - 2 * padding + k + output_padding``.
    The 1-D example from the slides, input ``[a, b]``, filter ``[x, y, z]``, stride 2:

    >>> transposed_conv([[2, 3]], [[1, 10, 100]], stride=2)  # a=2, b=3, x=1, y=10, z=100
    array([[  2.,  20., 203.,  30., 300.]])

    i.e. ``[ax, ay, az + bx, by, bz]``.
    """
    a, kern = _as_2d(x), _as_2d(kernel)
    stride, padding, output_padding = _check_tconv(a, kern, stride, padding, output_padding)
    out = F.conv_transpose2d(
        _t(a), _t(kern), stride=stride, padding=padding, output_padding=output_padding
    )
    return out[0, 0].numpy()


@dataclass(frozen=True)
class KernelCopy:
    """One input element's contribution to a transposed convolution: ``value`` times the
    kernel, whose top-left lands at (``top``, ``left``) of the output (negative or past
    the edge where padding crops part of it away)."""

    row: int
    col: int
    value: float
    scaled_kernel: np.ndarray
    top: int
    left: int

    def on_canvas(self, shape: tuple[int, int], offset: tuple[int, int] = (0, 0)) -> np.ndarray:
        """The copy drawn on a zero array of ``shape`` (clipped at its edges), shifted by
        ``offset``; summing every copy's canvas gives the transposed convolution."""
        canvas = np.zeros(shape, dtype=np.float64)
        kh, kw = self.scaled_kernel.shape
        top, left = self.top + offset[0], self.left + offset[1]
        r0, c0 = max(top, 0), max(left, 0)
        r1, c1 = min(top + kh, shape[0]), min(left + kw, shape[1])
        if r0 < r1 and c0 < c1:
            canvas[r0:r1, c0:c1] = self.scaled_kernel[r0 - top:r1 - top, c0 - left:c1 - left]
        return canvas


def transposed_conv_steps(x, kernel, stride: int = 1, padding: int = 0,
                          output_padding: int = 0) -> list[KernelCopy]:
    """Explain a transposed convolution: for each input element ``x[i, j]`` the copy
    ``x[i, j] * kernel`` and where it lands, ``(i * stride - padding, j * stride - padding)``.

    Overlapping copies are summed: ``sum(c.on_canvas(out.shape) for c in steps)`` equals
    ``transposed_conv(...)``.
    """
    a, kern = _as_2d(x), _as_2d(kernel)
    stride, padding, output_padding = _check_tconv(a, kern, stride, padding, output_padding)
    return [
        KernelCopy(i, j, float(a[i, j]), a[i, j] * kern, i * stride - padding,
                   j * stride - padding)
        for i in range(a.shape[0])
        for j in range(a.shape[1])
    ]
