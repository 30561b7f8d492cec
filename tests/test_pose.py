"""The pose tab and Keypoint R-CNN, each checked against the library it claims to equal.

- The pretrained Keypoint R-CNN from planted random-init weights, through the app's path
  (``demos.pose.estimate_pose``) against torchvision's documented inference: the same people,
  keypoints and keypoint scores; COCO's 17 keypoint names and skeleton.
- ``models.pose.keypoint_heatmaps``: decoded as torchvision decodes, its heatmaps give the network's own keypoints.
- PCK, on cases worked out by hand; the COCO keypoint results file against pycocotools.
- The local ShapesWorld Keypoint R-CNN: the quality bar on unseen scenes and the heatmap view.
- Bad input: a clear message, never a stack trace.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.models.detection.roi_heads import heatmaps_to_keypoints

import models
import shapesworld
from demos import detector_outputs, drawing, pose, scene_truth, scenes
from models.detection import select
from models.pose import keypoint_heatmaps
from models.pose import pck
from shapesworld.vocab import NOT_IN_IMAGE, OCCLUDED, VISIBLE
from tests.test_detection import PHOTO, UNSEEN, _assert_same_detections, assert_card_says_how_to_get_the_weights, no_pretrained_weights  # noqa: F401 (a fixture)
from tests.test_instances import loads_through_torchvision, match_by_box, planted, threshold_inside

KEYPOINT_RCNN = "keypointrcnn-resnet50"
LOCAL = "keypointrcnn-shapes"
PLANT_SEED = 4
"""With two classes the random classification biases decide whether anyone is found: seed 0 favours
background (no candidate reaches the 0.05 floor); seed 4 favours person by ~1 logit (scores 0.83-0.92)."""
MAX_PEOPLE = 20  # the tab's default, and COCO's keypoint maxDets

COCO_SKELETON = [
    [16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8], [7, 9],
    [8, 10], [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7],
]
"""The ``skeleton`` of COCO's person category, as person_keypoints_val2017.json writes it (1-based)."""


# ---------------------------------------------------------------- the pretrained Keypoint R-CNN, planted


@pytest.fixture(scope="module")
def planted_keypoint_rcnn(tmp_path_factory):
    with planted(KEYPOINT_RCNN, tmp_path_factory.mktemp("torch_home"), PLANT_SEED) as state:
        yield state


def test_pretrained_keypoint_rcnn_equals_torchvisions_documented_inference(planted_keypoint_rcnn, monkeypatch):
    """estimate_pose() = ``weights.transforms()`` + ``builder(weights=..., thresholds)``: same people, keypoints and scores."""
    raw = loads_through_torchvision(KEYPOINT_RCNN, planted_keypoint_rcnn, monkeypatch)
    spec = models.spec(KEYPOINT_RCNN)
    weights, builder = spec.source.weights, spec.source.builder
    detector = models.get(KEYPOINT_RCNN)
    names = weights.meta["keypoint_names"]
    assert detector.keypoint_names == names and len(names) == 17 and names[0] == "nose"
    assert detector.skeleton and all(0 <= k < 17 for limb in detector.skeleton for k in limb)
    assert raw.keypoints.shape == (len(raw.scores), 17, 2) and raw.keypoint_scores.shape == (len(raw.scores), 17)

    score = threshold_inside(raw.scores)
    assert score > raw.scores.min()  # above every candidate the app dropped: the library can return nothing the app lacks
    result = pose.estimate_pose(PHOTO, KEYPOINT_RCNN, score, max_people=MAX_PEOPLE)
    found = result.detections
    reference = builder(weights=weights, box_score_thresh=score, box_nms_thresh=0.5, box_detections_per_img=MAX_PEOPLE).eval()
    with torch.inference_mode():
        expected = reference([weights.transforms()(PHOTO)])[0]
    assert len(expected["scores"]) > 1, "nobody found: the comparison would prove nothing"
    expected_boxes = expected["boxes"].numpy()
    _assert_same_detections(found, expected_boxes, expected["scores"].numpy(), expected["labels"].numpy(), raw)

    same = match_by_box(found.boxes, expected_boxes)
    assert np.allclose(found.keypoints, expected["keypoints"][same, :, :2].numpy(), atol=1e-3)
    assert np.allclose(found.keypoint_scores, expected["keypoints_scores"][same].numpy(), atol=1e-4)
    assert len(result.records) == len(found)
    for record, points, scores in zip(result.records, found.keypoints, found.keypoint_scores):
        assert [k["name"] for k in record["keypoints"]] == names
        assert np.allclose([(k["x"], k["y"]) for k in record["keypoints"]], points, atol=0.051)
        assert np.allclose([k["score"] for k in record["keypoints"]], scores, atol=0.0051)
        assert [k["shown"] for k in record["keypoints"]] == (scores >= pose.DEFAULT_KEYPOINT_THRESHOLD).tolist()


def test_keypoint_heatmaps_decode_to_the_networks_own_keypoints(planted_keypoint_rcnn):
    """The heatmap view shows what the network computed: torchvision's decoder on it gives the network's keypoints.

    ``keypoint_heatmaps`` takes boxes in image pixels; torchvision decodes in the network's resized
    input, so the boxes are scaled there and the keypoints back.
    """
    detector = models.get(KEYPOINT_RCNN)
    raw = detector_outputs.predict(PHOTO, KEYPOINT_RCNN).raw  # every candidate: each was decoded by the network
    logits = keypoint_heatmaps(detector, PHOTO, raw.boxes)
    assert logits.shape == (len(raw.boxes), 17, 56, 56)
    images, _ = detector.network.transform([detector.preprocess(PHOTO)])
    height, width = images.image_sizes[0]
    assert (height, width) != (PHOTO.height, PHOTO.width)  # the network really resized: the scaling is exercised
    scale = torch.tensor([width / PHOTO.width, height / PHOTO.height] * 2)
    points, scores = heatmaps_to_keypoints(torch.from_numpy(logits), torch.from_numpy(raw.boxes) * scale)
    assert np.allclose((points[..., :2] / scale[:2]).numpy(), raw.keypoints, atol=1e-3)
    assert np.allclose(scores.numpy(), raw.keypoint_scores, atol=1e-4)


def test_coco_keypoint_export_loads_and_scores_itself_perfectly(planted_keypoint_rcnn, tmp_path):
    """x, y, v triplets and COCO's 1-based skeleton, as pycocotools reads them.

    Scored as its own ground truth by COCOeval (OKS), the file must give AP 1: a swapped x/y, a
    missing visibility or a shifted index would not.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    raw = detector_outputs.predict(PHOTO, KEYPOINT_RCNN).raw
    result = pose.estimate_pose(PHOTO, KEYPOINT_RCNN, threshold_inside(raw.scores), max_people=MAX_PEOPLE)
    found = result.detections
    assert len(found) > 1
    (category,) = result.coco["categories"]
    assert category == {"id": 1, "name": "person", "keypoints": models.spec(KEYPOINT_RCNN).source.weights.meta["keypoint_names"],
                        "skeleton": COCO_SKELETON}
    for annotation, points in zip(result.coco["annotations"], found.keypoints):
        assert len(annotation["keypoints"]) == 3 * 17 and annotation["num_keypoints"] == 17
        triplets = np.array(annotation["keypoints"]).reshape(17, 3)
        assert np.allclose(triplets[:, :2], points, atol=0.006) and (triplets[:, 2] == 2).all()
        assert annotation["category_id"] == 1

    path = tmp_path / "pose.json"
    path.write_text(json.dumps(result.coco))
    coco = COCO(str(path))
    assert coco.loadCats(1)[0]["skeleton"] == COCO_SKELETON
    results = coco.loadRes(result.coco["annotations"])
    evaluation = COCOeval(coco, results, "keypoints")
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    assert evaluation.stats[0] == pytest.approx(1.0)


# ---------------------------------------------------------------- PCK, checked by hand


def _person(points, visibility=None) -> np.ndarray:
    """(K, 3) x, y, visibility; every keypoint visible unless told."""
    points = np.asarray(points, np.float32)
    visibility = np.full(len(points), VISIBLE) if visibility is None else np.asarray(visibility)
    return np.concatenate([points, visibility[:, None].astype(np.float32)], 1)


BOX = np.array([0, 0, 100, 50], np.float32)  # longer side 100: at alpha 0.1 a keypoint may be 10 px off
TALL = np.array([200, 0, 240, 120], np.float32)  # longer side 120 (the height): 12 px
POINTS = [[10, 10], [50, 25], [90, 40]]


def test_pck_is_checked_on_cases_worked_out_by_hand():
    """No maintained library implements PCK for these inputs (torchmetrics and pycocotools score OKS), so the
    cases below have answers computed by hand: 10 px is the limit in a 100 x 50 box, 12 px in a 40 x 120 one."""
    truth = _person(POINTS)
    found, which = pck(BOX[None], truth[None], BOX[None], truth[None, :, :2])
    assert found.tolist() == [True, True, True] and which.tolist() == [0, 1, 2]  # perfect: PCK 1.0

    off = truth[:, :2] + [[9.9, 0], [0, -10.1], [6, 8]]  # just inside, just outside, exactly 10 (3-4-5): inside
    found, _ = pck(BOX[None], truth[None], BOX[None], off[None])
    assert found.tolist() == [True, False, True]

    tall = _person([[210, 10], [220, 60], [230, 110]])
    off = tall[:, :2] + [[11.9, 0], [0, 12.1], [0, 0]]  # the longer side is the height: 12 px, not 4
    found, _ = pck(TALL[None], tall[None], TALL[None], off[None])
    assert found.tolist() == [True, False, True]
    found, _ = pck(TALL[None], tall[None], TALL[None], off[None], alpha=0.2)  # 24 px
    assert found.tolist() == [True, True, True]


def test_pck_counts_an_unmatched_person_as_missed_and_ignores_hidden_keypoints():
    """Missed people lower PCK (every visible keypoint counts as missed); occluded and outside keypoints are not scored."""
    truth = _person(POINTS, [VISIBLE, OCCLUDED, NOT_IN_IMAGE])
    wrong = truth[:, :2] + [[0, 0], [500, 500], [-500, 0]]  # far off, but only where nothing is visible
    found, which = pck(BOX[None], truth[None], BOX[None], wrong[None])
    assert found.tolist() == [True] and which.tolist() == [0]

    people = np.stack([_person(POINTS), _person([[210, 10], [220, 60], [230, 110]], [VISIBLE, VISIBLE, OCCLUDED])])
    boxes = np.stack([BOX, TALL])
    shifted = BOX + [60, 0, 60, 0]  # IoU 2000 / 8000 = 0.25 with the true box: no match, whatever its keypoints
    found, which = pck(boxes, people, shifted[None], people[:1, :, :2])
    assert found.tolist() == [False] * 5 and which.tolist() == [0, 1, 2, 0, 1]
    found, which = pck(boxes, people, np.zeros((0, 4), np.float32), np.zeros((0, 3, 2), np.float32))  # nobody predicted
    assert found.tolist() == [False] * 5

    # Predictions in the other order are matched by box, not by position.
    found, _ = pck(boxes, people, boxes[::-1].copy(), people[::-1, :, :2].copy())
    assert found.tolist() == [True] * 5
    # One prediction can stand for one person only: the same box twice in the truth finds one of them.
    twice = np.stack([_person(POINTS), _person(POINTS)])
    found, _ = pck(np.stack([BOX, BOX]), twice, BOX[None], twice[:1, :, :2])
    assert found.tolist() == [True] * 3 + [False] * 3


# ---------------------------------------------------------------- the local Keypoint R-CNN


def _scene_with_people(offset: int = 50) -> tuple[shapesworld.Scene, Image.Image]:
    for seed in range(UNSEEN + offset, UNSEEN + offset + 100):
        scene = shapesworld.generate(seed)
        if scene.people:
            return scene, Image.fromarray(scene.image)
    raise AssertionError("no test scene with a person")


def test_local_keypoint_rcnn_beats_the_bar_on_unseen_scenes():
    """The shipped model must find people and their joints in scenes no trainer drew (test-split seeds)."""
    from models.training.pose import evaluate

    metrics = evaluate(models.get(LOCAL), seed=UNSEEN, count=100)
    assert metrics["pck_0.1"] >= 0.90 and metrics["map_50"] >= 0.95, metrics


def test_heatmap_view_shows_one_joint_of_one_person():
    """The 'where the model looked' panel: the person's crop, enlarged, under the whole heatmap in colour, its scale beside it."""
    _, image = _scene_with_people()
    view, note = pose.heatmap_view(image, LOCAL, 0.5, 1, "left_wrist")
    box = select(detector_outputs.predict(image, LOCAL).raw, 0.5).boxes[0]
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    zoom = drawing.display_scale((x1 - x0, y1 - y0), pose.HEATMAP_SIDE)
    assert zoom > 1 and view.height == (y1 - y0) * zoom
    assert view.width > (x1 - x0) * zoom + 20  # the colour bar on the right
    crop = np.asarray(view)[:, : (x1 - x0) * zoom].reshape(-1, 3)
    assert len(np.unique(crop, axis=0)) > 500, "the heatmap should colour the whole crop, not one dot"
    bar = np.asarray(view)[:, (x1 - x0) * zoom :]
    assert (bar == 255).all(axis=2).mean() > 0.3  # a white margin with the bar and its labels
    assert note.startswith("**left_wrist** of person 1") and "peak" in note and "bar on the right" in note
    assert models.get(LOCAL).keypoint_names == list(shapesworld.KEYPOINTS)


# ---------------------------------------------------------------- bad input


def test_a_person_out_of_range_is_a_clear_error(planted_keypoint_rcnn):
    people = len(select(detector_outputs.predict(PHOTO, KEYPOINT_RCNN).raw, 0.5))
    assert people > 1
    for person in (0, people + 1):
        with pytest.raises(ValueError, match=f"There are {people} people above score 0.50; pick a person from 1 to {people}"):
            pose.heatmap_view(PHOTO, KEYPOINT_RCNN, 0.5, person, "nose")


def test_an_unknown_keypoint_is_a_clear_error(planted_keypoint_rcnn):
    assert len(select(detector_outputs.predict(PHOTO, KEYPOINT_RCNN).raw, 0.5)) > 0
    with pytest.raises(ValueError, match="'tail' is not a keypoint of this model: nose, left_eye"):
        pose.heatmap_view(PHOTO, KEYPOINT_RCNN, 0.5, 1, "tail")


@pytest.mark.parametrize("name", ["fasterrcnn-shapes", "maskrcnn-shapes"])
def test_a_model_without_keypoints_is_a_clear_error(name):
    """A detector or Mask R-CNN in the pose tab: told to pick a Keypoint R-CNN, in the table and in the heatmap panel."""
    _, image = _scene_with_people()
    with pytest.raises(ValueError, match="predicts no keypoints; pick a Keypoint R-CNN"):
        pose.estimate_pose(image, name)
    with pytest.raises(ValueError, match="predicts no keypoints; pick a Keypoint R-CNN"):
        pose.heatmap_view(image, name, 0.05, 1, "head")


def test_a_segmentation_model_is_a_clear_error():
    _, image = _scene_with_people()
    with pytest.raises(ValueError, match="is a segmentation model"):
        pose.estimate_pose(image, "unet-shapes")


# ---------------------------------------------------------------- a pretrained model whose weights are not here


def test_picking_a_pose_model_without_weights_leaves_every_control_working(no_pretrained_weights):
    """COCO's keypoint names in the picker (from the weights' metadata), the card says what to do, one warning, an empty redraw."""
    assert models.spec(KEYPOINT_RCNN).availability() is models.Availability.UNAVAILABLE
    with pytest.warns(UserWarning, match=f"python -m models prefetch {KEYPOINT_RCNN}") as warned:
        keypoint, card = pose._model_changed(KEYPOINT_RCNN)
    assert len(warned) == 1
    assert keypoint["choices"][:2] == ["nose", "left_eye"] and len(keypoint["choices"]) == 17 and keypoint["value"] == "nose"
    assert_card_says_how_to_get_the_weights(card, KEYPOINT_RCNN)
    path = scenes.scene_file(UNSEEN + 50)
    drawn, summary, *rest = pose._redraw(path, KEYPOINT_RCNN, 0.5, 2.0, 20)
    assert drawn is None and rest == [None, None, None] and "not on this machine" in summary
    assert models.cache().loaded() == []


def test_a_scene_shows_its_true_skeletons_and_the_cards_pck_on_that_one_image():
    """PCK@0.1 beside the truth is what the trainer's own evaluation gives on that one scene."""
    from models.training.pose import evaluate

    scene, _ = _scene_with_people()
    path = scenes.scene_file(scene.seed)
    pose.estimate_pose(Image.open(path).convert("RGB"), LOCAL)
    drawn, text = scene_truth.truth_view(path, LOCAL, 0.5)
    assert isinstance(drawn, Image.Image)
    expected = evaluate(models.get(LOCAL), seed=scene.seed, count=1)
    assert f"PCK&#64;0.1 = **{expected['pck_0.1']:.2f}** over {expected['visible_keypoints']} visible keypoints" in text
    drawn, text = scene_truth.truth_view(path, KEYPOINT_RCNN)
    assert drawn is not None and "not scored" in text
