"""What a tab's handlers share around the model: the image read in, the model loaded, the result file written out, a count slider.

A tab module wires widgets and calls pure functions; anything two tabs would otherwise both
write lives in a shared module once, one job each: here (inputs, models, files), ``errors``
(failures shown in the page), ``gpu`` (ZeroGPU), ``wiring`` (a tab's events), ``picker`` (the
model picker and card), ``examples``, ``drawing`` (palettes, overlays, boxes, heat maps) and
``legends`` (legends and tables in HTML).
"""

from __future__ import annotations

import hashlib
import json
import tempfile

import gradio as gr
from PIL import Image

import models
import settings

from .files import OUTPUT_DIR
from .inputs import load_image


# ---------------------------------------------------------------- input, model and result file


def read_image(source) -> Image.Image:
    """Every uploaded image goes through here once: normalised to RGB, clamped, validated."""
    return load_image(source, max_side=settings.max_image_side())


def load_model(name: str, progress: gr.Progress | None = None):
    """``models.get`` with the loading step shown in the page's progress bar."""
    on_load = (lambda message: progress(0, desc=message)) if progress is not None else None
    return models.get(name, on_load=on_load)


def image_key(image: Image.Image) -> str:
    """A content hash, so derived results (predictions) can be cached per image."""
    return f"{hashlib.blake2b(image.tobytes(), digest_size=16).hexdigest()}-{image.width}x{image.height}"


def save_output(result: Image.Image | dict | list | bytes, stem: str, suffix: str = ".bin") -> str:
    """Write a result file users can download (an image as PNG, data as JSON, bytes with ``suffix``); Gradio serves it from the temp folder."""
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    is_image, is_bytes = isinstance(result, Image.Image), isinstance(result, bytes)
    suffix = ".png" if is_image else suffix if is_bytes else ".json"
    handle = tempfile.NamedTemporaryFile(prefix=f"{stem}-", suffix=suffix, dir=OUTPUT_DIR, delete=False)
    with handle:
        if is_image:
            result.save(handle, format="PNG")
        else:
            handle.write(result if is_bytes else json.dumps(result, indent=1).encode())
    return handle.name


# ---------------------------------------------------------------- settings


def int_slider(minimum: int, maximum: int, value: int, *, label: str, step: int = 1, **kwargs) -> gr.Slider:
    """A slider for a count (k, steps, beams, captions, detections, images): whole numbers in the page and the API.

    Gradio types a slider's API parameter ``integer``, and hands the handler an ``int``, only with
    ``precision=0``; without it a count reads ``float`` in ``/gradio_api/info`` and in every client.
    """
    return gr.Slider(minimum, maximum, value=value, step=step, precision=0, label=label, **kwargs)
