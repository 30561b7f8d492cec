"""Legends shared by the tabs: what each colour means, and how much of the image it covers."""

from __future__ import annotations

import html

import numpy as np


def class_shares(labels: np.ndarray, categories: list[str]) -> dict[str, float]:
    """Fraction of pixels per class present in ``labels``, largest first."""
    counts = np.bincount(labels.ravel(), minlength=len(categories))
    total = max(int(counts.sum()), 1)
    shares = {categories[i]: round(float(counts[i]) / total, 4) for i in np.flatnonzero(counts)}
    return dict(sorted(shares.items(), key=lambda kv: -kv[1]))


def legend_html(shares: dict[str, float], categories: list[str], colours: np.ndarray) -> str:
    """A legend: swatch, class name and a bar with its share of the pixels."""
    rows = []
    for name, share in shares.items():
        r, g, b = colours[categories.index(name)]
        rows.append(
            "<div class='dvl-legend-row'>"
            f"<span class='dvl-swatch' style='background:rgb({r},{g},{b})'></span>"
            f"<span class='dvl-legend-name'>{html.escape(name)}</span>"
            f"<span class='dvl-bar'><span style='width:{share * 100:.1f}%;background:rgb({r},{g},{b})'></span></span>"
            f"<span class='dvl-legend-share'>{share * 100:.1f}%</span></div>"
        )
    return "<div class='dvl-legend'>" + "".join(rows) + "</div>"
