"""Grouping a dynamic batch so that batching never changes an answer."""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image


def same_size_groups(images: Sequence[Image.Image]) -> list[list[int]]:
    """Indices of ``images`` grouped by image size, in first-seen order.

    A wrapper's ``forward_batch`` runs one network call per group: images of one size need no
    padding to a neighbour's size, so each image's answer is what it gets alone.
    """
    groups: dict[tuple[int, int], list[int]] = {}
    for index, image in enumerate(images):
        groups.setdefault(image.size, []).append(index)
    return list(groups.values())
