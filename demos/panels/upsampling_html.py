"""The upsampling panel's HTML: each operator applied to the typed matrices, step by step.

``explain`` is the one function the panel calls; the matrices are ``tables.matrix_to_html``'s.
"""

from __future__ import annotations

import html

import numpy as np

from ..tables import matrix_to_html, number_text
from .upsampling_math import (
    bed_of_nails_unpool,
    max_pool_with_indices,
    max_unpool,
    nearest_neighbor_unpool,
    parse_matrix,
    transposed_conv,
    transposed_conv_steps,
)

__all__ = ["OPERATORS", "explain"]

#: Operator key -> label shown in the UI.
OPERATORS: dict[str, str] = {
    "nearest": "Nearest neighbour",
    "bed_of_nails": "Bed of nails",
    "max_unpool": "Max unpooling",
    "transposed": "Transposed convolution",
}


# ------------------------------------------------------------------------- rendering

def _row(*items: str) -> str:
    """Lay out tables and arrows side by side (wrapping on narrow screens)."""
    return ('<div style="display:flex;flex-wrap:wrap;align-items:center;gap:10px 14px;'
            'margin:6px 0;">' + "".join(items) + "</div>")


def _arrow(label: str = "") -> str:
    lab = f'<div style="font-size:0.8em;opacity:0.8;">{html.escape(label)}</div>' if label else ""
    return f'<div style="text-align:center;font-size:1.4em;color:inherit;">→{lab}</div>'


def _op(symbol: str) -> str:
    return f'<div style="font-size:1.4em;color:inherit;">{html.escape(symbol)}</div>'


def _note(text: str) -> str:
    return f'<p style="margin:4px 0;color:inherit;">{text}</p>'


def _error_html(message: str) -> str:
    return ('<div style="border:1px solid rgba(220,60,60,0.7);background:rgba(220,60,60,0.12);'
            'border-radius:6px;padding:8px 12px;color:inherit;">'
            f"<b>Cannot compute:</b> {html.escape(message)}</div>")


def _shape(a: np.ndarray) -> str:
    return f"{a.shape[0]}x{a.shape[1]}"


# --------------------------------------------------------------------------- explain

_MAX_COPIES_SHOWN = 16
_MAX_CANVAS_SHOWN = 16


def _explain_nearest(x: np.ndarray) -> str:
    out = nearest_neighbor_unpool(x, 2)
    return _note("<b>Nearest neighbour</b>: each value is copied into a 2x2 block. "
                 "No parameters; the result is blocky.") + _row(
        matrix_to_html(x, caption=f"input {_shape(x)}"), _arrow("x2"),
        matrix_to_html(out, caption=f"output {_shape(out)}"))


def _explain_bed_of_nails(x: np.ndarray) -> str:
    out = bed_of_nails_unpool(x, 2)
    nails = np.zeros(out.shape, bool)
    nails[::2, ::2] = True
    return _note("<b>Bed of nails</b>: each value goes to the top-left of its 2x2 block "
                 "(highlighted), zeros elsewhere.") + _row(
        matrix_to_html(x, caption=f"input {_shape(x)}"), _arrow("x2"),
        matrix_to_html(out, nails, caption=f"output {_shape(out)}"))


def _explain_max_unpool(x: np.ndarray, pool_source_text: str) -> str:
    source = parse_matrix(pool_source_text)
    pooled, idx = max_pool_with_indices(source, 2)
    if x.shape != pooled.shape:
        raise ValueError(
            f"For max-unpooling the input must have the pooled shape {_shape(pooled)} "
            f"(the {_shape(source)} pool source, max-pooled 2x2); got {_shape(x)}."
        )
    out = max_unpool(x, idx, source.shape, 2)
    positions = [tuple(int(v) for v in np.unravel_index(i, source.shape))
                 for i in idx.ravel()]
    return (
        _note("<b>Max unpooling</b>: the encoder's 2x2 max-pooling remembers <i>where</i> "
              "each maximum was (highlighted); the decoder's unpooling puts its values "
              "back at those positions, zeros elsewhere.")
        + _row(matrix_to_html(source, positions, caption=f"encoder: pool source {_shape(source)}"),
               _arrow("max-pool 2x2"),
               matrix_to_html(pooled, caption=f"pooled {_shape(pooled)}"))
        + _row(matrix_to_html(x, caption=f"decoder: input {_shape(x)}"),
               _arrow("max-unpool"),
               matrix_to_html(out, positions, caption=f"output {_shape(out)}"))
    )


def _explain_transposed(x, kernel_text, stride, padding, output_padding) -> str:
    kern = parse_matrix(kernel_text)
    out = transposed_conv(x, kern, stride, padding, output_padding)
    copies = transposed_conv_steps(x, kern, stride, padding, output_padding)
    s, p, op = (int(float(v)) for v in (stride, padding, output_padding))
    kh, kw = kern.shape
    # Uncropped canvas: every copy fits; extended by output_padding beyond the padding.
    full_shape = ((x.shape[0] - 1) * s + kh + max(0, op - p),
                  (x.shape[1] - 1) * s + kw + max(0, op - p))
    canvases = [c.on_canvas(full_shape, (p, p)) for c in copies]
    full = np.sum(canvases, axis=0)
    overlaps = np.sum([c != 0 for c in canvases], axis=0) > 1
    size_formula = " x ".join(
        f"({n}-1)·{s} - 2·{p} + {k}" + (f" + {op}" if op else "") + f" = {o}"
        for n, k, o in zip(x.shape, kern.shape, out.shape))
    parts = [
        _note("<b>Transposed convolution</b>: each input value scales the kernel; the "
              f"scaled copies are placed {s} apart (the stride) and overlapping outputs are "
              "summed. The kernel is learnable, so the network learns how to upsample."),
        _row(matrix_to_html(x, caption=f"input {_shape(x)}"), _op("⊛ᵀ"),
             matrix_to_html(kern, caption=f"kernel {_shape(kern)}"),
             _arrow(f"stride {s}, padding {p}" + (f", output_padding {op}" if op else "")),
             matrix_to_html(out, caption=f"output {_shape(out)}")),
        _note(f"Output size: {size_formula}."),
    ]
    if len(copies) <= _MAX_COPIES_SHOWN and max(full_shape) <= _MAX_CANVAS_SHOWN:
        items = []
        for c, canvas in zip(copies, canvases):
            if items:
                items.append(_op("+"))
            cells = [(r, q) for r in range(full_shape[0]) for q in range(full_shape[1])
                     if 0 <= r - c.top - p < kh and 0 <= q - c.left - p < kw]
            items.append(matrix_to_html(
                canvas, cells,
                caption=f"{number_text(c.value)} × kernel at ({c.row * s}, {c.col * s})"))
        items += [_op("="), matrix_to_html(full, overlaps, caption="sum (overlaps highlighted)")]
        parts += [_note("Step by step: one scaled kernel copy per input element "
                        f"(x[i, j] × kernel placed at (i·{s}, j·{s})):"), _row(*items)]
    else:
        parts.append(_note(f"({len(copies)} kernel copies: too many to show one by one.)"))
    if p or op:
        keep = np.zeros(full_shape, bool)
        keep[p:p + out.shape[0], p:p + out.shape[1]] = True
        parts += [_note(f"Padding {p} crops {p} row(s)/column(s) from each side of the sum"
                        + (f"; output_padding {op} adds {op} back at the bottom/right" if op else "")
                        + " (kept cells highlighted):"),
                  _row(matrix_to_html(full, keep, caption=f"sum {_shape(full)}"),
                       _arrow("crop"), matrix_to_html(out, caption=f"output {_shape(out)}"))]
    return "".join(parts)


def explain(operator: str, matrix_text: str, pool_source_text: str, kernel_text: str,
            stride=2, padding=0, output_padding=0) -> str:
    """HTML explaining ``operator`` (a key or label of ``OPERATORS``) applied to the
    matrix in ``matrix_text``. This is the single function the panel calls; bad input
    gives an HTML message saying what is wrong instead of raising."""
    key = {k: k for k in OPERATORS} | {v.lower(): k for k, v in OPERATORS.items()}
    op_key = key.get(str(operator).strip().lower()) if operator is not None else None
    try:
        if op_key is None:
            raise ValueError(f"Unknown operator {operator!r}; choose one of "
                             + ", ".join(OPERATORS.values()) + ".")
        try:
            x = parse_matrix(matrix_text)
        except ValueError as e:
            raise ValueError(f"Input matrix: {e}") from None
        if op_key == "nearest":
            return _explain_nearest(x)
        if op_key == "bed_of_nails":
            return _explain_bed_of_nails(x)
        if op_key == "max_unpool":
            try:
                parse_matrix(pool_source_text)
            except ValueError as e:
                raise ValueError(f"Pool source matrix: {e}") from None
            return _explain_max_unpool(x, pool_source_text)
        try:
            parse_matrix(kernel_text)
        except ValueError as e:
            raise ValueError(f"Kernel: {e}") from None
        return _explain_transposed(x, kernel_text, stride, padding, output_padding)
    except (ValueError, RuntimeError) as e:
        return _error_html(str(e).splitlines()[0] if str(e) else type(e).__name__)
