"""The detection tab and the model layer under it, each checked against the library it claims to equal.

- The NMS and IoU teaching math against torchvision's own ``nms`` and ``box_iou``.
- ``select`` (re-filtering cached candidates) against torchvision's own post-processing code.
- Every pretrained torchvision detector and DETR, from planted random-init weights, through the
  app's path (``demos.detection.detect``) against the library's documented inference.
- The local ShapesWorld detectors: the quality bar on unseen scenes and the teaching views.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.ops import box_iou, nms

import models
import shapesworld
from demos import boxes, detection, scene_truth, scenes
from demos.examples import example_images
from models.detection import RAW_LIMIT, SCORE_FLOOR, RawDetections, select
from models.sources import Availability, TorchvisionWeights
from tests.conftest import planted_hugging_face


def _photo() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut()).resize((256, 256))  # small: the detectors resize to their own size anyway


PHOTO = _photo()
UNSEEN = shapesworld.SPLITS["test"].start + 1000  # test-split scenes: no trainer ever drew these seeds


@pytest.fixture
def fresh_cache():
    """A new process-wide model cache before and after: planted weights must not leak into other tests."""
    models.cache.cache_clear()
    yield
    models.cache.cache_clear()


# ---------------------------------------------------------------- IoU and NMS step by step


def _random_boxes(rng: np.random.Generator, n: int, extent: float = 100) -> np.ndarray:
    corner = rng.uniform(0, extent, (n, 2))
    size = rng.uniform(4, 40, (n, 2))
    return np.concatenate([corner, corner + size], 1).astype(np.float32)


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7, 1.0])
def test_nms_walkthrough_keeps_exactly_what_torchvision_keeps(threshold):
    """The step-by-step view must show the detector's real NMS, not a look-alike."""
    rng = np.random.default_rng(int(threshold * 10))
    suppressed = 0
    for _ in range(25):
        n = int(rng.integers(1, 40))
        candidates = _random_boxes(rng, n)
        scores = rng.random(n).astype(np.float32)
        steps = boxes.nms_walkthrough(candidates, scores, threshold)
        expected = nms(torch.from_numpy(candidates), torch.from_numpy(scores), threshold).tolist()
        assert [s.index for s in steps if s.kept] == expected  # same boxes, in the same (score) order
        assert [s.rank for s in steps] == list(range(1, n + 1))
        by_rank = {s.rank: s for s in steps}
        for step in steps:
            if step.kept:
                continue
            suppressed += 1
            winner = by_rank[step.suppressed_by]
            assert winner.kept and winner.rank < step.rank
            iou = float(box_iou(torch.from_numpy(candidates[[winner.index]]), torch.from_numpy(candidates[[step.index]])))
            assert iou > threshold and step.iou == pytest.approx(iou, abs=1e-5)
    assert (suppressed > 0) == (threshold < 1)  # the sets really exercise suppression; at 1.0 nothing is suppressed


def test_iou_parts_equal_torchvisions_box_iou():
    rng = np.random.default_rng(1)
    pairs = [(a, b) for a, b in zip(_random_boxes(rng, 200), _random_boxes(rng, 200))]
    pairs += [
        (np.array([0, 0, 10, 10]), np.array([20, 20, 30, 30])),  # disjoint
        (np.array([0, 0, 10, 10]), np.array([10, 0, 20, 10])),  # touching along an edge
        (np.array([0, 0, 100, 100]), np.array([20, 30, 40, 50])),  # nested
        (np.array([5, 5, 15, 25]), np.array([5, 5, 15, 25])),  # identical
    ]
    for a, b in pairs:
        parts = boxes.iou_parts(a, b)
        expected = float(box_iou(torch.from_numpy(np.asarray([a], np.float64)), torch.from_numpy(np.asarray([b], np.float64))))
        assert parts.iou == pytest.approx(expected, abs=1e-6)
        assert (parts.overlap is not None) == (parts.intersection > 0)
    nested = boxes.iou_parts(np.array([0, 0, 100, 100]), np.array([20, 30, 40, 50]))
    assert nested.intersection == 400 and nested.union == 10_000 and nested.overlap == (20, 30, 40, 50)


@pytest.mark.parametrize("text", ["1 2 3", "a b c d", "10 10 5 20", "1 2 3 4 5", "", "10 20 30 40 px"])
def test_parse_box_rejects_what_is_not_a_box(text):
    with pytest.raises(ValueError, match="Box A"):
        boxes.parse_box(text, "Box A")


def test_parse_box_accepts_commas_and_the_iou_panel_explains_it():
    assert boxes.parse_box("10, 20, 30, 40").tolist() == [10, 20, 30, 40]
    figure, text = boxes.explain_iou("0 0 10 10", "5 0 15 10")
    assert "IoU = 50 / 150 = 0.333" in text and figure.width > 0


# ---------------------------------------------------------------- select() against torchvision's post-processing


def _faster_rcnn_postprocess(logits, deltas, proposals, size, score, iou, count):
    """torchvision's own RoIHeads.postprocess_detections: softmax, decode, clip, score filter, per-class NMS, top-k."""
    heads = RoIHeads(None, None, None, 0.5, 0.5, 512, 0.25, None, score, iou, count)
    found = heads.postprocess_detections(logits, deltas, [proposals], [size])
    return [t[0].numpy() for t in found]


def test_select_on_open_candidates_equals_torchvisions_post_processing():
    """The app asks the network for everything above the floor, un-suppressed, then ``select``s.

    That must give what torchvision returns when the thresholds are set inside the model.
    """
    rng = torch.Generator().manual_seed(0)
    centres = torch.rand(6, 2, generator=rng) * 160 + 20
    n, classes = 150, 5  # 150 proposals x 4 classes stays under RAW_LIMIT: nothing is truncated here
    centre = centres[torch.randint(0, 6, (n,), generator=rng)] + torch.randn(n, 2, generator=rng) * 6
    half = torch.rand(n, 2, generator=rng) * 20 + 8
    proposals = torch.cat([centre - half, centre + half], 1)  # clusters of overlapping boxes around 6 objects
    logits = torch.randn(n, classes, generator=rng) * 2
    deltas = torch.randn(n, classes * 4, generator=rng) * 0.1
    size = (200, 200)
    raw_boxes, raw_scores, raw_labels = _faster_rcnn_postprocess(logits, deltas, proposals, size, SCORE_FLOOR, 1.0, RAW_LIMIT)
    assert 0 < len(raw_scores) < RAW_LIMIT
    raw = RawDetections(raw_boxes, raw_scores, raw_labels, [f"c{i}" for i in range(classes)], size)
    for score in (0.05, 0.2, 0.5):
        for iou in (0.3, 0.5, 0.7):
            for count in (5, 100):
                expected_boxes, expected_scores, expected_labels = _faster_rcnn_postprocess(logits, deltas, proposals, size, score, iou, count)
                found = select(raw, score, iou, None, count)
                assert np.array_equal(found.labels, expected_labels)
                assert np.array_equal(found.scores, expected_scores)
                assert np.allclose(found.boxes, expected_boxes, atol=1e-4)
    assert len(select(raw, 0.2, 0.3, None, 100)) < len(select(raw, 0.2, 1.0, None, 100))  # NMS really suppressed


def _raw(boxes_, scores, labels, uses_nms=True) -> RawDetections:
    return RawDetections(
        np.asarray(boxes_, np.float32).reshape(-1, 4), np.asarray(scores, np.float32), np.asarray(labels, np.int64),
        ["background", "a", "b", "c"], (100, 100), uses_nms=uses_nms,
    )


def test_select_needs_scores_strictly_above_the_threshold():
    raw = _raw([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]], [0.5, np.nextafter(np.float32(0.5), 1), 0.9], [1, 1, 1])
    assert sorted(select(raw, 0.5).index.tolist()) == [1, 2]


def test_class_filter_leaves_the_other_classes_nms_unchanged():
    """NMS is per class: filtering to one class gives exactly that class's share of the unfiltered result."""
    rng = np.random.default_rng(3)
    n = 300
    raw = _raw(_random_boxes(rng, n), rng.random(n), rng.integers(1, 4, n))
    everything = select(raw, 0.1, 0.4, None, 1000)
    assert set(everything.labels.tolist()) == {1, 2, 3}
    for chosen in ({1}, {2, 3}):
        only = select(raw, 0.1, 0.4, chosen, 1000)
        assert only.index.tolist() == [i for i, c in zip(everything.index, everything.labels) if c in chosen]


def test_max_detections_keeps_the_best_k_after_nms():
    rng = np.random.default_rng(4)
    raw = _raw(_random_boxes(rng, 200), rng.random(200), rng.integers(1, 4, 200))
    every = select(raw, 0.0, 0.5, None, 1000)
    assert len(every) > 20 and np.all(np.diff(every.scores) <= 0)
    for k in (1, 7, 20):
        assert select(raw, 0.0, 0.5, None, k).index.tolist() == every.index[:k].tolist()


def test_a_model_without_nms_keeps_duplicates_best_first():
    """DETR predicts a set: ``select`` must not suppress, whatever IoU threshold the slider says."""
    same = [[10, 10, 50, 50]] * 3
    raw = _raw(same, [0.6, 0.9, 0.7], [1, 1, 1], uses_nms=False)
    assert select(raw, 0.5, 0.1).index.tolist() == [1, 2, 0]
    assert select(_raw(same, [0.6, 0.9, 0.7], [1, 1, 1]), 0.5, 0.1).index.tolist() == [1]  # with NMS: one survives


# ---------------------------------------------------------------- pretrained torchvision detectors, planted

# Thresholds per model (score, NMS IoU, max detections): a different corner of the controls for each.
TORCHVISION = {
    "fasterrcnn-resnet50-v2": (0.3, 0.5, 100),
    "retinanet-resnet50-v2": (0.5, 0.4, 50),
    "fcos-resnet50": (0.2, 0.6, 100),
    "fasterrcnn-mobilenet": (SCORE_FLOOR, 0.3, 1000),  # every candidate, harsh NMS, the API's maximum count
    "fasterrcnn-mobilenet-320": (0.5, 0.7, 150),
    "ssdlite-mobilenet": (0.95, 0.55, 300),
}
CLASSIFIER_BIAS = re.compile(r".*(cls_score|cls_logits)\.bias|head\.classification_head\.module_list\.\d+\.1\.bias")


def test_every_torchvision_detector_is_checked_against_its_library():
    names = [s.name for s in models.for_task("detection") if isinstance(s.source, TorchvisionWeights)]
    assert names == list(TORCHVISION)


def _calibrate_backbone(network: nn.Module, image: torch.Tensor) -> None:
    """Set the backbone's batch-norm statistics from one pass, as training would.

    Random-init MobileNetV3 activations shrink to ~1e-14 through its blocks, so every score would be
    the classifier's bias: all tied, and a comparison of tied lists proves little.
    """
    norms = [m for m in network.backbone.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a plain average over the pass
        norm.train()
    with torch.no_grad():
        images, _ = network.transform([image, image.flip(-1)])  # two images: a 1x1 feature map still has two values
        network.backbone(images.tensors)
    network.eval()


def _plant_confident(spec, torch_home, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights of the real architecture where torchvision looks, made to give confident, distinct scores.

    Random init scores everything below the 0.05 floor (an empty output proves nothing), so the final
    classification biases are replaced by large random values: x3 before a softmax (Faster R-CNN, SSD),
    x1.5 before a sigmoid (RetinaNet, FCOS: larger would round many scores to exactly 1.0, all tied).
    """
    from models.planting import plant_random_weights

    path = plant_random_weights(spec, torch_home, seed)
    network = spec.source.untrained().eval()
    network.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    if "mobilenet" in spec.source.builder.__name__:  # random ResNet-50 features do not vanish: spare the pass
        _calibrate_backbone(network, spec.source.weights.transforms()(PHOTO))
    state = network.state_dict()
    generator = torch.Generator().manual_seed(seed)
    biases = [k for k in state if CLASSIFIER_BIAS.fullmatch(k)]
    assert biases, f"{spec.name}: no classification bias found"
    for key in biases:
        state[key] = torch.randn(state[key].shape, generator=generator) * (1.5 if "cls_logits" in key else 3)
    torch.save(state, path)
    return state


def _by_score(boxes_, scores, labels):
    """Detections best first; equal scores ordered by label and box, so two lists compare item by item."""
    boxes_, scores, labels = (np.asarray(a) for a in (boxes_, scores, labels))
    order = np.lexsort((*np.round(boxes_.T[::-1], 2), labels, -scores))
    return boxes_[order].reshape(-1, 4), scores[order], labels[order]


def _assert_same_detections(found, expected_boxes, expected_scores, expected_labels, raw: RawDetections):
    """Same detections, item by item, best first.

    Where two overlapping raw candidates of a class have exactly the same score, NMS may keep either one
    (torchvision's sort does not promise an order for ties): only those rows may differ in their box.
    """
    boxes_, scores, labels = _by_score(found.boxes, found.scores, found.labels)
    expected_boxes, expected_scores, expected_labels = _by_score(expected_boxes, expected_scores, expected_labels)
    assert len(scores) == len(expected_scores)
    assert np.array_equal(labels, expected_labels)
    assert np.allclose(scores, expected_scores, atol=1e-5)
    tied = np.zeros(len(scores), bool)
    if raw.uses_nms:  # without NMS (DETR) ties only change the order, which _by_score settles
        pairs, counts = np.unique(np.stack([raw.labels, raw.scores.view(np.int32)], 1), axis=0, return_counts=True)
        tied_pairs = {tuple(p) for p in pairs[counts > 1]}
        tied = np.array([(c, s) in tied_pairs for c, s in zip(labels, scores.astype(np.float32).view(np.int32))], bool)
        assert tied.mean() < 0.05, "too many tied scores to compare"
    assert np.allclose(boxes_[~tied], expected_boxes[~tied], atol=1e-3)


@pytest.mark.parametrize("name", list(TORCHVISION))
def test_pretrained_detector_equals_torchvisions_documented_inference(name, tmp_path, monkeypatch, fresh_cache):
    """The app's detect() = ``weights.transforms()`` + ``builder(weights=..., thresholds)`` on the same photo."""
    import torchvision.models._api as tv_api

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    spec = models.spec(name)
    weights, builder = spec.source.weights, spec.source.builder
    state = _plant_confident(spec, tmp_path)
    assert spec.availability() is Availability.CACHED

    calls = []
    original = tv_api.load_state_dict_from_url
    monkeypatch.setattr(tv_api, "load_state_dict_from_url", lambda url, *a, **k: calls.append(url) or original(url, *a, **k))
    score, iou, count = TORCHVISION[name]
    found = detection.detect(PHOTO, name, score_threshold=score, nms_iou=iou, max_detections=count).detections
    assert calls == [weights.url]  # torchvision's own loader read the planted file
    loaded = models.get(name).network.state_dict()
    assert all(torch.equal(state[k], v) for k, v in loaded.items())  # (frozen batch norms drop num_batches_tracked)

    thresholds = ("box_score_thresh", "box_nms_thresh", "box_detections_per_img") if name.startswith("fasterrcnn") else (
        "score_thresh", "nms_thresh", "detections_per_img")
    reference = builder(weights=weights, **dict(zip(thresholds, (score, iou, count)))).eval()
    with torch.inference_mode():
        expected = reference([weights.transforms()(PHOTO)])[0]
    assert len(expected["scores"]) > 0, "no detection: the comparison would prove nothing"
    raw = detection.predict(PHOTO, name).raw  # cached: the network does not run again
    _assert_same_detections(found, expected["boxes"].numpy(), expected["scores"].numpy(), expected["labels"].numpy(), raw)


# ---------------------------------------------------------------- DETR, planted in a Hugging Face cache


@pytest.fixture(scope="module")
def planted_detr(tmp_path_factory):
    """A random-init ``facebook/detr-resnet-50`` snapshot in a temporary HF_HOME, offline, its class biases spread out."""
    from safetensors.torch import load_file, save_file

    with planted_hugging_face(tmp_path_factory, "detr-resnet50") as snapshot:
        weights = snapshot / "model.safetensors"
        state = load_file(str(weights))
        bias = state["class_labels_classifier.bias"]
        state["class_labels_classifier.bias"] = torch.randn(bias.shape, generator=torch.Generator().manual_seed(0)) * 3
        save_file(state, str(weights), metadata={"format": "pt"})
        yield snapshot


def test_detr_loads_offline_from_the_hugging_face_cache(planted_detr):
    spec = models.spec("detr-resnet50")
    assert spec.availability() is Availability.CACHED
    detector = spec.load(spec)
    assert len(detector.categories) == 91 and detector.categories[1] == "person" and detector.categories[0] == "N/A"
    assert "person" in detection.class_choices("detr-resnet50") and "N/A" not in detection.class_choices("detr-resnet50")


def test_detr_equals_transformers_documented_inference(planted_detr):
    """detect() = the image processor, the model, and ``post_process_object_detection`` at the same threshold."""
    from transformers import DetrForObjectDetection, DetrImageProcessor

    processor = DetrImageProcessor.from_pretrained(planted_detr)
    model = DetrForObjectDetection.from_pretrained(planted_detr).eval()
    with torch.inference_mode():
        outputs = model(**processor(images=PHOTO, return_tensors="pt"))
    size = [(PHOTO.height, PHOTO.width)]
    every = np.sort(processor.post_process_object_detection(outputs, threshold=SCORE_FLOOR, target_sizes=size)[0]["scores"].numpy())
    middle = float(every[len(every) // 2])  # a score itself: it must be left out (strictly above only)
    for threshold in (0.3, middle):
        expected = processor.post_process_object_detection(outputs, threshold=threshold, target_sizes=size)[0]
        assert len(expected["scores"]) > 0, "no detection: the comparison would prove nothing"
        found = detection.detect(PHOTO, "detr-resnet50", score_threshold=threshold, nms_iou=0.3).detections  # no NMS: IoU ignored
        raw = detection.predict(PHOTO, "detr-resnet50").raw
        _assert_same_detections(found, expected["boxes"].numpy(), expected["scores"].numpy(), expected["labels"].numpy(), raw)
    assert len(expected["scores"]) < len(every)  # the threshold really cut


def test_detr_without_weights_offline_says_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("DVL_WEIGHTS_DIR", raising=False)
    spec = models.spec("detr-resnet50")
    assert spec.availability() is Availability.UNAVAILABLE
    with pytest.raises(models.WeightsUnavailable, match="python -m models prefetch"):
        spec.load(spec)


# ---------------------------------------------------------------- the local detectors and the tab's functions


def _scene_image(offset: int) -> tuple[shapesworld.Scene, Image.Image]:
    scene = shapesworld.generate(UNSEEN + offset)
    return scene, Image.fromarray(scene.image)


def test_moving_thresholds_refilters_without_running_the_network_again(monkeypatch, fresh_cache):
    """Sliders and the class filter re-filter the cached candidates: a slider move must not cost a forward pass."""
    network = models.get("fasterrcnn-shapes").network
    calls = []
    original = network.forward
    monkeypatch.setattr(network, "forward", lambda *a, **k: calls.append(1) or original(*a, **k))
    _, image = _scene_image(11)
    results = [
        detection.detect(image, "fasterrcnn-shapes", 0.3, 0.5),
        detection.detect(image, "fasterrcnn-shapes", 0.8, 0.3, max_detections=3),
        detection.detect(image, "fasterrcnn-shapes", 0.1, 0.7, classes=["circle", "person"]),
    ]
    assert len(calls) == 1
    assert {r["label"] for r in results[2].records} <= {"circle", "person"}
    assert len(results[1].detections) <= 3


def test_unknown_class_names_are_a_clear_error():
    categories = list(shapesworld.CLASSES)
    assert detection.class_ids(categories, ["circle", "person"]) == {1, 6}
    assert detection.class_ids(categories, []) is None
    with pytest.raises(ValueError, match="does not know 'giraffe'"):
        detection.class_ids(categories, ["giraffe"])
    with pytest.raises(ValueError, match="does not know 'background'"):
        detection.class_ids(categories, ["background"])


def test_coco_export_loads_in_pycocotools(tmp_path):
    """The downloadable JSON is a COCO file pycocotools reads, and its ``annotations`` a valid results list."""
    from pycocotools.coco import COCO

    _, image = _scene_image(12)
    result = detection.detect(image, "fcos-shapes", score_threshold=0.3)
    assert len(result.detections) > 0
    path = tmp_path / "detections.json"
    path.write_text(json.dumps(result.coco))
    coco = COCO(str(path))
    assert coco.getImgIds() == [1] and coco.imgs[1]["width"] == image.width and coco.imgs[1]["height"] == image.height
    assert {c["name"] for c in coco.loadCats(coco.getCatIds())} == set(shapesworld.CLASSES[1:])
    results = coco.loadRes(result.coco["annotations"])
    assert len(results.anns) == len(result.detections)
    for annotation, box, label in zip(result.coco["annotations"], result.detections.boxes, result.detections.labels):
        x, y, w, h = annotation["bbox"]
        assert np.allclose([x, y, x + w, y + h], box, atol=0.02)  # x, y, width, height of the drawn box
        assert coco.cats[annotation["category_id"]]["name"] == shapesworld.CLASSES[label]
    assert [r["label"] for r in result.records] == [shapesworld.CLASSES[a["category_id"]] for a in result.coco["annotations"]]


@pytest.mark.parametrize("name", ["fasterrcnn-shapes", "fcos-shapes"])
def test_local_detector_beats_the_bar_on_unseen_scenes(name):
    """The shipped weights, through the app's own wrapper and ``select``, on test-split scenes no trainer saw."""
    from models.training.detection import evaluate

    metrics = evaluate(models.get(name), seed=UNSEEN, count=100)
    assert metrics["map_50"] >= 0.97 and metrics["map"] >= 0.85, metrics


@pytest.mark.parametrize("name", ["fasterrcnn-shapes", "fcos-shapes"])
def test_local_detector_finds_every_object_of_a_scene(name):
    """At the tab's default threshold each true object gets a box of its class (IoU > 0.5): what a student sees."""
    for offset in range(3):
        scene, image = _scene_image(20 + offset)
        found = detection.detect(image, name, score_threshold=0.5).detections
        iou = box_iou(torch.from_numpy(scene.boxes).float(), torch.from_numpy(found.boxes)).numpy()
        for i, label in enumerate(scene.labels):
            matches = iou[i][found.labels == label]
            assert matches.size and matches.max() > 0.5, f"seed {UNSEEN + 20 + offset}: missed a {shapesworld.CLASSES[label]}"


def _same_shape(drawn: Image.Image, image: Image.Image) -> bool:
    """The drawing is the image (small scenes are upscaled for display), with the same aspect ratio."""
    return drawn.width >= image.width and drawn.width * image.height == drawn.height * image.width


def test_proposal_views_show_the_two_stages_of_faster_rcnn():
    scene, image = _scene_image(30)
    views = detection.proposal_views(image, "fasterrcnn-shapes", 0.5, 0.5, top_n=20)
    assert len(views) == 3
    assert all(isinstance(view, Image.Image) and _same_shape(view, image) for view, _ in views)
    assert views[0][1].startswith("1. RPN: top 20") and "after the RPN's NMS" in views[1][1] and views[2][1].startswith("3. final")


def test_proposal_views_explain_that_one_stage_detectors_have_none():
    _, image = _scene_image(30)
    with pytest.raises(ValueError, match="two-stage"):
        detection.proposal_views(image, "fcos-shapes", 0.5, 0.5)


@pytest.mark.parametrize("iou", [0.3, 0.7])
def test_nms_view_keeps_what_select_keeps_for_that_class(iou):
    """The step-by-step NMS table agrees with the detections the tab draws for that class."""
    _, image = _scene_image(31)
    raw = detection.predict(image, "fcos-shapes").raw
    view = detection.nms_view(image, "fcos-shapes", 0.1, iou, None)
    figure, rows, shown = view.figure, view.rows, view.class_name
    kept = [row for row in rows if row[2] == "kept"]
    expected = select(raw, 0.1, iou, {raw.categories.index(shown)}, RAW_LIMIT)
    assert len(kept) == len(expected) > 0
    assert [row[1] for row in kept] == [round(float(s), 3) for s in expected.scores]
    assert len(rows) == int(((raw.scores > 0.1) & (raw.labels == raw.categories.index(shown))).sum())
    assert _same_shape(figure, image)


def test_nms_view_steps_through_one_decision_at_a_time():
    """Step k shows the first k decisions: k table rows, the k-th decision spelled out, the rest waiting."""
    _, image = _scene_image(31)
    final = detection.nms_view(image, "fcos-shapes", 0.1, 0.5, None)
    assert final.step == final.steps >= 3 and len(final.rows) == final.steps
    for k in (1, 2, final.steps):
        view = detection.nms_view(image, "fcos-shapes", 0.1, 0.5, final.class_name, k)
        assert view.step == k and view.rows == final.rows[:k]
        assert f"Step {k} of {final.steps}: candidate #{k}" in view.note
        assert f"{final.steps - k} waiting" in view.note
        assert _same_shape(view.figure, image)
    assert detection.nms_view(image, "fcos-shapes", 0.1, 0.5, final.class_name, 10_000).step == final.steps  # clamped


def test_nms_figure_draws_kept_boxes_on_top_of_suppressed_ones():
    """Two candidates on the same spot: the lower one is suppressed, and the kept box's outline is what shows."""
    image = Image.new("RGB", (200, 200), (255, 255, 255))
    candidates = np.array([[40, 40, 160, 160], [40, 40, 160, 161]], np.float32)
    steps = boxes.nms_walkthrough(candidates, np.array([0.9, 0.8]), 0.5)
    assert [s.kept for s in steps] == [True, False]
    for step in (1, 2):  # waiting, then suppressed: under the kept box either way
        figure = np.asarray(boxes.nms_figure(image, candidates, steps, step))
        scale = figure.shape[0] / 200
        left_edge = figure[int(100 * scale), int(40 * scale) + 1]
        assert tuple(left_edge) == boxes.KEPT, (step, left_edge)
    assert boxes.nms_rows(steps, 1) == [[1, 0.9, "kept", "no kept box overlaps it enough"]]
    assert "**suppressed**: IoU 0.99 with kept #1 exceeds 0.50" in boxes.nms_step_note(steps, 2, 0.5)


def test_the_iou_text_names_map_at_05_without_an_email_link():
    _, text = boxes.explain_iou("20 20 100 90", "60 40 140 120")
    assert "mAP&#64;0.5" in text and "@" not in text


def _dependencies(blocks) -> list:
    return list(blocks.fns.values())


def test_a_failed_iou_clears_the_previous_result():
    """Every way of computing IoU empties the figure and the text when it fails: no stale "IoU = 0.200" beside the error."""
    import gradio as gr

    with gr.Blocks() as blocks:
        boxes.build_iou_panel()
    dependencies = _dependencies(blocks)
    compute = [d for d in dependencies if getattr(d.fn, "__name__", "") == "explain_iou"]
    assert len(compute) == 1 and len(compute[0].targets) == 3  # the button and both boxes' Enter
    cleanup = [d for d in dependencies if d.trigger_after == compute[0]._id and d.trigger_only_on_failure]
    assert len(cleanup) == 1 and [o._id for o in cleanup[0].outputs] == [o._id for o in compute[0].outputs]


def test_counts_are_integers_and_every_output_is_named_in_the_api():
    """/detect's maximum is an integer (not 100.0), and no output is called value_123 in the API description."""
    import gradio as gr

    with gr.Blocks() as blocks:
        detection.build()
    endpoint = blocks.get_api_info()["named_endpoints"]["/detect"]
    types = {p["parameter_name"]: p["type"]["type"] for p in endpoint["parameters"]}
    assert types["max_detections"] == "integer"
    labels = [r["label"] for r in endpoint["returns"]]
    assert not [label for label in labels if label.startswith("value_")], labels


# ---------------------------------------------------------------- a pretrained model whose weights are not here

UNAVAILABLE = "fasterrcnn-resnet50-v2"


@pytest.fixture
def no_pretrained_weights(tmp_path, monkeypatch):
    """Offline, with empty torchvision and Hugging Face caches: no pretrained model can load."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("DVL_WEIGHTS_DIR", raising=False)
    monkeypatch.setenv("DVL_OFFLINE", "1")
    models.cache.cache_clear()
    yield
    models.cache.cache_clear()


def assert_card_says_how_to_get_the_weights(card: str, name: str) -> None:
    """The card names the model, says its weights are not here and gives the command, never this server's paths."""
    spec = models.spec(name)
    assert card.startswith(f"**{spec.title}**") and "not on this machine" in card
    assert f"`python -m models prefetch {name}`" in card
    assert "checkpoints" not in card and "/tmp" not in card and str(spec.source.cache_path.parent) not in card


def test_picking_a_model_without_weights_leaves_every_control_working(no_pretrained_weights):
    """Classes come from the weights' metadata, the NMS slider stays, the card says what to do, one warning; nothing loads."""
    assert models.spec(UNAVAILABLE).availability() is Availability.UNAVAILABLE
    with pytest.warns(UserWarning, match=f"cannot run here.*python -m models prefetch {UNAVAILABLE}") as warned:
        classes, nms_default, card = detection._model_changed(UNAVAILABLE)
    assert len(warned) == 1
    assert "person" in classes["choices"] and "__background__" not in classes["choices"] and classes["value"] == []
    assert nms_default == models.spec(UNAVAILABLE).default_nms_iou == 0.5  # its builder's box_nms_thresh, from the spec
    assert_card_says_how_to_get_the_weights(card, UNAVAILABLE)

    path = scenes.scene_file(UNSEEN + 31)
    drawn, summary, *rest = detection._refilter(path, UNAVAILABLE, 0.5, 0.5, ["person"], 100)
    assert drawn is None and rest == [None, None, None] and "not on this machine" in summary
    assert models.cache().loaded() == []


def test_detr_lists_cocos_classes_without_its_weights(no_pretrained_weights):
    assert models.spec("detr-resnet50").availability() is Availability.UNAVAILABLE
    choices = detection.class_choices("detr-resnet50")
    assert choices == detection.class_choices("fasterrcnn-mobilenet") and "N/A" not in choices


# ---------------------------------------------------------------- a ShapesWorld input's ground truth and score


def test_a_scene_shows_its_truth_and_the_cards_ap_on_that_one_image():
    """The AP beside the truth is what the trainer's own evaluation gives on that one scene."""
    from models.training.detection import evaluate

    seed = UNSEEN + 5
    path = scenes.scene_file(seed)
    detection.detect(Image.open(path).convert("RGB"), "fcos-shapes")
    drawn, text = scene_truth.truth_view(path, "fcos-shapes")
    assert isinstance(drawn, Image.Image) and drawn.width >= 128
    expected = evaluate(models.get("fcos-shapes"), seed=seed, count=1)
    assert f"box AP&#64;0.5 = **{expected['map_50']:.2f}**" in text and f"AP&#64;[.5:.95] = {expected['map']:.2f}" in text
    assert "@" not in text


def test_a_pretrained_model_gets_the_truth_without_a_score_and_a_photo_gets_neither():
    drawn, text = scene_truth.truth_view(scenes.scene_file(UNSEEN + 5), "fasterrcnn-mobilenet-320")
    assert drawn is not None and "COCO's classes" in text and "AP" not in text
    assert scene_truth.truth_view(example_images()[-1], "fcos-shapes") == (None, "")  # a photo
