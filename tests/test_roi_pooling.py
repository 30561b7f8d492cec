"""RoIAlign versus RoIPool (demos/panels/roi_*.py, models/internals.py): the hand-written arithmetic against torchvision's operators.

Every view the panel draws comes from ``pool_level``, ``roi_pool_bins`` and ``roi_align_points``;
these tests prove them equal to ``torchvision.ops.roi_pool`` / ``roi_align``, ``LevelMapper`` and a
real network's ``MultiScaleRoIAlign``, on boxes that are fractional, exactly half-way between cells,
thinner than a cell, touching or crossing the map's edge, and entirely outside it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.ops import MultiScaleRoIAlign, roi_align, roi_pool
from torchvision.ops.poolers import LevelMapper

from demos.panels.roi_drawing import render_views, roi_summary
from demos.panels.roi_math import (
    bilinear_sample,
    feature_scales,
    pool_level,
    roi_align_points,
    roi_align_reference,
    roi_pool_bins,
    roi_pool_reference,
    roi_pool_region,
)
from demos.panels.roi_panel import analyse_roi
from models.internals import box_pooler

HEIGHT, WIDTH = 13, 17  # an odd-sized feature map, so rows and columns cannot be swapped unnoticed
SCALES = (1.0, 0.25, 0.125, 1 / 16)

# Boxes in input pixels; at scale 1/4 the map covers 68 x 52 px.
BOXES = {
    "fractional": (3.3, 5.1, 40.7, 37.2),
    "whole-cells": (8.0, 8.0, 40.0, 40.0),
    "half-way": (10.0, 6.0, 30.0, 26.0),  # 2.5, 1.5, 7.5, 6.5 cells at 1/4: C rounds halves away from zero
    "whole-map": (0.0, 0.0, 68.0, 52.0),  # touches every edge at scale 1/4
    "crossing-edges": (-6.0, -3.0, 80.0, 60.0),
    "thinner-than-a-cell": (21.2, 9.9, 22.0, 10.4),
    "last-cell-margin": (60.0, 44.0, 68.0, 52.0),
    "outside": (100.0, 100.0, 120.0, 130.0),
}


@pytest.fixture(scope="module")
def features() -> torch.Tensor:
    return torch.randn(1, 5, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(0))


def _rois(box) -> torch.Tensor:
    return torch.tensor([[0.0, *box]], dtype=torch.float32)


# ---------------------------------------------------------------- RoIPool


@pytest.mark.parametrize("box", BOXES.values(), ids=BOXES.keys())
def test_max_over_each_bin_is_torchvisions_roi_pool(features, box):
    for scale in SCALES:
        bins = roi_pool_bins(box, scale, 7, (HEIGHT, WIDTH))
        expected = roi_pool(features, _rois(box), 7, scale)[0].numpy()
        np.testing.assert_array_equal(roi_pool_reference(features[0].numpy(), bins), expected, err_msg=f"scale {scale}")


def test_roi_pool_rounds_halves_away_from_zero_and_overlaps_bins():
    assert roi_pool_region(BOXES["half-way"], 0.25) == (3, 2, 8, 7)  # numpy's round would give (2, 2, 8, 6)
    bins = roi_pool_bins((3.3, 5.1, 40.7, 37.2), 0.25, 7)  # region 1..10 x 1..9: 10 and 9 cells into 7 bins
    cols, rows = bins[0, :, 2:], bins[:, 0, :2]
    assert cols[0, 0] == 1 and cols[-1, 1] == 11 and rows[0, 0] == 1 and rows[-1, 1] == 10
    assert (cols[1:, 0] < cols[:-1, 1]).any()  # some neighbours share a column of cells
    assert set((cols[:, 1] - cols[:, 0]).tolist()) == {2, 3}  # and bins differ in size


def test_roi_pool_non_square_output(features):
    box = BOXES["fractional"]
    bins = roi_pool_bins(box, 0.25, (3, 5), (HEIGHT, WIDTH))
    assert bins.shape == (3, 5, 4)
    expected = roi_pool(features, _rois(box), (3, 5), 0.25)[0].numpy()
    np.testing.assert_array_equal(roi_pool_reference(features[0].numpy(), bins), expected)


# ---------------------------------------------------------------- RoIAlign


@pytest.mark.parametrize("box", BOXES.values(), ids=BOXES.keys())
def test_mean_of_bilinear_samples_is_torchvisions_roi_align(features, box):
    for scale in SCALES:
        for sampling_ratio in (2, 1, 0):  # 0: adaptive, ceil(bin size) points a side
            for aligned in (False, True):
                points = roi_align_points(box, scale, 7, sampling_ratio, aligned)
                expected = roi_align(features, _rois(box), 7, scale, sampling_ratio, aligned)[0].numpy()
                by_hand = roi_align_reference(features[0].numpy(), points)
                np.testing.assert_allclose(by_hand, expected, atol=1e-5, err_msg=f"{scale=} {sampling_ratio=} {aligned=}")


def test_roi_align_points_are_regular_inside_the_exact_box():
    box, scale = np.array(BOXES["fractional"]), 0.25
    points = roi_align_points(box, scale, 7, 2)
    assert points.shape == (7, 7, 2, 2, 2) and points.dtype == np.float32
    x0, y0, x1, y1 = box * scale
    xs, ys = np.unique(points[..., 0]), np.unique(points[..., 1])
    assert len(xs) == len(ys) == 14  # 7 bins x 2 points a side, shared by every row / column of bins
    np.testing.assert_allclose(np.diff(xs), (x1 - x0) / 14, rtol=1e-4)  # evenly spaced, no rounding anywhere
    np.testing.assert_allclose(np.diff(ys), (y1 - y0) / 14, rtol=1e-4)
    np.testing.assert_allclose([xs[0], xs[-1]], [x0 + (x1 - x0) / 28, x1 - (x1 - x0) / 28], rtol=1e-5)
    assert roi_align_points(box, scale, 7, 0).shape == (7, 7, 2, 2, 2)  # adaptive: ceil(9.35 / 7 cells) = 2
    assert roi_align_points(box, 1.0, (7, 3), 0).shape == (7, 3, 5, 13, 2)  # ceil(32.1 / 7), ceil(37.4 / 3)


def test_bilinear_sample_matches_grid_sample_inside_the_map(features):
    rng = np.random.default_rng(1)
    points = np.stack([rng.uniform(0, WIDTH - 1, 50), rng.uniform(0, HEIGHT - 1, 50)], axis=-1).astype(np.float32)
    grid = torch.from_numpy(points / np.array([WIDTH - 1, HEIGHT - 1], np.float32) * 2 - 1)[None, None]
    expected = F.grid_sample(features, grid, mode="bilinear", align_corners=True)[0, :, 0].numpy()
    np.testing.assert_allclose(bilinear_sample(features[0].numpy(), points), expected, atol=1e-5)


def test_bilinear_sample_border_rules(features):
    f = features[0].numpy()
    outside = bilinear_sample(f, np.array([[-1.5, 3.0], [5.0, HEIGHT + 0.5]], np.float32))
    np.testing.assert_array_equal(outside, 0)  # more than a cell outside: 0
    clamped = bilinear_sample(f, np.array([[-0.7, 3.0], [WIDTH - 0.6, 4.0]], np.float32))
    np.testing.assert_allclose(clamped, f[:, [3, 4], [0, WIDTH - 1]], atol=1e-6)  # in the edge margin: the edge cell


# ---------------------------------------------------------------- which level, which scale


def _side(size: float) -> np.ndarray:
    return np.array([10.0, 20.0, 10.0 + size, 20.0 + size])


def test_pool_level_is_torchvisions_level_mapper():
    rng = np.random.default_rng(2)
    corners = rng.uniform(0, 600, (300, 2))
    sizes = np.exp(rng.uniform(np.log(2), np.log(1500), (300, 2)))
    boxes = [np.concatenate([c, c + s]) for c, s in zip(corners, sizes)]
    boxes += [_side(s) for s in (1, 55.9, 56, 111.9, 112, 223.9, 224, 447.9, 448, 896, 4000)]  # the level boundaries
    boxes.append(np.array([0.0, 0.0, 448.0, 112.0]))  # non-square: sqrt(448 * 112) = 224 -> P4
    boxes.append(np.array([5.0, 5.0, 5.0, 30.0]))  # no area at all: the finest level
    for strides, k_min, k_max in (([4, 8, 16, 32], 2, 5), ([8, 16, 32], 3, 5), ([4, 8, 16], 2, 4)):
        expected = LevelMapper(k_min, k_max)([torch.tensor(np.array(boxes), dtype=torch.float32)]).tolist()
        assert [pool_level(b, strides) for b in boxes] == expected
    assert pool_level(_side(224), [4, 8, 16, 32]) == 2  # a 224 px box: P4, the third level from P2
    assert pool_level(_side(2000), [16]) == 0  # one level: no mapping


def test_pool_level_uses_the_poolers_canonical_scale_and_level():
    box = _side(100)
    expected = LevelMapper(2, 5, canonical_scale=100, canonical_level=3)([torch.tensor(box[None], dtype=torch.float32)])
    assert pool_level(box, [4, 8, 16, 32], canonical_scale=100, canonical_level=3) == int(expected[0]) == 1


def test_feature_scales_see_through_batch_padding():
    # 800 x 1066 input padded to 800 x 1088: P2 is 200 x 272, not 1066 / 4 wide
    assert feature_scales([(200, 272), (100, 136), (50, 68), (25, 34)], (800, 1066)) == [1 / 4, 1 / 8, 1 / 16, 1 / 32]
    assert feature_scales([(32, 32), (16, 16), (8, 8)], (125, 128)) == [1 / 4, 1 / 8, 1 / 16]


@pytest.mark.parametrize("names", [["0", "1", "2", "3"], ["1"]], ids=["four-levels", "one-level"])
def test_level_and_scale_reproduce_multiscale_roi_align(names):
    """Chosen level + inferred scale + our bilinear mean = what the network's pooler returns."""
    generator = torch.Generator().manual_seed(3)
    sizes = {"0": (32, 48), "1": (16, 24), "2": (8, 12), "3": (4, 6), "pool": (2, 3)}
    maps = {k: torch.randn(1, 3, *s, generator=generator) for k, s in sizes.items()}
    image_size = (125, 190)  # before padding to 128 x 192
    pooler = MultiScaleRoIAlign(names, output_size=7, sampling_ratio=2)
    rng = np.random.default_rng(4)
    corners = rng.uniform(0, 120, (40, 2))
    extent = np.exp(rng.uniform(np.log(3), np.log(190), (40, 2)))
    boxes = np.concatenate([corners, np.minimum(corners + extent, [190, 125])], axis=1).astype(np.float32)
    boxes = np.vstack([boxes, [[0, 0, 190, 125], [150.5, 100.25, 190, 125]]]).astype(np.float32)
    expected = pooler(maps, [torch.from_numpy(boxes)], [image_size]).numpy()
    used = [k for k in maps if k in names]
    scales = feature_scales([maps[k].shape[-2:] for k in used], image_size)
    strides = [round(1 / s) for s in scales]
    for box, pooled in zip(boxes, expected):
        level = pool_level(box, strides)
        level_map = maps[used[level]]
        direct = roi_align(level_map, _rois(box), 7, scales[level], 2, aligned=False)[0].numpy()
        np.testing.assert_array_equal(direct, pooled)
        by_hand = roi_align_reference(level_map[0].numpy(), roi_align_points(box, scales[level], 7, 2))
        np.testing.assert_allclose(by_hand, pooled, atol=1e-5)


# ---------------------------------------------------------------- a real two-stage network


@pytest.fixture(scope="module")
def mask_rcnn():
    """A random-init Mask R-CNN of the local architecture: no weight file needed."""
    from models.detection import Detector
    from models.nets.detection import DetectorConfig, build_detector

    torch.manual_seed(0)
    network = build_detector(DetectorConfig(family="mask_rcnn", num_classes=3)).eval()
    return Detector(network, ["background", "circle", "square"])


@pytest.fixture(scope="module")
def scene() -> Image.Image:
    import shapesworld

    return Image.fromarray(shapesworld.generate(2_000_000).image)


@pytest.mark.parametrize("size", [(128, 128), (200, 120)], ids=["native", "resized"])
def test_analysis_pools_what_the_network_pools(mask_rcnn, scene, size):
    image = scene.resize(size)
    width, height = size
    boxes = [(10.3, 20.7, 60.2, 90.9), (0, 0, width, height), (width - 9.5, height - 7.25, width, height), (40, 30, 44.5, 33)]
    network = mask_rcnn.network
    with torch.inference_mode():
        images, _ = network.transform([mask_rcnn.preprocess(image)])
        maps = network.backbone(images.tensors)
    for box in boxes:
        a = analyse_roi(mask_rcnn, image, np.array(box))
        back = np.array([width / a.input_size[1], height / a.input_size[0]] * 2)
        np.testing.assert_allclose(a.box_input * back, box, rtol=1e-5, atol=1e-4)
        box_input = torch.from_numpy(a.box_input[None])
        for pooler in (network.roi_heads.box_roi_pool, network.roi_heads.mask_roi_pool):  # both heads pick the same level
            pooled = pooler(maps, [box_input], images.image_sizes)[0]
            level = maps[a.level_name][0]
            rois = torch.cat([torch.zeros(1, 1), box_input], 1)
            direct = roi_align(level[None], rois, pooler.output_size, a.spatial_scale, 2, aligned=False)[0]
            torch.testing.assert_close(direct, pooled, rtol=0, atol=0)
        expected = network.roi_heads.box_roi_pool(maps, [box_input], images.image_sizes)[0].mean(0).numpy()
        np.testing.assert_allclose(a.pooled_align, expected, atol=1e-5)
        np.testing.assert_array_equal(a.pooled_max, roi_pool_reference(a.feature_mean[None], a.pool_bins)[0])
        assert a.feature_mean.shape == tuple(maps[a.level_name].shape[-2:])
        assert a.stride == round(1 / a.spatial_scale) and a.level_names == ["0", "1", "2"]


def test_views_are_readable_gallery_items(mask_rcnn, scene):
    for box in [(10.3, 20.7, 60.2, 90.9), (0, 0, 128, 17.5)]:
        a = analyse_roi(mask_rcnn, scene, np.array(box))
        views = render_views(a)
        assert len(views) == 4
        for picture, caption in views:
            assert isinstance(picture, Image.Image) and picture.mode == "RGB"
            assert 380 <= max(picture.size) <= 640 and min(picture.size) >= 200
            assert caption
        assert f"stride {a.stride} px" in views[0][1] and f"'{a.level_name}'" in views[0][1]
        assert "feature cells" in views[1][1]
        summary = roi_summary(a)
        assert f"level '{a.level_name}'" in summary and "misaligns masks" in summary


def test_a_model_without_rpn_has_no_pooler():
    class OneStage:
        network = torch.nn.Module()

    with pytest.raises(ValueError, match="no RoI pooler"):
        box_pooler(OneStage())


# ---------------------------------------------------------------- the panel


def _usable(name: str) -> bool:
    import models

    return models.spec(name).availability().usable


@pytest.fixture(scope="module")
def scene_path(scene, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("roi") / "scene.png"
    scene.save(path)
    return str(path)


@pytest.mark.skipif(not _usable("fasterrcnn-shapes"), reason="needs weights/fasterrcnn-shapes.safetensors")
def test_panel_handler_and_its_errors(scene_path):
    import gradio as gr

    from demos.errors import user_errors
    from demos.panels.roi_panel import _roi_ui

    views, summary = _roi_ui(scene_path, "fasterrcnn-shapes", 0.05, 1)
    assert len(views) == 4 and "Detection #1" in summary
    with pytest.raises(ValueError, match="Pick or upload an image"):
        _roi_ui(None, "fasterrcnn-shapes", 0.5, 1)
    with pytest.raises(ValueError, match="No detection scores above 1.00"):
        _roi_ui(scene_path, "fasterrcnn-shapes", 1.0, 1)
    with pytest.raises(ValueError, match=r"detections above 0.05: pick a detection # from 1 to"):
        _roi_ui(scene_path, "fasterrcnn-shapes", 0.05, 10_000)
    for number in (0, 1.5, float("nan")):
        with pytest.raises(ValueError, match="whole number"):
            _roi_ui(scene_path, "fasterrcnn-shapes", 0.05, number)
    if _usable("fcos-shapes"):
        with pytest.raises(ValueError, match="no RoI pooler"):
            _roi_ui(scene_path, "fcos-shapes", 0.05, 1)
    with pytest.raises(gr.Error, match="Pick or upload an image"):
        user_errors(_roi_ui)(None, "fasterrcnn-shapes", 0.5, 1)


def test_build_roi_panel():
    import gradio as gr

    from demos.panels.roi_panel import build_roi_panel

    with gr.Blocks() as demo:
        image = gr.Image(type="filepath")
        model = gr.Dropdown(choices=["fasterrcnn-shapes"], value="fasterrcnn-shapes")
        score = gr.Slider(0.05, 1, value=0.5)
        build_roi_panel(image, model, score)
    assert [b.label for b in demo.blocks.values() if isinstance(b, gr.Accordion)] == ["RoIAlign versus RoIPool"]
    assert [b.label for b in demo.blocks.values() if isinstance(b, gr.Number)] == ["Detection #"]
    assert len([b for b in demo.blocks.values() if isinstance(b, gr.Gallery)]) == 1
    deps = demo.config["dependencies"]
    pool, clear = deps  # the pooling, and emptying its outputs when it fails
    assert pool["api_visibility"] == "private" and pool["targets"][0][1] == "click"
    assert clear["targets"][0][1] == "failure" and clear["outputs"] == pool["outputs"]
