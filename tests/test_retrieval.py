"""The retrieval tab and its encoders: search, bad input, per-request uploads, the pretrained paths
against their libraries' documented feature extraction, and the local encoders' bars."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from skimage import data

import models
import shapesworld
from demos import retrieve as tab
from demos.inputs import BadInput
from models.training import retrieval as training

PHOTO = Image.fromarray(data.chelsea())


@pytest.fixture(scope="module")
def query() -> Image.Image:
    return Image.fromarray(shapesworld.single_object(tab.GALLERY_SEED - 1, 64)[0])


def test_nearest_is_a_full_sort_by_cosine_cut_at_k():
    rng = np.random.default_rng(0)
    index = rng.normal(size=(1000, 32)).astype(np.float32)
    index /= np.linalg.norm(index, axis=1, keepdims=True)
    q = index[7]
    order, similarities = tab.nearest(q, index, 10)
    expected = np.argsort(-(index @ q), kind="stable")[:10]
    np.testing.assert_array_equal(order, expected)
    assert order[0] == 7 and similarities[0] == pytest.approx(1.0) and np.all(np.diff(similarities) <= 0)
    assert len(tab.nearest(q, index[:3], 10)[0]) == 3  # k beyond the index: all of it


@pytest.mark.parametrize("k", [0, -1, tab.MAX_K + 1])
def test_k_outside_its_range_is_a_clear_error(query, k):
    with pytest.raises(BadInput, match="k must be between"):
        tab.retrieve(query, "rotation-shapes", k)


def test_uploads_are_searched_for_that_request_only(query):
    with_upload = tab.retrieve(query, "rotation-shapes", 50, uploads=[PHOTO, query.copy()])
    assert with_upload.items[0].label == "your image 2" and with_upload.similarities[0] == pytest.approx(1.0, abs=1e-5)
    assert "searched for you only" in with_upload.note
    without = tab.retrieve(query, "rotation-shapes", 50)
    assert not any(item.label.startswith("your image") for item in without.items)
    assert len(tab.gallery()) == tab.GALLERY_SIZE  # the shared gallery never grows


def test_two_hundred_uploads_are_searched_and_more_are_refused(query):
    small = [Image.fromarray(shapesworld.single_object(s, 64)[0]) for s in range(200)]
    found = tab.retrieve(query, "rotation-shapes", 5, uploads=small)
    assert len(found.items) == 5 and "200 of yours" in found.note
    with pytest.raises(BadInput, match="at most 200"):
        tab.retrieve(query, "rotation-shapes", 5, uploads=small + small[:1])


def test_the_map_and_the_probe_table(query):
    for method in ("PCA", "t-SNE"):
        assert tab.embedding_map(query, "rotation-shapes", method).size == (760, 520)
    with pytest.raises(BadInput, match="PCA or t-SNE"):
        tab.embedding_map(query, "rotation-shapes", "UMAP")
    rows = tab.probe_table(["rotation-shapes"])
    assert [row[1] for row in rows] == ["local", "baseline"] and all(0 <= row[2] <= 1 and 0 <= row[3] <= 1 for row in rows)


def test_odd_images_are_answered(query, tmp_path):
    for mode in ("L", "RGBA", "I;16"):
        path = tmp_path / f"q-{mode.replace(';', '')}.png"
        query.convert(mode).save(path)
        shown, table, note = tab._retrieve_ui(str(path), "rotation-shapes", 3, None)
        assert len(shown) == len(table) == 3


# ---------------------------------------------------------------- pretrained paths, planted offline


@pytest.fixture()
def hf_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("DVL_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path


def test_dinov2_embedding_equals_transformers_feature_extraction(hf_home):
    from transformers import AutoImageProcessor, Dinov2Model

    from models.planting import plant_random_weights

    snapshot = plant_random_weights(models.spec("dinov2-small"), hf_home=hf_home)
    embedder = models.spec("dinov2-small").load(models.spec("dinov2-small"))
    processor = AutoImageProcessor.from_pretrained(snapshot)
    network = Dinov2Model.from_pretrained(snapshot).eval()
    with torch.inference_mode():
        expected = network(**processor(images=PHOTO, return_tensors="pt")).pooler_output
    np.testing.assert_allclose(embedder.embed([PHOTO]), F.normalize(expected, dim=-1).numpy(), atol=1e-5)
    assert embedder.embed([PHOTO]).shape == (1, 384)


def test_resnet50_embedding_equals_torchvisions_documented_inference(planted_resnet50):
    from torchvision.models import ResNet50_Weights, resnet50

    weights = ResNet50_Weights.IMAGENET1K_V2
    embedder = models.spec("resnet50-supervised").load(models.spec("resnet50-supervised"))
    network = resnet50(weights=weights).eval()
    network.fc = torch.nn.Identity()
    with torch.inference_mode():
        expected = network(weights.transforms()(PHOTO).unsqueeze(0))
    np.testing.assert_allclose(embedder.embed([PHOTO]), F.normalize(expected, dim=-1).numpy(), atol=1e-5)


@pytest.fixture()
def planted_resnet50(tmp_path, monkeypatch):
    from models.planting import plant_random_weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("DVL_OFFLINE", "1")
    return plant_random_weights(models.spec("resnet50-supervised"), tmp_path)


def test_missing_pretrained_weights_say_how_to_get_them(hf_home, query):
    with pytest.raises(models.WeightsUnavailable, match="prefetch"):
        tab.retrieve(query, "dinov2-small", 5)


# ---------------------------------------------------------------- the local encoders on unseen objects


@pytest.fixture(scope="module")
def contrastive_metrics() -> dict:
    return training.evaluate(models.get("simclr-shapes"), count=500)


def test_the_contrastive_encoder_learns_far_more_than_random_features(contrastive_metrics):
    metrics = contrastive_metrics
    assert metrics["linear_probe_accuracy"] >= metrics["random_init_probe_accuracy"] + 0.25, metrics
    assert metrics["recall_at_1"] >= metrics["random_init_recall_at_1"] + 0.2, metrics


def test_the_contrastive_encoder_meets_its_bars_on_unseen_objects(contrastive_metrics):
    assert contrastive_metrics["linear_probe_accuracy"] >= 0.90, contrastive_metrics
    assert contrastive_metrics["recall_at_1"] >= 0.90, contrastive_metrics


def test_the_rotation_encoder_reports_the_same_keys_and_its_shortcut():
    """No bar: on objects drawn at random angles, only the background says which way is up."""
    metrics = training.evaluate(models.get("rotation-shapes"), count=300)
    assert {"linear_probe_accuracy", "random_init_probe_accuracy", "recall_at_1"} <= set(metrics)
    assert metrics["linear_probe_accuracy"] < metrics["random_init_probe_accuracy"]
