"""Drawing optical flow: torchvision's colour coding with its colour wheel, arrows on a grid, a strip of RAFT's updates.

Colours come from ``torchvision.utils.flow_to_image`` (the Middlebury colour wheel: hue is the
direction, saturation the length). It scales by the largest vector it is given, so flows meant to
be compared (the prediction, the truth, each update) are coloured in one call, and the wheel is
drawn by the same function over a disc as large as that largest vector: its rim is that many px.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torchvision.utils import flow_to_image

from . import drawing

WHEEL = 96  # side of the colour wheel, px


def flow_colours(*flows: np.ndarray, radius: float | None = None) -> tuple[list[np.ndarray], float]:
    """Each (H, W, 2) flow as uint8 RGB on one shared scale, and that scale: the longest vector (or ``radius``), in px."""
    longest = max(float(np.sqrt((f.astype(np.float64) ** 2).sum(-1)).max()) for f in flows)
    scale = radius or max(longest, 1e-6)
    pictures = []
    for flow in flows:
        tensor = torch.from_numpy(np.clip(flow / scale, -1, 1).astype(np.float32)).permute(2, 0, 1)
        marker = torch.zeros(2, tensor.shape[1], 1)  # one column holding a unit vector pins the scale
        marker[0, 0, 0] = 1.0
        picture = flow_to_image(torch.cat([tensor, marker], dim=2))[:, :, :-1]
        pictures.append(picture.permute(1, 2, 0).numpy())
    return pictures, scale


def wheel(scale: float, side: int = WHEEL) -> Image.Image:
    """The colour wheel: the colour of a vector at each point of a disc whose rim is ``scale`` px long, with its legend."""
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    centre = (side - 1) / 2
    vectors = np.stack([(xx - centre) / centre, (yy - centre) / centre], axis=-1)
    inside = np.sqrt((vectors**2).sum(-1)) <= 1
    colours = flow_colours(vectors * inside[..., None], radius=1.0)[0][0]
    colours[~inside] = 255
    font = ImageFont.load_default(size=11)
    canvas = Image.new("RGB", (side + 40, side + 42), (255, 255, 255))
    canvas.paste(Image.fromarray(colours), (0, 0))
    ImageDraw.Draw(canvas).text((2, side + 2), f"rim = {scale:.1f} px\nmoving toward a side:\nthat side's colour", fill=(40, 40, 40), font=font)
    return canvas


def with_wheel(picture: np.ndarray, scale: float, target: int = 384) -> Image.Image:
    """A flow picture enlarged for display, with the colour wheel beside it."""
    shown = drawing.upscale_for_display(Image.fromarray(picture), target)
    key = wheel(scale)
    canvas = Image.new("RGB", (shown.width + key.width + 8, max(shown.height, key.height)), (255, 255, 255))
    canvas.paste(shown, (0, 0))
    canvas.paste(key, (shown.width + 8, 0))
    return canvas


def arrows(image: Image.Image, flow: np.ndarray, step: int | None = None, target: int = 512) -> Image.Image:
    """Frame 1 with the flow drawn as arrows from a grid of points, at their true length (in the enlarged picture's px)."""
    shown = drawing.upscale_for_display(image.convert("RGB"), target)
    h, w = flow.shape[:2]
    zoom = shown.width / w
    step = step or max(4, round(max(h, w) / 20))
    draw = ImageDraw.Draw(shown)
    width = max(1, round(shown.width / 300))
    for y in range(step // 2, h, step):
        for x in range(step // 2, w, step):
            dx, dy = flow[y, x]
            x0, y0 = (x + 0.5) * zoom, (y + 0.5) * zoom
            x1, y1 = x0 + dx * zoom, y0 + dy * zoom
            draw.ellipse((x0 - width, y0 - width, x0 + width, y0 + width), fill=(255, 255, 255))
            if math.hypot(dx, dy) * zoom < 2:
                continue
            draw.line((x0, y0, x1, y1), fill=(255, 255, 255), width=width + 2)
            draw.line((x0, y0, x1, y1), fill=(220, 30, 30), width=width)
            angle, head = math.atan2(y1 - y0, x1 - x0), 4 * width + 2
            for side in (-0.5, 0.5):
                draw.line((x1, y1, x1 - head * math.cos(angle + side), y1 - head * math.sin(angle + side)), fill=(220, 30, 30), width=width)
    return shown


def strip(pictures: list[np.ndarray], captions: list[str], tile: int = 160) -> Image.Image:
    """Pictures side by side, each enlarged to ``tile`` px and captioned below (RAFT's updates, in order), wrapped in rows of 6."""
    per_row = min(6, len(pictures))
    rows = math.ceil(len(pictures) / per_row)
    high = max(1, round(tile * pictures[0].shape[0] / pictures[0].shape[1]))
    font = ImageFont.load_default(size=13)
    canvas = Image.new("RGB", (per_row * (tile + 6), rows * (high + 22)), (255, 255, 255))
    for i, (picture, caption) in enumerate(zip(pictures, captions)):
        x, y = (i % per_row) * (tile + 6), (i // per_row) * (high + 22)
        canvas.paste(Image.fromarray(picture).resize((tile, high), Image.Resampling.NEAREST), (x, y))
        ImageDraw.Draw(canvas).text((x + 2, y + high + 3), caption, fill=(30, 30, 30), font=font)
    return canvas
