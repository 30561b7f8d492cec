"""Depth estimation: ShapesWorld's depth maps, the metrics and alignment, both tiers of model, the tab's pieces."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

import shapesworld
from shapesworld import render

SEEDS = range(shapesworld.SPLITS["test"].start, shapesworld.SPLITS["test"].start + 30)


def _scene_with_full_masks(seed: int, monkeypatch) -> tuple[shapesworld.Scene, list[np.ndarray]]:
    """A scene and every object's *full* mask (before later objects covered it), in draw order."""
    drawn: list[np.ndarray] = []
    for name in ("shape_mask", "stick_figure_mask"):
        original = getattr(render, name)

        def recording(*args, _original=original, **kwargs):
            mask = _original(*args, **kwargs)
            drawn.append(mask)
            return mask

        monkeypatch.setattr(render, name, recording)
    scene = shapesworld.generate(seed)
    monkeypatch.undo()
    full, remaining = [], [m for m in drawn if m.any()]
    for visible in scene.masks:  # objects keep draw order; a dropped (hidden) object's mask is skipped
        while not (visible <= remaining[0]).all():
            remaining.pop(0)
        full.append(remaining.pop(0))
    return scene, full


def test_depth_is_deterministic_and_recorded():
    a, b = shapesworld.generate(7), shapesworld.generate(7)
    assert a.depth.dtype == np.float32 and a.depth.shape == a.image.shape[:2]
    np.testing.assert_array_equal(a.depth, b.depth)
    assert [o.depth for o in a.objects] == [o.depth for o in b.objects]
    digest = hashlib.sha256(shapesworld.generate(0).depth.tobytes()).hexdigest()
    assert digest == "8e00ad0ffe84a76210133138bb59476ac8032499def9a71fcaadfc02c5eee1f7"  # recorded once, as for the images


@pytest.mark.parametrize("seed", SEEDS)
def test_depth_agrees_with_occlusion_and_the_ground(seed, monkeypatch):
    scene, full = _scene_with_full_masks(seed, monkeypatch)
    ground = shapesworld.ground_depth(scene.depth.shape[0])
    background = scene.semantic == 0
    np.testing.assert_array_equal(scene.depth[background], np.broadcast_to(ground[:, None], scene.depth.shape)[background])
    for i, obj in enumerate(scene.objects):
        visible = scene.masks[i]
        np.testing.assert_array_equal(scene.depth[visible], np.float32(obj.depth))  # a flat card facing the camera
        rows = np.nonzero(full[i].any(axis=1))[0]
        assert obj.depth < ground[rows].min()  # in front of the ground behind it
        for j in range(i + 1, len(scene.objects)):
            if (full[i] & full[j]).any():  # j was drawn over i: j is nearer
                assert scene.objects[j].depth < obj.depth


def test_ground_recedes_with_disparity_linear_in_the_row():
    ground = shapesworld.ground_depth(128)
    assert ground[0] == pytest.approx(shapesworld.GROUND_FAR, rel=0.05) and ground[-1] == pytest.approx(shapesworld.GROUND_NEAR, rel=0.05)
    assert (np.diff(ground) < 0).all()
    assert np.allclose(np.diff(1 / ground.astype(np.float64), 2), 0, atol=1e-6)
