"""Drawing shared by the tabs: a fixed class palette, mask overlays, heat maps, feature-map grids, boxes.

Colours come from a fixed table (PASCAL VOC's colour map), never from ``hash()``, so a class
keeps its colour across processes and restarts.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def class_colour(index: int) -> tuple[int, int, int]:
    """A fixed colour per class index: the PASCAL VOC colour map, the same in every process."""
    r = g = b = 0
    c = index
    for shift in range(7, -1, -1):
        r |= ((c >> 0) & 1) << shift
        g |= ((c >> 1) & 1) << shift
        b |= ((c >> 2) & 1) << shift
        c >>= 3
    return r, g, b


def palette(count: int) -> np.ndarray:
    return np.array([class_colour(i) for i in range(count)], dtype=np.uint8)


def overlay_labels(image: Image.Image, labels: np.ndarray, opacity: float, colours: np.ndarray) -> Image.Image:
    """Blend class colours over the image; class 0 (background) stays uncoloured."""
    base = np.asarray(image.convert("RGB"), dtype=np.float32)
    colour = colours[labels].astype(np.float32)
    alpha = (labels > 0)[..., None] * float(np.clip(opacity, 0.0, 1.0))
    return Image.fromarray((base * (1 - alpha) + colour * alpha).round().astype(np.uint8))


def indexed_mask(labels: np.ndarray, colours: np.ndarray) -> Image.Image:
    """A palette PNG: pixel values are class indices (for code), the palette makes it viewable."""
    mask = Image.fromarray(labels.astype(np.uint8), mode="P")
    flat = np.zeros((256, 3), np.uint8)
    flat[: len(colours)] = colours
    mask.putpalette(flat.ravel().tolist())
    return mask


_HEAT_STOPS = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], np.float32)


def heatmap(values: np.ndarray, value_range: tuple[float, float] | None = None) -> np.ndarray:
    """Map a 2-D array to an 'inferno'-like RGB image, over ``value_range`` or the array's own range."""
    v = values.astype(np.float32)
    low_value, high_value = value_range if value_range else (float(v.min()), float(v.max()))
    span = high_value - low_value
    v = np.clip((v - low_value) / span, 0, 1) if span > 0 else np.zeros_like(v)
    position = v * (len(_HEAT_STOPS) - 1)
    low = np.floor(position).astype(int).clip(0, len(_HEAT_STOPS) - 2)
    frac = (position - low)[..., None]
    return (_HEAT_STOPS[low] * (1 - frac) + _HEAT_STOPS[low + 1] * frac).astype(np.uint8)


class HeatScale(NamedTuple):
    """What a heat map's colours mean: ``low`` and ``high`` are the values at the two ends of the colour map.

    A plain tuple ``(low, high, "what the value is")`` works wherever a ``HeatScale`` is asked for.
    """

    low: float
    high: float
    meaning: str


def heat_overlay(
    image: Image.Image, values: np.ndarray, opacity: float = 0.55, target: int = 384, scale: HeatScale | tuple | None = None
) -> Image.Image:
    """A coarse map (a ViT's patch grid, a keypoint's probabilities) blended over ``image``, smoothly upsampled.

    Small images are enlarged first (``upscale_for_display``), so a 128 px scene's map is readable.
    With ``scale`` the values are coloured over ``scale``'s range and a colour bar saying what they
    mean is drawn beside the image (``with_colour_bar``); without it they are taken to lie in [0, 1]
    and no bar is drawn.
    """
    scale = HeatScale(*scale) if scale is not None else None
    base = upscale_for_display(image, target)
    value_range = (scale.low, scale.high) if scale else (0.0, 1.0)
    heat = Image.fromarray(heatmap(values, value_range)).resize(base.size, Image.Resampling.BICUBIC)
    blended = Image.blend(base, heat, opacity)
    return with_colour_bar(blended, scale) if scale else blended


def heat_image(values: np.ndarray, scale: HeatScale | tuple, target: int = 384) -> Image.Image:
    """A heat map alone (no photo under it), each value a crisp pixel, enlarged to about ``target``, with its colour bar."""
    scale = HeatScale(*scale)
    return with_colour_bar(upscale_for_display(Image.fromarray(heatmap(values, (scale.low, scale.high))), target), scale)


def with_colour_bar(image: Image.Image, scale: HeatScale | tuple) -> Image.Image:
    """``image`` with ``colour_bar`` beside it on the right, the bar as tall as the image."""
    bar = colour_bar(image.height, scale)
    canvas = Image.new("RGB", (image.width + bar.width, image.height), (255, 255, 255))
    canvas.paste(image.convert("RGB"), (0, 0))
    canvas.paste(bar, (image.width, 0))
    return canvas


def colour_bar(height: int, scale: HeatScale | tuple) -> Image.Image:
    """A vertical colour bar ``height`` pixels tall: the colour map (high at the top), ticks labelled with values, and what they mean.

    Text is sized from ``height`` so the bar stays readable when the page scales the whole picture
    down to a phone's width; the meaning is written along the bar, as in a plotted figure.
    """
    scale = HeatScale(*scale)
    size = max(11, round(height / 24))
    font = ImageFont.load_default(size=size)
    pad, strip, tick = size // 2, max(10, size), max(3, size // 3)
    top, bottom = size, height - size  # room for the end labels' half heights
    ticks = 5 if bottom - top >= 8 * size else 3 if bottom - top >= 3 * size else 2
    values = np.linspace(scale.high, scale.low, ticks)
    labels = [_tick_label(v) for v in values]
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_width = max(probe.textlength(text, font=font) for text in labels)
    title = _fitted_title(scale.meaning, bottom - top, size)
    width = pad + strip + tick + 3 + int(np.ceil(label_width)) + pad + (title.width + pad if title else 0)
    bar = Image.new("RGB", (width, height), (255, 255, 255))
    ramp = np.linspace(1.0, 0.0, max(bottom - top, 1))[:, None].repeat(strip, axis=1)
    bar.paste(Image.fromarray(heatmap(ramp, (0.0, 1.0))), (pad, top))
    draw = ImageDraw.Draw(bar)
    ink = (40, 40, 40)
    draw.rectangle((pad - 1, top - 1, pad + strip, bottom), outline=ink)
    for value, text in zip(values, labels):
        frac = (scale.high - value) / (scale.high - scale.low) if scale.high != scale.low else 0.0
        y = round(top + frac * (bottom - top - 1))
        draw.line((pad + strip, y, pad + strip + tick, y), fill=ink, width=1)
        draw.text((pad + strip + tick + 3, y), text, fill=ink, font=font, anchor="lm")
    if title:
        bar.paste(title, (width - pad - title.width, (height - title.height) // 2))
    return bar


def _tick_label(value: float) -> str:
    """A tick's value in at most three significant digits, without a stray minus sign on zero."""
    text = f"{value:.3g}"
    return "0" if text == "-0" else text


def _fitted_title(text: str, length: int, size: int) -> Image.Image | None:
    """``text`` rotated to read upwards along a bar ``length`` pixels long: shrunk, then broken into lines, to fit."""
    if not text:
        return None
    font, lines = ImageFont.load_default(size=size), [text]
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    while size > 10 and probe.textlength(text, font=font) > length:
        size -= 1
        font = ImageFont.load_default(size=size)
    if probe.textlength(text, font=font) > length:  # still too long: as many words per line as fit
        lines = []
        for word in text.split():
            if lines and probe.textlength(f"{lines[-1]} {word}", font=font) <= length:
                lines[-1] = f"{lines[-1]} {word}"
            else:
                lines.append(word)
    spacing = round(size * 1.25)
    flat = Image.new("RGB", (max(1, min(length, round(max(probe.textlength(line, font=font) for line in lines)))), spacing * len(lines)), (255, 255, 255))
    draw = ImageDraw.Draw(flat)
    for i, line in enumerate(lines):
        draw.text((flat.width / 2, i * spacing + spacing / 2), line, fill=(40, 40, 40), font=font, anchor="mm")
    return flat.rotate(90, expand=True)


def channel_grid(maps: np.ndarray, max_channels: int = 16, tile: int = 64, gap: int = 2) -> Image.Image:
    """Tile the first channels of a (C, H, W) feature map into one image, each channel normalised.

    Each channel gets its own colour scale: the point is *where* a channel fires, not how much
    compared with another channel.
    """
    shown = maps[:max_channels]
    columns = int(np.ceil(np.sqrt(len(shown))))
    rows = int(np.ceil(len(shown) / columns))
    canvas = np.full((rows * (tile + gap) - gap, columns * (tile + gap) - gap, 3), 255, np.uint8)
    for i, channel in enumerate(shown):
        cell = Image.fromarray(heatmap(channel)).resize((tile, tile), Image.Resampling.NEAREST)
        y, x = divmod(i, columns)
        canvas[y * (tile + gap) : y * (tile + gap) + tile, x * (tile + gap) : x * (tile + gap) + tile] = np.asarray(cell)
    return Image.fromarray(canvas)


def display_scale(size: tuple[int, int], target: int = 512) -> int:
    """Integer upscale that brings a small image's longer side near ``target`` (1 for large ones).

    Boxes and text are drawn *after* upscaling with nearest neighbour, so a 128 px scene gets
    crisp pixels, thin lines and readable labels instead of a blurry, blocky overlay.
    """
    return max(1, target // max(size))


def upscale_for_display(image: Image.Image, target: int = 512) -> Image.Image:
    """``image`` enlarged by ``display_scale`` with nearest neighbour: every drawing of a small image starts here."""
    scale = display_scale(image.size, target)
    image = image.convert("RGB")
    return image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST) if scale > 1 else image


def text_colour(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white, whichever reads better on ``rgb`` (relative luminance)."""
    r, g, b = rgb
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 150 else (255, 255, 255)


def draw_boxes(
    image: Image.Image,
    boxes: np.ndarray,
    captions: list[str],
    colours: list[tuple[int, int, int]],
    faint: list[bool] | None = None,
    fills: list[float] | None = None,
) -> Image.Image:
    """Boxes with a caption tag each, sized for the image: readable on a 128 px scene and a 2000 px photo.

    ``faint`` boxes (e.g. suppressed candidates) get a thin outline and no tag; ``fills`` tint
    each box's inside with its colour at that opacity.
    """
    scale = display_scale(image.size)
    canvas = upscale_for_display(image)
    longer = max(canvas.size)
    line = max(2, round(longer / 250))
    font = ImageFont.load_default(size=max(14, round(longer / 28)))
    draw = ImageDraw.Draw(canvas, "RGBA")
    faint = faint or [False] * len(captions)
    order = sorted(range(len(captions)), key=lambda i: not faint[i])  # faint first, so solid boxes stay on top
    for i in order:
        x0, y0, x1, y1 = (float(v) * scale for v in boxes[i])
        colour = tuple(int(c) for c in colours[i])
        if fills and fills[i]:
            draw.rectangle((x0, y0, x1, y1), fill=(*colour, int(255 * fills[i])))
        if faint[i]:
            draw.rectangle((x0, y0, x1, y1), outline=(*colour, 170), width=max(1, line // 2))
            continue
        draw.rectangle((x0, y0, x1, y1), outline=colour, width=line)
        if captions[i]:
            left, top, right, bottom = draw.textbbox((0, 0), captions[i], font=font)
            w, h = right - left + 2 * line, bottom - top + 2 * line
            ty = y0 - h if y0 - h >= 0 else y0  # above the box, or inside it at the top edge
            tx = min(x0, canvas.width - w)
            draw.rectangle((tx, ty, tx + w, ty + h), fill=colour)
            draw.text((tx + line - left, ty + line - top), captions[i], fill=text_colour(colour), font=font)
    return canvas


def draw_masks(image: Image.Image, masks: np.ndarray, colours: list[tuple[int, int, int]], alpha: float = 0.55) -> Image.Image:
    """Instance masks (N, H, W bool), each in its own colour, through torchvision's ``draw_segmentation_masks``."""
    if not len(masks):
        return image.convert("RGB")
    import torch
    from torchvision.utils import draw_segmentation_masks

    pixels = torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1)
    drawn = draw_segmentation_masks(pixels, torch.from_numpy(masks.astype(bool)), alpha=alpha, colors=[tuple(map(int, c)) for c in colours])
    return Image.fromarray(drawn.permute(1, 2, 0).numpy())


def draw_skeletons(
    canvas: Image.Image,
    keypoints: np.ndarray,
    confident: np.ndarray,
    skeleton: list[tuple[int, int]],
    colours: list[tuple[int, int, int]],
) -> Image.Image:
    """Stick figures through torchvision's ``draw_keypoints``: confident joints and limbs solid, the rest faded.

    ``keypoints`` (N, K, 2) are in ``canvas`` pixels; ``confident`` (N, K) bool. A limb is solid
    only when both its joints are confident.
    """
    if not len(keypoints):
        return canvas
    import torch
    from torchvision.utils import draw_keypoints

    longer = max(canvas.size)
    radius, width = max(2, round(longer / 160)), max(2, round(longer / 220))
    pixels = torch.from_numpy(np.array(canvas.convert("RGB"))).permute(2, 0, 1)
    faded = pixels
    for points, colour in zip(keypoints, colours):
        faded = draw_keypoints(faded, torch.from_numpy(points[None]).float(), skeleton, tuple(map(int, colour)), radius, width)
    pixels = (pixels.float() * 0.6 + faded.float() * 0.4).round().byte()  # every joint, faint
    for points, sure, colour in zip(keypoints, confident, colours):
        pixels = draw_keypoints(
            pixels, torch.from_numpy(points[None]).float(), skeleton, tuple(map(int, colour)), radius, width, visibility=torch.from_numpy(sure[None])
        )
    return Image.fromarray(pixels.permute(1, 2, 0).numpy())


def embedding_scatter(
    image_points: np.ndarray,
    thumbnails: list[Image.Image],
    text_points: np.ndarray,
    texts: list[str],
    highlighted: set[int] = frozenset(),
    size: tuple[int, int] = (760, 520),
    thumb: int = 56,
    dots: tuple[np.ndarray, list[tuple[int, int, int]]] | None = None,
    text_colours: list[tuple[int, int, int]] | None = None,
) -> Image.Image:
    """A 2-D map of embeddings: each image drawn as a thumbnail where it lands, each text as a dot and its words.

    The picture a student needs: the image sits next to the words that describe it. Texts in
    ``highlighted`` are drawn dark and on top of everything, each moved up or down off the ones
    already drawn so none hides another; the rest faint and beneath the images, so a long label
    list stays legible. ``dots``: more points, each a small disc of its own colour (a gallery
    coloured by class), drawn first. ``text_colours``: each highlighted text's dot colour (the
    class colour of a gallery's class name), orange by default.
    """
    width, height = size
    canvas = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=14)
    points = np.concatenate([image_points, text_points, *([dots[0]] if dots else [])]).astype(np.float64)
    low, high = points.min(axis=0), points.max(axis=0)
    span = np.where(high - low > 1e-9, high - low, 1.0)
    margin = thumb // 2 + 8

    def place(p: np.ndarray) -> tuple[int, int]:
        x, y = (p - low) / span
        return round(margin + x * (width - 2 * margin - 90)), round(height - margin - y * (height - 2 * margin))

    placed: list[tuple[int, int, int, int]] = []  # the highlighted labels' boxes so far

    def free_spot(x: int, y: int, text: str) -> tuple[int, int]:
        """Where ``text`` goes beside the point (x, y): the nearest height, in half-line steps, that hides no label drawn before."""
        for shift in (0, *(sign * step * 9 for step in range(1, 9) for sign in (1, -1))):
            box = draw.textbbox((x + 6, y - 8 + shift), text, font=font)
            if not any(box[0] < b[2] + 2 and b[0] < box[2] + 2 and box[1] < b[3] + 2 and b[1] < box[3] + 2 for b in placed):
                return x + 6, y - 8 + shift
        return x + 6, y - 8

    def label(i: int) -> None:
        x, y = place(text_points[i])
        dark = i in highlighted
        ink = (30, 30, 30) if dark else (185, 185, 185)
        draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=(text_colours[i] if text_colours else (230, 120, 30)) if dark else ink)
        at = (x + 6, y - 8)
        if dark:  # on a white patch: it may sit on an image
            at = free_spot(x, y, texts[i])
            left, top, right, bottom = draw.textbbox(at, texts[i], font=font)
            if at[1] != y - 8:  # moved: a thin line back to its point
                draw.line((x, y, left - 1, (top + bottom) // 2), fill=(120, 120, 120))
            draw.rectangle((left - 1, top - 1, right + 1, bottom + 1), fill=(255, 255, 255))
            placed.append((left, top, right, bottom))
        draw.text(at, texts[i], fill=ink, font=font)

    for p, colour in zip(*dots) if dots else ():
        x, y = place(p)
        draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=colour)
    for i in range(len(texts)):
        if i not in highlighted:
            label(i)
    for p, image in zip(image_points, thumbnails):
        x, y = place(p)
        small = image.convert("RGB").copy()
        small.thumbnail((thumb, thumb))
        left, top = x - small.width // 2, y - small.height // 2
        draw.rectangle((left - 3, top - 3, left + small.width + 2, top + small.height + 2), fill=(40, 90, 200))
        canvas.paste(small, (left, top))
    for i in sorted(highlighted):
        label(i)
    return canvas
