"""Depth estimation: ShapesWorld's depth maps, the metrics and alignment, both tiers of model, the tab's pieces."""

from __future__ import annotations

import hashlib
import json
import struct

import numpy as np
import pytest
import torch
from PIL import Image

import models
import shapesworld
from demos import depth as depth_tab
from demos import depth3d, scenes
from models import depth_metrics
from models.depth import DepthMap
from shapesworld import render
from tests.conftest import planted_hugging_face

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


# ---------------------------------------------------------------- metrics and alignment


def test_metrics_on_hand_cases():
    truth = np.array([[1.0, 2.0], [4.0, 8.0]])
    assert depth_metrics.abs_rel(truth, truth) == 0 and depth_metrics.delta1(truth, truth) == 1
    predicted = np.array([[1.2, 2.0], [5.2, 4.0]])  # ratios 1.2, 1, 1.3, 0.5: two of four within 1.25
    assert depth_metrics.delta1(predicted, truth) == pytest.approx(0.5)
    assert depth_metrics.abs_rel(predicted, truth) == pytest.approx((0.2 + 0 + 0.3 + 0.5) / 4)


def test_metrics_equal_an_independent_computation():
    rng = np.random.default_rng(0)
    truth = rng.uniform(2, 10, (40, 30)).astype(np.float32)
    predicted = truth * np.exp(rng.normal(0, 0.2, truth.shape)).astype(np.float32)
    d, t = torch.from_numpy(predicted).double(), torch.from_numpy(truth).double()
    assert depth_metrics.abs_rel(predicted, truth) == pytest.approx(float(((d - t).abs() / t).mean()), rel=1e-9)
    assert depth_metrics.delta1(predicted, truth) == pytest.approx(float((torch.maximum(d / t, t / d) < 1.25).double().mean()))


def test_alignment_undoes_a_scale_and_shift_of_disparity():
    truth = shapesworld.generate(3).depth
    relative = 7.0 / truth + 0.3  # what a relative model may give: disparity up to scale and shift
    raw = depth_metrics.score(relative, depth_metrics.DISPARITY, truth)
    assert raw.abs_rel > 0.5 and raw.delta1 < 0.5  # read as disparity as it stands, it is wrong
    assert raw.aligned_abs_rel < 1e-4 and raw.aligned_delta1 == 1.0
    assert (raw.scale, raw.shift) == (pytest.approx(1 / 7), pytest.approx(-0.3 / 7))
    metric = depth_metrics.score(2 * truth - 1, depth_metrics.DEPTH, truth)  # a depth map is fitted in depth
    assert metric.aligned_abs_rel < 1e-4 and metric.scale == pytest.approx(0.5)


# ---------------------------------------------------------------- pretrained models, from planted weights


@pytest.mark.parametrize("name", ["depth-anything-v2-small", "dpt-large"])
def test_pretrained_depth_equals_the_transformers_pipeline(name, tmp_path_factory):
    """The app's map is ``pipeline("depth-estimation")``'s predicted_depth on the same photo."""
    from skimage.data import astronaut
    from transformers import pipeline

    photo = Image.fromarray(astronaut()).resize((300, 200))
    with planted_hugging_face(tmp_path_factory, name) as snapshot:
        spec = models.spec(name)
        assert spec.availability().usable
        output = models.get(name)(photo)
        reference = pipeline("depth-estimation", model=str(snapshot), device="cpu")(photo)["predicted_depth"]
    reference = reference.numpy()
    assert output.kind == depth_metrics.DISPARITY and output.values.shape == (200, 300)
    assert reference.max() > reference.min()  # random weights give tiny values: compare relative to their spread
    np.testing.assert_allclose(output.values, reference, rtol=1e-5, atol=1e-5 * float(np.abs(reference).max()))


# ---------------------------------------------------------------- the local model and the tab's pieces

UNSEEN = 500  # test-split scenes: seeds the trainer never drew from
DELTA1_BAR, ABS_REL_BAR = 0.90, 0.10


@pytest.fixture(scope="module")
def local():
    return models.get("unet-depth-shapes")


def test_local_model_beats_the_bar_on_unseen_scenes(local):
    from models.training.depth import TEST_SEED, evaluate

    metrics = evaluate(local, seed=TEST_SEED, count=UNSEEN)
    assert metrics["delta1"] >= DELTA1_BAR and metrics["abs_rel"] <= ABS_REL_BAR, metrics


def test_shipped_card_matches_the_weights_and_fits_the_budget(local):
    spec = models.spec("unet-depth-shapes")
    card = spec.source.card()
    assert card["parameters"] == sum(p.numel() for p in local.network.parameters())
    assert card["metrics"]["delta1"] >= DELTA1_BAR and card["metrics"]["abs_rel"] <= ABS_REL_BAR
    assert spec.source.path.stat().st_size <= 3_000_000 and card["file_dtype"] == "float16"
    assert spec.input_size == 128 and local.kind == depth_metrics.DEPTH


def test_render_gives_a_16_bit_png_over_the_range_and_scores_a_scene(local, tmp_path):
    scene = shapesworld.generate(2_000_001)
    output = local(Image.fromarray(scene.image))
    result = depth_tab.render(Image.fromarray(scene.image), output, scene)
    result.png.save(tmp_path / "d.png")
    with Image.open(tmp_path / "d.png") as reread:
        stored = np.asarray(reread).astype(np.float64)
    assert stored.max() == 65535 and stored.min() == 0
    low, high = result.numbers["min"], result.numbers["max"]
    np.testing.assert_allclose(low + stored / 65535 * (high - low), output.values, atol=(high - low) / 65535)
    assert result.numbers["kind"] == "depth" and result.numbers["shapesworld_seed"] == scene.seed
    assert result.numbers["metrics"] == depth_metrics.score(output.values, "depth", scene.depth).as_dict()
    assert depth_tab.render(Image.new("RGB", (1, 1)), output.__class__(np.zeros((1, 1), np.float32), "depth"), None).numbers["min"] == 0


def test_the_mesh_backprojects_the_true_depth_and_tears_at_occlusions():
    scene = shapesworld.generate(2_000_002)
    mesh = depth3d.lift(Image.fromarray(scene.image), scene.depth, grid=128)
    assert mesh.vertices.shape == (128 * 128, 3) and mesh.colours.shape == (128 * 128, 3)
    np.testing.assert_allclose(-mesh.vertices[:, 2], scene.depth.ravel(), rtol=1e-5)  # at the scene's own size, no resampling
    full = 2 * 127 * 127
    assert 0.5 * full < len(mesh.faces) < full  # the cards' edges are cut out of the sheet
    glb = depth3d.glb_bytes(mesh)
    magic, version, length = struct.unpack_from("<III", glb)
    assert (magic, version, length) == (0x46546C67, 2, len(glb)) and length % 4 == 0
    size, kind = struct.unpack_from("<II", glb, 12)
    document = json.loads(glb[20 : 20 + size])
    positions, colours, indices = document["accessors"]
    assert positions["count"] == colours["count"] == 128 * 128 and indices["count"] == 3 * len(mesh.faces)
    binary = glb[20 + size + 8 :]
    view = document["bufferViews"][0]
    stored = np.frombuffer(binary, "<f4", count=3 * positions["count"], offset=view["byteOffset"]).reshape(-1, 3)
    np.testing.assert_array_equal(stored, mesh.vertices)
    assert "KHR_materials_unlit" in document["materials"][0]["extensions"]


def test_profile_samples_the_map_along_the_line():
    depth = shapesworld.generate(2_000_003).depth
    distance, values = depth3d.profile(depth, (0.25, 1.0), (0.25, 0.0))  # up a column, near to far
    column = round(0.25 * 127)
    np.testing.assert_array_equal(values, depth[::-1, column])
    assert distance[0] == 0 and distance[-1] == pytest.approx(127)


def test_alignment_view_fixes_a_relative_map_and_says_so():
    scene = shapesworld.generate(2_000_004)
    relative = DepthMap((4.0 / scene.depth + 0.5).astype(np.float32), depth_metrics.DISPARITY, "fake")
    view = depth_tab.alignment(relative, scene)
    assert "disparity" in view.space and "| after scale and shift | 0.000 | 1.000 |" in view.table
    assert list(view.scatter.columns) == ["truth", "prediction"] and len(view.scatter) == 1500
    profile = depth_tab.profile_table(relative, scene, (50, 100, 50, 0))
    truth, aligned = (profile[profile.series == name]["value"].to_numpy() for name in ("true depth", "prediction, aligned"))
    np.testing.assert_allclose(aligned, truth, rtol=1e-4)


def test_truth_and_scores_show_for_a_scene_file_only(tmp_path):
    scene_path = scenes.scene_file(2_000_005)
    shown = depth_tab._truth_ui(scene_path, "unet-depth-shapes")
    assert all(update["visible"] for update in shown)
    photo = tmp_path / "shapesworld-2000005.png"  # named like the scene, but not its pixels
    Image.new("RGB", (128, 128), (90, 120, 150)).save(photo)
    assert not any(update["visible"] for update in depth_tab._truth_ui(str(photo), "unet-depth-shapes"))
