"""The segmentation tab's pure functions, on the shipped local U-Net and on planted pretrained weights."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import models
import shapesworld
from demos import drawing, scenes, segmentation
from models.training.segmentation import TEST_SEED, evaluate

UNSEEN = 500  # test-split scenes: seeds the trainer never drew from
MIOU_BAR = 0.90


@pytest.fixture(scope="module")
def unet():
    return models.get("unet-shapes")


def test_local_unet_beats_the_bar_on_unseen_scenes(unet):
    metrics = evaluate(unet, seed=TEST_SEED, count=UNSEEN)
    assert metrics["mean_iou"] >= MIOU_BAR, metrics
    assert min(metrics["iou_per_class"].values()) >= 0.75, metrics["iou_per_class"]


def test_shipped_card_matches_the_weights_and_reports_the_bar():
    spec = models.spec("unet-shapes")
    card = spec.source.card()
    for key in ("command", "seed", "train_seconds", "parameters", "metrics"):
        assert key in card
    network = models.get("unet-shapes").network
    assert card["parameters"] == sum(p.numel() for p in network.parameters())
    assert card["metrics"]["mean_iou"] >= MIOU_BAR
    assert card["train"]["steps"] > 0 and card["train_seconds"] > 0  # training speed is checked by `make bench`


def test_segment_returns_overlay_mask_and_shares_for_a_scene():
    scene = shapesworld.generate(TEST_SEED + 777)
    image = Image.fromarray(scene.image)
    result = segmentation.segment(image, "unet-shapes", opacity=0.5)
    assert result.overlay.size == image.size
    mask = np.asarray(result.mask)
    assert result.mask.mode == "P" and mask.shape == scene.semantic.shape
    assert (mask == scene.semantic).mean() > 0.95  # pixel values are class indices
    assert abs(sum(result.shares.values()) - 1) < 1e-3
    present = {shapesworld.CLASSES[i] for i in np.unique(scene.semantic)}
    assert set(result.shares) >= present - {c for c in present if (scene.semantic == shapesworld.CLASSES.index(c)).mean() < 0.01}
    for name in result.shares:
        assert name in result.legend
    scale = drawing.display_scale(image.size, 384)
    assert result.confidence.height == image.height * scale  # the map, enlarged as shown...
    assert result.confidence.width > image.width * scale + 20  # ...and its colour bar beside it
    # The U-Net is least sure on object boundaries: darker there than inside regions.
    edges = np.zeros_like(scene.semantic, bool)
    edges[:, 1:] |= scene.semantic[:, 1:] != scene.semantic[:, :-1]
    edges[1:, :] |= scene.semantic[1:, :] != scene.semantic[:-1, :]
    assert result.output.confidence[edges].mean() < result.output.confidence[~edges].mean()


def test_opacity_zero_shows_the_image_and_one_shows_the_classes():
    image = Image.fromarray(shapesworld.generate(TEST_SEED + 5).image)
    clear = segmentation.segment(image, "unet-shapes", opacity=0.0)
    assert np.array_equal(np.asarray(clear.overlay), np.asarray(image))
    solid = segmentation.segment(image, "unet-shapes", opacity=1.0)
    labels = clear.output.labels
    colours = np.asarray(solid.overlay)[labels > 0]
    assert len(colours) and not np.array_equal(colours, np.asarray(image)[labels > 0])


def test_rerendering_reuses_the_cached_prediction(monkeypatch):
    image = Image.fromarray(shapesworld.generate(TEST_SEED + 9).image)
    model = models.get("unet-shapes")
    calls = []
    original = type(model).forward
    monkeypatch.setattr(type(model), "forward", lambda self, img: calls.append(1) or original(self, img))
    for opacity in (0.2, 0.5, 0.9):
        segmentation.segment(image, "unet-shapes", opacity)
    assert len(calls) <= 1


def test_any_image_size_works_with_the_unet():
    image = Image.fromarray(shapesworld.generate(TEST_SEED + 3, size=200).image).crop((0, 0, 157, 93))
    result = segmentation.segment(image, "unet-shapes")
    assert result.output.labels.shape == (93, 157)


def test_feature_maps_show_every_unet_level():
    image = Image.fromarray(shapesworld.generate(TEST_SEED).image)
    maps = segmentation.feature_maps(image, "unet-shapes")
    names = [name for _, name in maps]
    assert [n.split(" (")[0] for n in names] == ["encoder 1", "encoder 2", "encoder 3", "encoder 4", "decoder 1", "decoder 2", "decoder 3"]
    assert all(isinstance(img, Image.Image) and img.width > 0 for img, _ in maps)


def test_feature_maps_explain_that_they_need_the_unet(planted_torch_home):
    image = Image.fromarray(shapesworld.generate(TEST_SEED).image)
    with pytest.raises(ValueError, match="U-Net"):
        segmentation.feature_maps(image, "lraspp-mobilenet")


@pytest.mark.parametrize("name", ["deeplabv3-mobilenet", "lraspp-mobilenet"])
def test_pretrained_tier_runs_the_same_predict_on_a_real_photo(planted_torch_home, name):
    from skimage import data

    photo = Image.fromarray(data.chelsea())
    result = segmentation.segment(photo, name)
    assert result.output.labels.shape == (photo.height, photo.width)
    assert result.output.categories[0] == "__background__" and "cat" in result.output.categories
    assert result.overlay.size == photo.size


def test_the_model_picker_relabels_a_model_once_its_weights_arrive(tmp_path, monkeypatch):
    from demos.picker import _picker_choices
    from models.planting import plant_random_weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    before = dict((name, label) for label, name in _picker_choices("segmentation"))
    assert "unavailable offline" in before["fcn-resnet50"] and "shipped ✓" in before["unet-shapes"]
    plant_random_weights(models.spec("fcn-resnet50"), tmp_path)
    after = dict((name, label) for label, name in _picker_choices("segmentation"))
    assert "cached ✓" in after["fcn-resnet50"]


@pytest.mark.parametrize("name", ["deeplabv3-mobilenet", "lraspp-mobilenet"])
def test_pretrained_segmenter_equals_torchvisions_documented_inference(name, tmp_path, monkeypatch):
    """The app's labels = ``weights.transforms()`` -> ``model(batch)["out"]`` -> bilinear resize to the photo -> argmax.

    The weights are the real architecture's random init, planted where torchvision looks, with the
    batch-norm statistics set from one pass over the photo: without that, random MobileNetV3
    activations vanish, every pixel gets the same class, and the comparison would prove nothing.
    """
    import torch
    import torch.nn.functional as F
    from skimage import data
    from torch import nn

    from models.planting import plant_random_weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    spec = models.spec(name)
    weights, builder = spec.source.weights, spec.source.builder
    photo = Image.fromarray(data.chelsea())
    batch = weights.transforms()(photo).unsqueeze(0)

    path = plant_random_weights(spec, tmp_path)
    network = spec.source.untrained().eval()
    network.load_state_dict(torch.load(path, weights_only=True))
    for norm in [m for m in network.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]:
        norm.reset_running_stats()
        norm.momentum = None  # a plain average over the one pass
        norm.train()
    with torch.no_grad():
        network(torch.cat([batch, batch.flip(-1)]))  # two images: the pooled 1x1 branch still has two values
    torch.save(network.state_dict(), path)

    models.cache.cache_clear()
    try:
        labels = models.get(name)(photo).labels
    finally:
        models.cache.cache_clear()
    reference = builder(weights=weights).eval()
    with torch.no_grad():
        logits = reference(batch)["out"]
    logits = F.interpolate(logits, size=(photo.height, photo.width), mode="bilinear", align_corners=False)[0]
    expected = logits.argmax(0).numpy()
    assert len(np.unique(expected)) > 1, "one class everywhere: the comparison would prove nothing"
    top = logits.topk(2, dim=0).values
    mismatch = labels != expected
    assert not mismatch.any() or (top[0] - top[1]).numpy()[mismatch].max() < 1e-5  # only float ties may differ


# ---------------------------------------------------------------- a ShapesWorld scene's truth beside the prediction


def test_scene_scores_are_torchmetrics_miou_over_the_classes_present_and_pixel_accuracy():
    truth = np.array([[0, 0, 1, 1], [0, 0, 1, 1]])
    predicted = np.array([[0, 0, 1, 2], [0, 0, 1, 1]])
    scores = segmentation.scene_scores(predicted, truth, list(shapesworld.CLASSES))
    # background: 4/4, circle: 3/4, square: 0/1 (predicted, not there); the other four classes are in neither map
    assert scores.iou_per_class == {"background": 1.0, "circle": 0.75, "square": 0.0}
    assert scores.mean_iou == pytest.approx(1.75 / 3)
    assert scores.pixel_accuracy == pytest.approx(7 / 8)


def test_truth_beside_the_unet_uses_its_colours_and_scores_the_scene():
    scene = shapesworld.generate(TEST_SEED + 21)
    image = Image.fromarray(scene.image)
    output = segmentation.predict(image, "unet-shapes")
    drawn, html = segmentation.truth_view(scene, output, "U-Net", opacity=1.0)
    colours = drawing.palette(len(shapesworld.CLASSES))
    shapes = scene.semantic > 0
    assert np.array_equal(np.asarray(drawn)[shapes], colours[scene.semantic[shapes]])  # the prediction's palette, opaque
    expected = segmentation.scene_scores(output.labels, scene.semantic, list(shapesworld.CLASSES))
    assert expected.mean_iou > 0.8 and expected.pixel_accuracy > 0.95
    assert f"mIoU <b>{expected.mean_iou:.2f}</b>" in html and f"pixel accuracy <b>{expected.pixel_accuracy:.2f}</b>" in html
    for name in (shapesworld.CLASSES[i] for i in np.unique(scene.semantic)):
        assert f"<span class='dvl-legend-name'>{name}</span>" in html  # the legend of the true classes


def test_a_pretrained_model_gets_the_truth_alone_with_why_it_is_not_scored():
    scene = shapesworld.generate(TEST_SEED + 22)
    drawn, html = segmentation.truth_view(scene, None, "DeepLabV3", opacity=0.6)
    assert drawn.size == (scene.image.shape[1], scene.image.shape[0])
    assert "not ShapesWorld's" in html and "PASCAL VOC" in html and "mIoU" not in html


def test_the_truth_shows_for_a_scene_file_only(tmp_path, planted_torch_home):
    shown, notes = segmentation._truth_ui(scenes.scene_file(TEST_SEED + 23), "unet-shapes", 0.6)
    assert shown["visible"] and isinstance(shown["value"], Image.Image) and "mIoU" in notes["value"]
    shown, notes = segmentation._truth_ui(scenes.scene_file(TEST_SEED + 23), "lraspp-mobilenet", 0.6)
    assert shown["visible"] and "mIoU" not in notes["value"]
    photo = tmp_path / f"shapesworld-{TEST_SEED + 23}.png"  # named like a scene, but other pixels: no made-up truth
    Image.new("RGB", (128, 128), (200, 10, 10)).save(photo)
    for path in (str(photo), None):
        shown, notes = segmentation._truth_ui(path, "unet-shapes", 0.6)
        assert not shown["visible"] and not notes["visible"]
