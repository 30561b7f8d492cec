"""The instance segmentation tab and Mask R-CNN, each checked against the library it claims to equal.

- The pretrained Mask R-CNN from planted random-init weights, through the app's path
  (``demos.instances.segment_instances``) against torchvision's documented inference: the same
  boxes, labels and scores, and the same mask probabilities.
- The COCO results file against pycocotools: its RLE masks decode to exactly the masks the app draws.
- The instance-id map: where masks overlap, the better instance is on top, in the PNG too.
- The local ShapesWorld Mask R-CNN: the quality bar on unseen scenes, and the semantic-versus-instance views.
- Bad input: a clear message, never a stack trace.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.models._api as tv_api
from PIL import Image

import models
import shapesworld
from demos import detector_outputs, instances, picker, scene_truth, scenes
from models.detection import RAW_LIMIT_PER_INSTANCE
from models.sources import Availability
from tests.test_detection import (  # noqa: F401 (no_pretrained_weights: a fixture)
    PHOTO, UNSEEN, _assert_same_detections, _plant_confident, assert_card_says_how_to_get_the_weights, no_pretrained_weights,
)

MASK_RCNN = "maskrcnn-resnet50-v2"
LOCAL = "maskrcnn-shapes"


# ---------------------------------------------------------------- helpers (test_pose.py uses them too)


@contextlib.contextmanager
def planted(name: str, torch_home: Path, seed: int = 0):
    """``name``'s real architecture with confident random weights in ``torch_home``, which TORCH_HOME names meanwhile.

    The model cache is cleared on the way in and out, so the planted model never leaks into other tests.
    Yields the planted state dict.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TORCH_HOME", str(torch_home))
        state = _plant_confident(models.spec(name), torch_home, seed)
        models.cache.cache_clear()
        try:
            yield state
        finally:
            models.cache.cache_clear()


def spy_on_torchvision_loader(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The URLs torchvision's own loader (``load_state_dict_from_url``) is asked for, from now on."""
    calls: list[str] = []
    original = tv_api.load_state_dict_from_url
    monkeypatch.setattr(tv_api, "load_state_dict_from_url", lambda url, *a, **k: calls.append(url) or original(url, *a, **k))
    return calls


def threshold_inside(scores: np.ndarray) -> float:
    """A score threshold halfway between two neighbouring raw scores in the middle: it cuts, and no score sits on it.

    Mask and Keypoint R-CNN keep only the best RAW_LIMIT_PER_INSTANCE raw candidates, so the app equals
    the library only above the lowest kept score; a threshold in the middle of the kept scores is.
    """
    values = np.unique(scores)
    assert len(values) >= 4, "too few distinct scores to place a threshold"
    middle = len(values) // 2
    return float((values[middle - 1] + values[middle]) / 2)


def loads_through_torchvision(name: str, state: dict, monkeypatch: pytest.MonkeyPatch):
    """Load ``name`` afresh through the app's loader; torchvision's own loader must read the planted file.

    Returns the raw prediction for PHOTO, run inside the spy (the first call loads the model).
    """
    spec = models.spec(name)
    assert spec.availability() is Availability.CACHED
    models.cache.cache_clear()
    calls = spy_on_torchvision_loader(monkeypatch)
    raw = detector_outputs.predict(PHOTO, name).raw
    assert calls == [spec.source.weights.url]
    loaded = models.get(name).network.state_dict()
    assert all(torch.equal(state[k], v) for k, v in loaded.items())  # (frozen batch norms drop num_batches_tracked)
    return raw


def match_by_box(boxes: np.ndarray, expected_boxes: np.ndarray) -> np.ndarray:
    """For each box, the index of the same box among ``expected_boxes`` (asserting there is one)."""
    distance = np.abs(boxes[:, None] - expected_boxes[None]).sum(-1)
    index = distance.argmin(1)
    assert np.allclose(expected_boxes[index], boxes, atol=1e-3)
    return index


# ---------------------------------------------------------------- the pretrained Mask R-CNN, planted


@pytest.fixture(scope="module")
def planted_mask_rcnn(tmp_path_factory):
    with planted(MASK_RCNN, tmp_path_factory.mktemp("torch_home")) as state:
        yield state


def test_pretrained_mask_rcnn_equals_torchvisions_documented_inference(planted_mask_rcnn, monkeypatch):
    """segment_instances() = ``weights.transforms()`` + ``builder(weights=..., thresholds)``: same detections, same masks.

    The app keeps each mask as its probability x 255 in a byte, so the probabilities agree within 1/255.
    """
    raw = loads_through_torchvision(MASK_RCNN, planted_mask_rcnn, monkeypatch)
    assert len(raw.scores) == RAW_LIMIT_PER_INSTANCE and raw.masks.shape == (len(raw.scores), PHOTO.height, PHOTO.width)
    assert raw.masks.dtype == np.uint8
    spec = models.spec(MASK_RCNN)
    weights, builder = spec.source.weights, spec.source.builder
    score, count = threshold_inside(raw.scores), 10
    assert score > raw.scores.min()  # above every candidate the app dropped: the library can return nothing the app lacks

    found = instances.segment_instances(PHOTO, MASK_RCNN, score, mask_threshold=0.5, max_detections=count).detections
    reference = builder(weights=weights, box_score_thresh=score, box_nms_thresh=0.5, box_detections_per_img=count).eval()
    with torch.inference_mode():
        expected = reference([weights.transforms()(PHOTO)])[0]
    assert len(expected["scores"]) == count, "the maximum count should cut, or the comparison proves less"
    expected_boxes = expected["boxes"].numpy()
    _assert_same_detections(found, expected_boxes, expected["scores"].numpy(), expected["labels"].numpy(), raw)

    expected_masks = expected["masks"][:, 0].numpy()
    assert expected_masks.shape == found.masks.shape
    same = match_by_box(found.boxes, expected_boxes)
    assert sorted(same.tolist()) == list(range(count))
    assert np.abs(found.masks / 255 - expected_masks[same]).max() <= 1 / 255 + 1e-6
    assert 0 < (found.masks >= 128).mean() < 1  # the masks are neither empty nor everything: the comparison means something


@pytest.mark.parametrize("mask_threshold", [0.3, 0.5, 0.7])
def test_coco_export_masks_decode_to_the_drawn_masks(planted_mask_rcnn, mask_threshold, tmp_path):
    """The downloadable COCO file must hold the masks the user sees: RLE that pycocotools decodes to them exactly.

    Thresholds like 0.3 and 0.7 fall on half a byte (76.5, 178.5): the drawing and the export must round alike.
    """
    from pycocotools import mask as coco_mask
    from pycocotools.coco import COCO

    result = instances.segment_instances(PHOTO, MASK_RCNN, 0.05, mask_threshold)
    assert len(result.detections) > 1
    drawn = instances.binary_masks(result.detections, mask_threshold)
    annotations = result.coco["annotations"]
    assert len(annotations) == len(drawn)
    for annotation, mask, record in zip(annotations, drawn, result.records):
        decoded = coco_mask.decode(annotation["segmentation"]).astype(bool)
        assert np.array_equal(decoded, mask)
        assert annotation["area"] == record["mask_pixels"] == mask.sum()

    path = tmp_path / "instances.json"
    path.write_text(json.dumps(result.coco))
    coco = COCO(str(path))
    assert coco.imgs[1]["width"] == PHOTO.width and coco.imgs[1]["height"] == PHOTO.height
    for annotation, mask, label in zip(annotations, drawn, result.detections.labels):
        assert np.array_equal(coco.annToMask(coco.anns[annotation["id"]]).astype(bool), mask)
        assert coco.cats[annotation["category_id"]]["name"] == result.detections.categories[label]
    results = coco.loadRes(annotations)
    assert len(results.anns) == len(annotations)


def test_instance_id_map_puts_better_instances_on_top():
    """Masks come best first; where they overlap, the pixel belongs to the better instance (checked by hand)."""
    masks = np.zeros((3, 4, 6), bool)
    masks[0, :2, :3] = True  # the best
    masks[1, 1:3, 2:5] = True  # under the best at (1, 2)
    masks[2, :, 4:] = True  # under the second at (1, 4) and (2, 4)
    expected = np.array(
        [
            [1, 1, 1, 0, 3, 3],
            [1, 1, 1, 2, 2, 3],
            [0, 0, 2, 2, 2, 3],
            [0, 0, 0, 0, 3, 3],
        ]
    )
    assert np.array_equal(instances.instance_id_map(masks), expected)


def test_instance_id_png_holds_the_best_instance_per_pixel(planted_mask_rcnn):
    """The downloadable PNG's pixel values are instance numbers (1 = best score), also after a round trip through a file."""
    result = instances.segment_instances(PHOTO, MASK_RCNN, 0.05, 0.5)
    masks = instances.binary_masks(result.detections, 0.5)
    assert (masks.sum(0) > 1).any(), "no overlapping masks: nothing to order"
    best_first = np.where(masks.any(0), masks.argmax(0) + 1, 0)  # the first (best) instance covering each pixel
    assert np.all(np.diff(result.detections.scores) <= 0)
    buffer = io.BytesIO()
    result.instance_png.save(buffer, format="PNG")
    png = Image.open(io.BytesIO(buffer.getvalue()))
    assert png.mode == "P" and png.size == PHOTO.size
    assert np.array_equal(np.asarray(png), best_first)
    assert [r["mask_pixels"] for r in result.records] == masks.sum((1, 2)).tolist()


def test_semantic_versus_instance_for_a_pretrained_model_has_no_unet_view(planted_mask_rcnn):
    """The U-Net knows ShapesWorld only, so beside a pretrained model the comparison shows two views."""
    views = instances.semantic_versus_instance(PHOTO, MASK_RCNN, 0.05, 0.5)
    assert [caption.split(":")[0] for _, caption in views] == ["instances", "merged by class"]
    assert all(isinstance(view, Image.Image) for view, _ in views)


# ---------------------------------------------------------------- the local Mask R-CNN


@pytest.fixture(scope="module")
def local_metrics() -> dict:
    """The shipped model on 100 scenes no trainer drew (test-split seeds), scored once for the tests below."""
    from models.training.instances import evaluate

    return evaluate(models.get(LOCAL), seed=UNSEEN, count=100)


def test_local_mask_rcnn_beats_the_box_and_mask_map_50_bars_on_unseen_scenes(local_metrics):
    assert local_metrics["mask_map_50"] >= 0.95 and local_metrics["map_50"] >= 0.95, local_metrics


def test_local_mask_rcnn_beats_the_strict_mask_map_bar_on_unseen_scenes(local_metrics):
    assert local_metrics["mask_map"] >= 0.70, local_metrics


def test_semantic_versus_instance_shows_three_views_for_the_local_model():
    """Instances, the same masks merged by class, and the segmentation tab's U-Net on the same scene."""
    scene = shapesworld.generate(UNSEEN + 40)
    image = Image.fromarray(scene.image)
    views = instances.semantic_versus_instance(image, LOCAL, 0.5, 0.5)
    assert [caption.split(":")[0] for _, caption in views] == ["instances", "merged by class", "the U-Net (segmentation tab)"]
    assert all(isinstance(view, Image.Image) and view.width >= image.width for view, _ in views)
    found = instances.segment_instances(image, LOCAL, 0.5, 0.5).detections
    assert views[0][1].startswith(f"instances: {len(found)} objects") and len(found) > 0


# ---------------------------------------------------------------- bad input


def test_a_detection_only_model_is_a_clear_error():
    image = Image.fromarray(shapesworld.generate(UNSEEN + 41).image)
    with pytest.raises(ValueError, match="predicts no masks; pick a Mask R-CNN"):
        instances.segment_instances(image, "fcos-shapes")


def test_a_segmentation_model_is_a_clear_error():
    image = Image.fromarray(shapesworld.generate(UNSEEN + 41).image)
    with pytest.raises(ValueError, match="is a segmentation model"):
        instances.segment_instances(image, "unet-shapes")


@pytest.mark.parametrize("mask_threshold", [0, 1, -0.5, 1.5])
def test_a_mask_threshold_outside_zero_to_one_is_a_clear_error(mask_threshold):
    """At 0 every pixel of every box would be mask, at 1 none: the message says what is allowed."""
    image = Image.fromarray(shapesworld.generate(UNSEEN + 41).image)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        instances.segment_instances(image, LOCAL, 0.5, mask_threshold)


# ---------------------------------------------------------------- a pretrained model whose weights are not here

MASK_RCNN = "maskrcnn-resnet50-v2"


def test_picking_an_instance_model_without_weights_warns_once_and_redraws_empty(no_pretrained_weights):
    assert models.spec(MASK_RCNN).availability() is Availability.UNAVAILABLE
    with pytest.warns(UserWarning, match=f"python -m models prefetch {MASK_RCNN}") as warned:
        card = picker.model_picked(MASK_RCNN)
    assert len(warned) == 1
    assert_card_says_how_to_get_the_weights(card, MASK_RCNN)
    drawn, summary, *rest = instances._redraw(scenes.scene_file(UNSEEN + 3), MASK_RCNN, 0.5, 0.5, True, True, 100)
    assert drawn is None and rest == [None] * 4 and "not on this machine" in summary
    assert models.cache().loaded() == []


def test_a_scene_shows_its_true_masks_and_the_cards_mask_ap_on_that_one_image():
    """Mask and box AP beside the truth are what the trainer's own evaluation gives on that one scene."""
    from models.training.instances import evaluate

    seed = UNSEEN + 3
    path = scenes.scene_file(seed)
    instances.segment_instances(Image.open(path).convert("RGB"), "maskrcnn-shapes")
    drawn, text = scene_truth.truth_view(path, "maskrcnn-shapes")
    assert isinstance(drawn, Image.Image)
    expected = evaluate(models.get("maskrcnn-shapes"), seed=seed, count=1)
    assert f"mask AP&#64;0.5 = **{expected['mask_map_50']:.2f}**, AP&#64;[.5:.95] = {expected['mask_map']:.2f}" in text
    assert f"box AP&#64;0.5 = **{expected['map_50']:.2f}**" in text
