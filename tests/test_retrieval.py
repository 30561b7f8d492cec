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
from demos import retrieval as tab
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


def test_the_map(query):
    for method in ("PCA", "t-SNE"):
        assert tab.embedding_map(query, "rotation-shapes", method).size == (760, 520)
    with pytest.raises(BadInput, match="PCA or t-SNE"):
        tab.embedding_map(query, "rotation-shapes", "UMAP")


def test_each_class_is_named_on_its_own_cluster_not_between_clusters():
    """A class in two clusters (and one stray point): its name goes on one of its clusters; a mean would land between."""
    rng = np.random.default_rng(0)
    red = np.concatenate([rng.normal((-10, 0), 0.5, (12, 2)), rng.normal((10, 0), 0.5, (8, 2)), [[0, 30]]])
    blue = rng.normal((0, -10), 0.5, (20, 2))
    names, centres = tab.class_centres(np.concatenate([red, blue]), ["red star"] * len(red) + ["blue ring"] * len(blue))
    assert names == ["blue ring", "red star"]
    assert np.linalg.norm(centres[0] - (0, -10)) < 1.5
    assert np.linalg.norm(centres[1] - (-10, 0)) < 1.5  # on the larger cluster; the mean is near (0, 1.4), on nothing
    assert any(np.allclose(centres[1], p) for p in red)  # a point of the class itself


def test_the_probe_table_sits_beside_the_cards_figures_and_says_what_it_measured():
    rows = tab.probe_table(["simclr-shapes"])
    card = models.spec("simclr-shapes").source.card()["metrics"]
    (model, baseline) = rows
    assert model[1:] == ["local", *model[2:4], card["linear_probe_accuracy"], card["recall_at_1"]]
    assert baseline[1] == "baseline" and baseline[4:] == [card["random_init_probe_accuracy"], card["random_init_recall_at_1"]]
    assert all(0 <= v <= 1 for row in rows for v in row[2:4]) and model[2] > baseline[2] + 0.5
    note = tab.probe_protocol(["simclr-shapes"], {"DINOv2 ViT-S/14 (self-supervised)": "weights unavailable offline"})
    first = tab.GALLERY_SEED
    assert f"fitted on {tab.PROBE_FIT} gallery objects (seeds {first}–{first + tab.PROBE_FIT - 1}" in note
    assert f"seeds {card['probe_seeds']}" in note and card["eval_seeds"] in note and "Why the figures differ" in note
    assert "Left out, their weights not on this machine:** DINOv2 ViT-S/14 (self-supervised) (weights unavailable offline)." in note


def test_the_probe_panel_names_the_encoders_it_leaves_out(hf_home, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(hf_home))  # no ResNet-50 either
    monkeypatch.setattr(tab, "probe_table", lambda names: [[name] for name in names])  # the probes themselves are tested above
    rows, note = tab._probe_ui()
    assert [row[0] for row in rows] == ["simclr-shapes", "rotation-shapes"]  # offline, nothing planted: the local ones
    for spec in models.for_task(tab.TASK)[:2]:
        assert spec.tier == "pretrained" and f"{spec.title} ({models.Availability.UNAVAILABLE.value})" in note


def test_captions_are_the_label_alone_and_the_cosines_are_in_the_table(query, tmp_path):
    path = tmp_path / "q.png"
    query.save(path)
    shown, table, note = tab._retrieve_ui(str(path), "rotation-shapes", 5)
    assert [caption for _, caption in shown] == [row[1] for row in table]  # "orange triangle" at most: fits a tile
    assert all(len(caption) <= len("orange triangle") for _, caption in shown)
    assert all(-1 <= row[2] <= 1 for row in table) and [row[0] for row in table] == [1, 2, 3, 4, 5]


def test_the_api_needs_no_gallery_files_names_every_output_and_types_k_as_an_integer(app_url, query, tmp_path):
    from gradio_client import Client, handle_file

    path = tmp_path / "q.png"
    query.save(path)
    client = Client(app_url, verbose=False)
    shown, table, note = client.predict(handle_file(str(path)), "rotation-shapes", 3, api_name="/retrieve")  # no files
    assert len(shown) == len(table["data"]) == 3 and "of yours" not in note
    info = client.view_api(print_info=False, return_format="dict")["named_endpoints"]["/retrieve"]
    assert all(r["label"] and not r["label"].startswith("value_") for r in info["returns"]), info["returns"]
    parameters = {p["parameter_name"]: p for p in info["parameters"]}
    assert parameters["k"]["type"]["type"] == "integer" and parameters["files"]["parameter_has_default"]


def test_odd_images_are_answered(query, tmp_path):
    for mode in ("L", "RGBA", "I;16"):
        path = tmp_path / f"q-{mode.replace(';', '')}.png"
        query.convert(mode).save(path)
        shown, table, note = tab._retrieve_ui(str(path), "rotation-shapes", 3)
        assert len(shown) == len(table) == 3


# ---------------------------------------------------------------- pretrained paths, planted offline



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


def test_an_unseen_object_query_shows_its_class_and_how_many_neighbours_share_it(tmp_path):
    from demos import scenes

    seed = shapesworld.SPLITS["test"].start + 5_000
    path = scenes.object_file(seed)
    truth = models.retrieval.label_of(shapesworld.single_object(seed, scenes.OBJECT_SIDE)[1])
    found = tab._retrieve_ui(path, "simclr-shapes", 8)
    note = tab.query_truth(path, found[1])
    same = sum(row[1] == truth for row in found[1])
    assert f"class **{truth}**" in note and f"{same} of 8 (precision@8 {same / 8:.2f})" in note
    assert same >= 6  # the contrastive encoder's recall@1 is 0.98 on unseen objects

    photo = tmp_path / f"shapesworld-object-{seed}.png"  # named like one, but a photo: no truth made up
    Image.fromarray(data.coffee()).save(photo)
    assert tab.query_truth(str(photo), found[1]) == ""
