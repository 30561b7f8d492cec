"""Pixel-level drawing for ShapesWorld: backgrounds, shape masks, stick figures, shading.

Masks are drawn without anti-aliasing, and the image is painted *through* those masks, so
every annotation matches the pixels exactly. Drawing happens on a supersampled-free grid
on purpose: a model is never asked to guess a label for a half-covered pixel.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw


def smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """A smooth random field in [0, 1] of shape (size, size): coarse noise, bilinearly upsampled."""
    coarse = rng.random((cells, cells)).astype(np.float32)
    field = Image.fromarray(coarse, mode="F").resize((size, size), Image.Resampling.BICUBIC)
    return np.clip(np.asarray(field), 0.0, 1.0)


def background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A textured, varied background (float32 HxWx3 in [0, 255]).

    Two random colours blended by a smooth noise field, optionally overlaid with stripes or a
    checkerboard of random phase, so that neither colour nor flatness gives the objects away.
    """
    low = rng.uniform(30, 225, size=3)
    high = rng.uniform(30, 225, size=3)
    blend = smooth_noise(rng, size, int(rng.integers(2, 7)))[..., None]
    img = low * (1 - blend) + high * blend
    pattern = rng.integers(0, 3)
    if pattern:
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        period = rng.uniform(0.06, 0.2) * size
        if pattern == 1:
            angle = rng.uniform(0, math.pi)
            wave = np.sin((xx * math.cos(angle) + yy * math.sin(angle)) * 2 * math.pi / period)
        else:
            wave = np.sign(np.sin(xx * math.pi / period) * np.sin(yy * math.pi / period))
        img = img + wave[..., None] * rng.uniform(8, 30)
    return img.astype(np.float32)


def _regular_polygon(cx: float, cy: float, r: float, sides: int, rotation: float) -> list[tuple[float, float]]:
    return [
        (cx + r * math.cos(rotation + 2 * math.pi * i / sides), cy + r * math.sin(rotation + 2 * math.pi * i / sides))
        for i in range(sides)
    ]


def _star(cx: float, cy: float, r: float, rotation: float) -> list[tuple[float, float]]:
    points = []
    for i in range(10):
        radius = r if i % 2 == 0 else r * 0.45
        angle = rotation + math.pi * i / 5
        points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    return points


def shape_mask(shape: str, size: int, cx: float, cy: float, r: float, rotation: float) -> np.ndarray:
    """Boolean mask (size x size) of one shape centred at (cx, cy) with outer radius r."""
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
    elif shape == "ring":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
        inner = r * 0.55
        draw.ellipse((cx - inner, cy - inner, cx + inner, cy + inner), fill=0)
    elif shape == "square":
        draw.polygon(_regular_polygon(cx, cy, r * 1.05, 4, rotation), fill=255)
    elif shape == "triangle":
        draw.polygon(_regular_polygon(cx, cy, r * 1.1, 3, rotation), fill=255)
    elif shape == "star":
        draw.polygon(_star(cx, cy, r * 1.15, rotation), fill=255)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return np.asarray(canvas) > 0


def stick_figure_mask(
    size: int, keypoints: np.ndarray, limbs: list[tuple[int, int]], head_radius: float, width: int
) -> np.ndarray:
    """Boolean mask of a stick figure: thick limbs between keypoints and a filled head."""
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    for a, b in limbs:
        draw.line([tuple(keypoints[a]), tuple(keypoints[b])], fill=255, width=width)
        for x, y in (keypoints[a], keypoints[b]):  # round joints, so limbs meet without notches
            draw.ellipse((x - width / 2, y - width / 2, x + width / 2, y + width / 2), fill=255)
    hx, hy = keypoints[0]
    draw.ellipse((hx - head_radius, hy - head_radius, hx + head_radius, hy + head_radius), fill=255)
    return np.asarray(canvas) > 0


def paint(
    img: np.ndarray, mask: np.ndarray, rgb: np.ndarray, rng: np.random.Generator, box: tuple[int, int, int, int]
) -> None:
    """Paint ``rgb`` into ``img`` through ``mask``, with a random linear shading across the object.

    Shading stops a model from matching one exact RGB value; it must look at colour *and* form.
    """
    x0, y0, x1, y1 = box
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    span = max(x1 - x0, y1 - y0, 1)
    ramp = ((xx - x0) * math.cos(angle) + (yy - y0) * math.sin(angle)) / span
    shade = 1.0 + rng.uniform(0.1, 0.3) * (ramp - 0.5)
    region = mask[y0:y1, x0:x1]
    patch = img[y0:y1, x0:x1]
    patch[region] = (rgb[None, None, :] * shade[..., None])[region]
