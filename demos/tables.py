"""HTML tables of numbers, shared by the tabs and the teaching panels, with the CSS that styles them.

Two kinds: ``table_html`` wraps rows a tab writes (probabilities, decoding steps) in the app's
``dvl-matrix`` table, styled by ``CSS`` (which app.py adds to the page); ``matrix_to_html``
renders a small numeric matrix with inline styles only, so a panel's HTML is whole on its own.
"""

from __future__ import annotations

import html
from typing import Iterable

import numpy as np

CSS = """
.dvl-matrix { border-collapse: collapse; font-size: 0.85rem; font-variant-numeric: tabular-nums; }
.dvl-matrix caption { caption-side: bottom; font-size: 0.8rem; opacity: .75; padding-top: 4px; text-align: left; }
.dvl-matrix th { padding: 2px 6px; font-weight: 600; text-align: left; }
.dvl-matrix td { padding: 2px 6px; text-align: center; min-width: 3.2rem; }
.dvl-matrix td small { color: inherit; opacity: .85; }
.dvl-scroll { overflow-x: auto; max-width: 100%; }
.dvl-steps td { text-align: left; white-space: nowrap; }
.dvl-steps td.dvl-taken { outline: 2px solid rgba(99,102,241,.9); outline-offset: -2px; font-weight: 600; }
"""
"""The page's CSS for ``table_html``: compact tabular numbers, the caption below, a sideways scroll on a narrow page."""


def table_html(caption: str, head: str, rows: Iterable[str], *, steps: bool = False) -> str:
    """A ``dvl-matrix`` table of ``head`` and ``rows`` (``<tr>`` HTML) under ``caption``, scrolling sideways when wider than the page.

    ``steps``: a step-by-step table (``dvl-steps``): cells left-aligned on one line, the taken one outlined (``dvl-taken``).
    """
    classes = "dvl-matrix dvl-steps" if steps else "dvl-matrix"
    return f"<div class='dvl-scroll'><table class='{classes}'><caption>{caption}</caption>{head}{''.join(rows)}</table></div>"


_BORDER = "1px solid rgba(128,128,128,0.45)"
_HIGHLIGHT_BG = "rgba(255,165,0,0.38)"


def number_text(v: float) -> str:
    """A matrix entry, short: integers without a point, others to three significant digits, -0 as 0."""
    if v == 0:
        return "0"  # also turns -0.0 into 0
    if float(v).is_integer() and abs(v) < 1e6:
        return str(int(v))
    return f"{v:.3g}"


def matrix_to_html(m, highlight: Iterable[tuple[int, int]] | np.ndarray | None = None,
                   caption: str | None = None) -> str:
    """Render a small matrix as an HTML table with inline styles only (works offline, in
    light and dark themes: neutral borders, inherited text colour).

    ``highlight`` is an iterable of ``(row, col)`` cells or a boolean mask of the matrix's
    shape; those cells get a translucent orange background. Zeros are dimmed so that
    the structure (bed of nails, unpooling) stands out. ``caption`` goes above.
    """
    a = np.asarray(m, dtype=np.float64)
    if a.ndim == 1:
        a = a[None, :]
    marked: set[tuple[int, int]] = set()
    if highlight is not None:
        h = np.asarray(highlight)
        if h.dtype == bool:
            if h.shape != a.shape:
                raise ValueError(f"Highlight mask {h.shape} does not match matrix {a.shape}.")
            marked = {(int(r), int(c)) for r, c in zip(*np.nonzero(h))}
        else:
            marked = {(int(r), int(c)) for r, c in highlight}
    cell = (f"border:{_BORDER};padding:3px 8px;text-align:right;min-width:1.8em;"
            "color:inherit;")
    rows = []
    for i in range(a.shape[0]):
        tds = []
        for j in range(a.shape[1]):
            style = cell
            if (i, j) in marked:
                style += f"background:{_HIGHLIGHT_BG};font-weight:600;"
            elif a[i, j] == 0:
                style += "opacity:0.45;"
            tds.append(f'<td style="{style}">{number_text(a[i, j])}</td>')
        rows.append("<tr>" + "".join(tds) + "</tr>")
    cap = (f'<caption style="caption-side:top;padding:2px 0 4px;font-size:0.85em;'
           f'opacity:0.8;color:inherit;">{html.escape(caption)}</caption>') if caption else ""
    return (
        '<table style="border-collapse:collapse;font-family:monospace;'
        'font-variant-numeric:tabular-nums;background:transparent;color:inherit;'
        f'margin:0;">{cap}' + "".join(rows) + "</table>"
    )
