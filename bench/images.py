"""The input each model is benchmarked on, and per-request variants of it.

Each model gets an image at its native working size: the local models (U-Net, detectors) a
128x128 ShapesWorld scene from the test split (never seen in training); the pretrained models a
real photo (scikit-image's astronaut, 512x512), which their own transform resizes (to a 520
shorter side for segmentation; to each detector's own input size, shown in the report).

The app caches predictions per (model, image content), so identical HTTP requests after the
first would be answered from that cache. ``variant(i)`` therefore changes one pixel's least
significant bit, at a different position per request: visually the same image, the same amount
of work, a different content hash.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

import models
import shapesworld

SCENE_SEED = shapesworld.SPLITS["test"].start


@dataclass(frozen=True)
class BenchImage:
    description: str
    pixels: np.ndarray  # HxWx3 uint8

    @property
    def pil(self) -> Image.Image:
        return Image.fromarray(self.pixels)

    @property
    def size_text(self) -> str:
        height, width = self.pixels.shape[:2]
        return f"{width}x{height}"

    def variant(self, index: int) -> np.ndarray:
        """The image with pixel number ``index`` (row-major) nudged by one grey level in red."""
        pixels = self.pixels.copy()
        height, width = pixels.shape[:2]
        row, col = divmod(index % (height * width), width)
        pixels[row, col, 0] ^= 1
        return pixels

    def write_variants(self, folder: Path, stem: str, count: int) -> list[Path]:
        """``count`` distinct PNG files, written before any timing starts."""
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for i in range(count):
            path = folder / f"{stem}-{i:03d}.png"
            Image.fromarray(self.variant(i)).save(path)
            paths.append(path)
        return paths


@functools.cache
def scene_image(seed: int = SCENE_SEED, size: int = 128) -> BenchImage:
    return BenchImage(f"ShapesWorld test scene {seed}", shapesworld.generate(seed, size).image)


@functools.cache
def photo_image() -> BenchImage:
    from skimage import data

    return BenchImage("skimage astronaut photo", np.asarray(Image.fromarray(data.astronaut()).convert("RGB")))


def image_for(name: str) -> BenchImage:
    """The native-size input of model ``name``: a ShapesWorld scene for local models, else a photo."""
    return scene_image() if models.spec(name).tier == "local" else photo_image()
