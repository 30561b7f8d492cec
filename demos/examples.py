"""The example images the tabs offer: unseen ShapesWorld test scenes and real photos."""

from __future__ import annotations

import functools

from PIL import Image

import shapesworld

from . import scenes
from .files import examples_folder

SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")


@functools.cache
def example_images(shapes_count: int = 3) -> list[str]:
    """Example files: unseen ShapesWorld test scenes and the real photos shipped with scikit-image."""
    folder = examples_folder()
    test_start = shapesworld.SPLITS["test"].start
    paths = [scenes.scene_file(seed) for seed in range(test_start, test_start + shapes_count)]
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
