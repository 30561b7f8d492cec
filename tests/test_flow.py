"""Optical flow: ShapesWorld clips and their exact flow, the EPE metric, both tiers of RAFT, the tab's pieces, video input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import models
import shapesworld
from demos import flow as flow_tab
from demos import flow_drawing, video
from demos.inputs import BadInput
from models.flow import FlowEstimator, LocalRaftConfig, epe, warp_back
from shapesworld import clips

TEST_SEED = shapesworld.SPLITS["test"].start


# ---------------------------------------------------------------- clips and their flow


def test_clips_are_deterministic_and_carry_per_frame_annotations():
    a, b = clips.generate_clip(TEST_SEED, frames=4), clips.generate_clip(TEST_SEED, frames=4)
    assert a.images.shape == (4, 128, 128, 3) and len(a.flows) == 3
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.flows[1].flow, b.flows[1].flow)
    assert not np.array_equal(a.images[0], a.images[1])  # things move
    for frame in a.frames:
        assert len(frame.objects) == len(a.frames[0].objects)  # ids are the clip's objects, frame after frame
        for obj in frame.objects:
            visible = frame.instance_map == obj.instance_id
            assert obj.area == visible.sum() and (frame.semantic[visible] == obj.label).all()
            if obj.area:
                x0, y0, x1, y1 = obj.box
                assert visible[y0:y1, x0:x1].sum() == obj.area
        assert frame.depth.shape == (128, 128)


@pytest.mark.parametrize("seed", range(TEST_SEED, TEST_SEED + 6))
def test_the_exact_flow_carries_frame_t_onto_frame_t_plus_1(seed, monkeypatch):
    """With the sensor noise off, frame t+1 looked up at p + flow(p) is frame t wherever the point stays visible."""
    monkeypatch.setattr(clips, "NOISE", 0.0)
    first, second, truth = clips.plan(seed).pair(seed % 15)
    warped, inside = warp_back(second, truth.flow)
    kept = inside & ~truth.occluded
    error = np.abs(warped.astype(np.float32) - first.astype(np.float32)).mean(-1)
    still = np.abs(second.astype(np.float32) - first.astype(np.float32)).mean(-1)
    assert np.median(error[kept]) < 1.0 and error[kept].mean() < 0.25 * still[kept].mean()
    assert 0 < truth.occluded.mean() < 0.5 and np.abs(truth.flow).max() > 1.0


def test_occlusion_marks_points_that_leave_the_frame():
    plan = clips.plan(TEST_SEED + 1)
    truth = plan.flow(0)
    yy, xx = np.mgrid[0:128, 0:128]
    x, y = xx + truth.flow[..., 0], yy + truth.flow[..., 1]
    gone = (x < -0.5) | (x > 127.5) | (y < -0.5) | (y > 127.5)
    assert truth.occluded[gone].all()


def test_stick_figure_bones_keep_their_length_while_the_figure_moves():
    plan = clips.plan(TEST_SEED, people=(1, 1))
    motion = next(o.motion for o in plan.objects if o.motion is not None)
    lengths = [[np.linalg.norm(motion.keypoints(t)[b] - motion.keypoints(t)[a]) for a, b in shapesworld.SKELETON_INDICES] for t in range(4)]
    np.testing.assert_allclose(lengths[0], lengths[3], rtol=1e-9)
    assert not np.allclose(motion.keypoints(0), motion.keypoints(3))


# ---------------------------------------------------------------- metric and warp


def test_epe_on_a_hand_case():
    truth = np.zeros((1, 2, 2), np.float32)
    predicted = np.array([[[3.0, 4.0], [0.0, 0.0]]], np.float32)  # lengths 5 and 0
    assert epe(predicted, truth) == pytest.approx(2.5)
    assert epe(predicted, truth, np.array([[True, False]])) == pytest.approx(5.0)


def test_warp_back_undoes_a_whole_pixel_shift():
    second = np.random.default_rng(0).integers(0, 255, (32, 40, 3), dtype=np.uint8)
    first = np.roll(second, (-2, -3), axis=(0, 1))  # frame 1's pixel p is at p + (3, 2) in frame 2
    flow = np.broadcast_to(np.array([3.0, 2.0], np.float32), (32, 40, 2)).copy()
    warped, inside = warp_back(second, flow)
    np.testing.assert_array_equal(warped[inside], first[inside])
    assert not inside[-1, -1] and inside[0, 0]


# ---------------------------------------------------------------- the models


def test_raft_small_equals_torchvisions_documented_inference(planted_torch_home):
    """The app's flow is torchvision's example on the same frames: weights.transforms(), model(img1, img2)[-1]."""
    from models.planting import plant_random_weights
    from torchvision.models.optical_flow import Raft_Small_Weights, raft_small

    plant_random_weights(models.spec("raft-small"), planted_torch_home)
    models.cache.cache_clear()
    first, second, _ = flow_tab.clip_pair(TEST_SEED, 2)
    one, two = (Image.fromarray(np.tile(f, (1, 2, 1))[:, :160]) for f in (first, second))  # 160x128: sides divisible by 8
    output = models.get("raft-small")(one, two)
    weights = Raft_Small_Weights.C_T_V2
    model = raft_small(weights=weights).eval()
    img1, img2 = (torch.from_numpy(np.array(f)).permute(2, 0, 1)[None] for f in (one, two))
    with torch.inference_mode():
        reference = model(*weights.transforms()(img1, img2))[-1][0].permute(1, 2, 0).numpy()
    assert output.flow.shape == (128, 160, 2) and len(output.iterations) == 12
    np.testing.assert_allclose(output.flow, reference, rtol=1e-4, atol=1e-4)
    models.cache.cache_clear()


def test_frames_of_different_sizes_and_odd_sizes():
    estimator = FlowEstimator(LocalRaftConfig().build(), "random", updates=2, max_side=128)
    with pytest.raises(ValueError, match="differ in size"):
        estimator(Image.new("RGB", (128, 128)), Image.new("RGB", (130, 128)))
    odd = estimator(Image.new("RGB", (150, 97)), Image.new("RGB", (150, 97)))
    assert odd.flow.shape == (97, 150, 2) and odd.working_size == (128, 128) and len(odd.iterations) == 2


UNSEEN = 40  # a quick check here; the card holds the 500-pair score
EPE_BAR = 1.0


@pytest.fixture(scope="module")
def local():
    return models.get("raft-flow-shapes")


@pytest.mark.xfail(strict=True, reason="not yet met: the shipped weights score EPE 3.0958 px against the zero-flow baseline's 3.0957 px: a dead flow head (README, 'The local RAFT')")
def test_local_model_beats_the_bar_on_unseen_pairs(local):
    from models.training.flow import evaluate

    metrics = evaluate(local, seed=TEST_SEED + 500, count=UNSEEN)
    assert metrics["epe_px"] <= EPE_BAR * 1.2 and metrics["epe_px"] <= 0.3 * metrics["epe_zero_px"], metrics


def test_shipped_card_says_what_the_weights_score_and_fits_the_budget(local):
    from models.training.flow import evaluate

    spec = models.spec("raft-flow-shapes")
    card = spec.source.card()
    assert card["metrics"]["eval_count"] == 500 and {"epe_px", "epe_zero_px"} <= set(card["metrics"])
    assert card["parameters"] == sum(p.numel() for p in local.network.parameters())
    assert spec.source.path.stat().st_size <= 4_000_000 and card["file_dtype"] == "float16"
    assert card["train_seconds"] <= 30 * 60 and card["preprocessing"]["updates"] == local.updates
    first = evaluate(local, seed=TEST_SEED, count=10)  # the card's first pairs, scored again
    assert first["epe_zero_px"] > 0 and first["eval_seeds"].startswith(str(TEST_SEED))


# ---------------------------------------------------------------- the tab's pieces


def test_render_scores_a_clip_pair_and_shows_every_update(local):
    first_path, second_path = flow_tab.clip_files(TEST_SEED + 3, 5)
    truth = flow_tab.truth_of(first_path, second_path)
    assert truth is not None and flow_tab.truth_of(second_path, first_path) is None
    first, second = Image.open(first_path).convert("RGB"), Image.open(second_path).convert("RGB")
    output = local(first, second)
    view = flow_tab.render(first, second, output, truth)
    assert view.numbers["epe_px"] == pytest.approx(epe(output.flow, truth.flow), abs=1e-4)
    assert view.numbers["updates"] == len(output.iterations) == local.updates
    assert view.numbers["photometric_error"] >= 0 and view.numbers["epe_zero_px"] == pytest.approx(epe(np.zeros_like(truth.flow), truth.flow), abs=1e-4)
    pair, heat, text = flow_tab.truth_view(output, truth)
    assert "px" in text and pair.width > heat.width / 2


def test_a_renamed_picture_gets_no_truth(tmp_path):
    first_path, _ = flow_tab.clip_files(TEST_SEED + 4, 0)
    fake = tmp_path / f"shapesworld-clip-{TEST_SEED + 4}-0-2.png"
    Image.new("RGB", (128, 128)).save(fake)
    assert flow_tab.truth_of(first_path, str(fake)) is None


def test_colours_share_one_scale_and_the_wheel_matches():
    flow = np.zeros((4, 4, 2), np.float32)
    flow[0, 0] = (2.0, 0.0)
    (short, long), scale = flow_drawing.flow_colours(flow, 2 * flow)
    assert scale == pytest.approx(4.0)
    assert not np.array_equal(short[0, 0], long[0, 0]) and (short[1, 1] == 255).all()  # no motion is white
    assert flow_drawing.wheel(scale).size[0] >= flow_drawing.WHEEL


# ---------------------------------------------------------------- video input


def _write_video(path, frames: int, side: int = 64) -> None:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width = stream.height = side
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            image = np.zeros((side, side, 3), np.uint8)
            image[:, (2 * i) % side] = 255
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())


def test_video_frames_are_read_with_a_bound_and_bad_videos_refused(tmp_path):
    _write_video(tmp_path / "short.mp4", 6)
    first, second, read = video.frame_pair(tmp_path / "short.mp4", 0.0, 2)
    assert first.size == second.size == (64, 64) and read["gap_frames"] == 2 and read["frames_decoded"] == 3
    _write_video(tmp_path / "long.mp4", 600, side=32)
    _, _, read = video.frame_pair(tmp_path / "long.mp4", 20.0, 1)
    assert read["frames_decoded"] <= video.MAX_DECODED and read["time_s"] == pytest.approx(20.0, abs=0.05)
    with pytest.raises(BadInput, match="lasts"):
        video.frame_pair(tmp_path / "long.mp4", 100.0, 1)
    _write_video(tmp_path / "one.mp4", 1)
    with pytest.raises(BadInput, match="single frame"):
        video.frame_pair(tmp_path / "one.mp4")
    (tmp_path / "text.mp4").write_text("not a video at all")
    with pytest.raises(BadInput, match="not a video"):
        video.frame_pair(tmp_path / "text.mp4")
