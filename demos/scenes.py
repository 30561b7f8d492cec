"""ShapesWorld inputs in the page: a "New unseen scene" button, and the ground truth of an input that is one.

A tab that takes a ShapesWorld scene offers a button that draws one from a random unseen seed
(the test split, past the seeds used as examples), and shows that scene's ground truth beside
the prediction. An input counts as a scene only when its pixels are exactly what its seed
renders: the file name (``shapesworld-<seed>.png``) proposes a seed, the pixels confirm it, so a
renamed photo never gets a made-up ground truth.
"""

from __future__ import annotations

import functools
import random
import re
from pathlib import Path
from typing import Callable

import gradio as gr
import numpy as np
from PIL import Image

import shapesworld

from .files import examples_folder

SCENE_NAME = re.compile(r"shapesworld-(\d+)\.png$")
OBJECT_NAME = re.compile(r"shapesworld-object-(\d+)\.png$")
OBJECT_SIDE = 64  # the side single objects are drawn at, as the local CLIP and retrieval models saw them
FIRST_DRAWN = 1_000  # test seeds below this one are left to the examples


def random_unseen_seed() -> int:
    """A seed of the test split that no local model trained on (and no example uses)."""
    test = shapesworld.SPLITS["test"]
    return random.randrange(test.start + FIRST_DRAWN, test.stop)


@functools.lru_cache(maxsize=64)
def scene(seed: int) -> shapesworld.Scene:
    """The scene of ``seed`` (cached: a page asks for the same scene's truth at every redraw)."""
    return shapesworld.generate(seed)


def scene_file(seed: int) -> str:
    """The PNG of scene ``seed`` in the examples folder (spared by the file sweep), written once."""
    path = examples_folder() / f"shapesworld-{seed}.png"
    if not path.exists():
        Image.fromarray(scene(seed).image).save(path)
    return str(path)


@functools.lru_cache(maxsize=64)
def single_object(seed: int) -> tuple[np.ndarray, str]:
    """Single object ``seed`` at the side the CLIP and retrieval models saw, and its prompt (cached, as ``scene``)."""
    return shapesworld.single_object(seed, OBJECT_SIDE)


def object_file(seed: int) -> str:
    """The PNG of single object ``seed`` (what the CLIP and retrieval tabs take), written once."""
    path = examples_folder() / f"shapesworld-object-{seed}.png"
    if not path.exists():
        Image.fromarray(single_object(seed)[0]).save(path)
    return str(path)


def new_scene_file() -> str:
    return scene_file(random_unseen_seed())


def new_object_file() -> str:
    return object_file(random_unseen_seed())


def _pixels(path: str) -> np.ndarray | None:
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except OSError:
        return None


def _shown_seed(path: str | None, name: re.Pattern, render: Callable[[int], np.ndarray]) -> int | None:
    """The seed ``path`` is named for (``name``'s group), if its pixels are exactly what ``render(seed)`` draws."""
    match = name.search(Path(path).name) if path else None
    if match is None:
        return None
    seed = int(match.group(1))
    pixels = _pixels(path)
    return seed if pixels is not None and np.array_equal(pixels, render(seed)) else None


def scene_of(path: str | None) -> shapesworld.Scene | None:
    """The ShapesWorld scene ``path`` shows, or None: named like one and pixel for pixel what its seed draws."""
    seed = _shown_seed(path, SCENE_NAME, lambda s: scene(s).image)
    return None if seed is None else scene(seed)


def object_of(path: str | None) -> tuple[int, str] | None:
    """(seed, prompt such as "a large red star") of the single object ``path`` shows, or None (as ``scene_of``)."""
    seed = _shown_seed(path, OBJECT_NAME, lambda s: single_object(s)[0])
    return None if seed is None else (seed, single_object(seed)[1])


def new_scene_button(label: str = "New unseen scene") -> gr.Button:
    """The button; ``wiring.on_new_input(..., new_scene=button)`` wires it to draw a scene and run the tab."""
    return gr.Button(label, variant="secondary", size="sm")
