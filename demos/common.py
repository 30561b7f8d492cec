"""Shared pieces of every tab: the model picker, examples, error handling, progress, drawing.

A tab module wires widgets and calls pure functions; anything two tabs would otherwise both
write (a palette, an overlay, a legend, a feature-map grid) lives here once.
"""

from __future__ import annotations

import functools
import hashlib
import html
import logging
import os
import tempfile
from pathlib import Path
from typing import Callable, ParamSpec, TypeVar

import gradio as gr
import numpy as np
from PIL import Image

import models
import shapesworld

from .inputs import BadInput, load_image

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")

MAX_IMAGE_SIDE = int(os.environ.get("DVL_MAX_IMAGE_SIDE", "1024"))
OUTPUT_DIR = Path(tempfile.gettempdir()) / "deep-vision-lab"

# ---------------------------------------------------------------- input and errors


def read_image(source) -> Image.Image:
    """Every uploaded image goes through here once: normalised to RGB, clamped, validated."""
    return load_image(source, max_side=MAX_IMAGE_SIDE)


def user_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn expected failures into a clear message in the page (``gr.Error``), never a stack trace.

    Unexpected exceptions are logged with their traceback on the server and reported to the
    user as a short, honest sentence; the server keeps serving either way.
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (BadInput, models.WeightsUnavailable, ValueError, KeyError) as error:
            raise gr.Error(str(error).strip("'\"")) from None
        except Exception as error:  # noqa: BLE001 - last line of defence for the web page
            log.exception("unexpected error in %s", fn.__name__)
            raise gr.Error(f"The model failed on this input ({type(error).__name__}). Try another image or model.") from None

    return wrapper


def load_model(name: str, progress: gr.Progress | None = None):
    """``models.get`` with the loading step shown in the page's progress bar."""
    on_load = (lambda message: progress(0, desc=message)) if progress is not None else None
    return models.get(name, on_load=on_load)


def image_key(image: Image.Image) -> str:
    """A content hash, so derived results (predictions) can be cached per image."""
    return f"{hashlib.blake2b(image.tobytes(), digest_size=16).hexdigest()}-{image.width}x{image.height}"


def save_output(image: Image.Image, stem: str) -> str:
    """Write a result file users can download; Gradio serves files from the temp folder."""
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(prefix=f"{stem}-", suffix=".png", dir=OUTPUT_DIR, delete=False)
    with handle:
        image.save(handle, format="PNG")
    return handle.name


# ---------------------------------------------------------------- model picker


def _picker_choices(task: str) -> list[tuple[str, str]]:
    return [(spec.label, spec.name) for spec in models.for_task(task)]


def model_picker(task: str, label: str = "Model") -> gr.Dropdown:
    """A dropdown of the task's models showing tier and availability, set to the best usable one.

    The labels are refreshed on every page load, so a model downloaded since start-up shows as cached.
    """
    picker = gr.Dropdown(
        choices=_picker_choices(task),
        value=models.default_for(task).name,
        label=label,
        info="local = trained here on ShapesWorld, runs offline · pretrained = canonical public weights",
    )
    gr.on(None, lambda: gr.update(choices=_picker_choices(task)), None, picker, api_visibility="private", show_progress="hidden")
    return picker


def model_card_markdown(name: str) -> str:
    """A short description of a model: tier, source, licence, size, metrics."""
    spec = models.spec(name)
    metrics = ", ".join(f"{k}: {v}" for k, v in spec.metrics.items() if v is not None) or "—"
    return (
        f"**{spec.title}** · {spec.tier} · {spec.availability().value}  \n"
        f"{spec.params / 1e6:.2f} M parameters · licence: {spec.license}  \n"
        f"metrics: {metrics}  \n"
        f"code: {spec.about}"
    )


# ---------------------------------------------------------------- examples

SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")


@functools.cache
def example_images(shapes_count: int = 3) -> list[str]:
    """Example files: unseen ShapesWorld test scenes and the real photos shipped with scikit-image."""
    folder = OUTPUT_DIR / "examples"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    test_start = shapesworld.SPLITS["test"].start
    for seed in range(test_start, test_start + shapes_count):
        path = folder / f"shapesworld-{seed}.png"
        if not path.exists():
            Image.fromarray(shapesworld.generate(seed).image).save(path)
        paths.append(str(path))
    try:
        from skimage import data as skdata
    except ImportError:  # the photos are a nicety; ShapesWorld examples always work
        return paths
    for name in SKIMAGE_PHOTOS:
        path = folder / f"{name}.jpg"
        if not path.exists():
            Image.fromarray(getattr(skdata, name)()).convert("RGB").save(path, quality=92)
        paths.append(str(path))
    return paths


# ---------------------------------------------------------------- drawing


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
