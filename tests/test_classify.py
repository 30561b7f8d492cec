"""The CLIP tab's own functions: label and template parsing, the answer, the teaching views, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import models
import shapesworld
from demos import classify as tab
from demos.inputs import BadInput
from models.clip import zero_shot

RED_RING_SEED = shapesworld.SPLITS["test"].start + 85  # a pair the mini-CLIP never trained on
LABELS = tab.parse_labels(tab.SHAPE_LABELS)


@pytest.fixture(scope="module")
def red_ring() -> Image.Image:
    image, prompt = shapesworld.single_object(RED_RING_SEED, 64)
    assert prompt.endswith("red ring")
    return Image.fromarray(image)


def test_labels_split_on_lines_and_commas_merge_duplicates_and_drop_blanks():
    assert tab.parse_labels("cat, dog\n\n  red   ring \nCat,dog,,\n") == ["cat", "dog", "red ring"]


def test_a_thousand_labels_are_fine_and_more_or_none_are_clear_errors():
    assert len(tab.parse_labels(",".join(f"label {i}" for i in range(1000)))) == 1000
    with pytest.raises(BadInput, match="at most 1000"):
        tab.parse_labels(",".join(f"label {i}" for i in range(1001)))
    for empty in ("", " \n , ,\n", None):
        with pytest.raises(BadInput, match="at least one label"):
            tab.parse_labels(empty)


def test_templates_need_one_placeholder_and_switching_them_off_uses_the_bare_label():
    assert tab.parse_templates("a photo of a {}.\n\na photo of a {}.\nart of the {}.", True) == ["a photo of a {}.", "art of the {}."]
    assert tab.parse_templates("anything", False) == ["{}"]
    with pytest.raises(BadInput, match="exactly one"):
        tab.parse_templates("a photo of a cat.", True)
    with pytest.raises(BadInput, match="at least one prompt template"):
        tab.parse_templates("  \n", True)


def test_the_tab_answers_with_open_clips_recipe_and_names_a_held_out_pair(red_ring):
    templates = ["a photo of a {}.", "a picture of a {}."]
    answer = tab.classify([red_ring], LABELS, "clip-shapes", templates)
    reference = zero_shot(models.get("clip-shapes"), [red_ring], LABELS, templates)
    np.testing.assert_allclose(answer.result.probabilities, reference.probabilities, atol=1e-6)
    scores = tab.scores_for(answer.result)
    assert max(scores, key=scores.get) == "red ring" and abs(sum(scores.values()) - 1) < 1e-4
    assert "red ring" in tab.summary(answer) and not answer.notes


def test_one_label_shows_its_cosine_similarity_not_a_softmax_of_one(red_ring):
    answer = tab.classify([red_ring], ["red ring"], "clip-shapes", ["a photo of a {}."])
    cosine = float(answer.result.similarities[0, 0])
    assert tab.scores_for(answer.result) == {"red ring": pytest.approx(cosine)}
    assert cosine < 0.999 and "cosine similarity" in tab.summary(answer)


def test_temperature_flattens_the_probabilities_and_zero_means_the_models_own(red_ring):
    own = tab.classify([red_ring], LABELS, "clip-shapes", ["a photo of a {}."], 0.0).result
    hot = tab.classify([red_ring], LABELS, "clip-shapes", ["a photo of a {}."], 1.0).result
    assert own.scale == pytest.approx(models.get("clip-shapes").logit_scale) and hot.scale == 1.0
    assert hot.probabilities.max() < own.probabilities.max()
    with pytest.raises(BadInput, match="temperature"):
        tab.classify([red_ring], LABELS, "clip-shapes", ["{}"], -1.0)


def test_words_the_local_model_cannot_read_are_named(red_ring):
    answer = tab.classify([red_ring], ["🚀 rocket", "red ring"], "clip-shapes", ["a photo of a {}."])
    assert "“🚀”" in tab.summary(answer) and "“rocket”" in tab.summary(answer)


def test_labels_longer_than_the_text_encoder_reads_are_answered_with_a_note(red_ring):
    answer = tab.classify([red_ring], ["red " * 250, "green star"], "clip-shapes", ["{}"])
    assert answer.result.probabilities.shape == (1, 2)
    assert any("longer than the text encoder reads" in note for note in answer.notes)


def test_several_images_give_a_matrix_and_a_map_where_images_land_near_their_label(red_ring):
    green_star = Image.fromarray(shapesworld.single_object(shapesworld.SPLITS["test"].start + 38, 64)[0])
    answer = tab.classify([red_ring, green_star], LABELS, "clip-shapes", ["a photo of a {}."]).result
    table = tab.similarity_table(answer, ["image 1", "image 2"])
    assert table.count("<tr>") == 3 and table.count("<td") == 2 * tab.SHOWN_LABELS and "best-scoring" in table
    image_xy, text_xy = tab.embedding_coordinates(answer)
    assert image_xy.shape == (2, 2) and text_xy.shape == (len(LABELS), 2)
    # PCA keeps what separates these points most: each image's nearest label in the map is its own.
    for row, label in ((0, "red ring"), (1, "green star")):
        assert LABELS[int(np.linalg.norm(text_xy - image_xy[row], axis=1).argmin())] == label
    picture = tab.embedding_map(answer, [red_ring, green_star])
    assert picture.size == (760, 520) and len(picture.getcolors(1 << 16) or []) > 50


def test_a_second_image_with_the_same_labels_encodes_no_text(red_ring, monkeypatch):
    classifier = models.get("clip-shapes")
    tab.classify([red_ring], LABELS, "clip-shapes", ["a drawing of a {}."])
    calls = []
    monkeypatch.setattr(classifier, "encode_texts", lambda texts: calls.append(texts))
    other = Image.fromarray(shapesworld.single_object(RED_RING_SEED + 1, 64)[0])
    tab.classify([other], LABELS, "clip-shapes", ["a drawing of a {}."])
    assert calls == []


@pytest.mark.parametrize("mode", ["L", "RGBA", "I;16", "P"])
def test_odd_images_are_answered(mode, red_ring, tmp_path):
    path = tmp_path / f"odd-{mode.replace(';', '')}.png"
    red_ring.convert(mode).save(path)
    scores, *_ = tab._classify_ui(str(path), None, "red ring, green star", True, "a photo of a {}.", 0.0, "clip-shapes")
    assert set(scores) == {"red ring", "green star"}


def test_no_image_or_too_many_are_clear_errors(red_ring, tmp_path):
    import gradio as gr

    with pytest.raises(gr.Error, match="Give an image"):
        tab._classify_ui(None, None, "cat", True, "{}", 0.0, "clip-shapes")
    path = tmp_path / "ring.png"
    red_ring.save(path)
    with pytest.raises(gr.Error, match="at most 16"):
        tab._classify_ui(str(path), [str(path)] * 16, "cat", True, "{}", 0.0, "clip-shapes")


def test_the_templates_comparison_reuses_the_first_images_embedding(red_ring, tmp_path, monkeypatch):
    classifier = models.get("clip-shapes")
    calls = []
    original = classifier.encode_images
    monkeypatch.setattr(classifier, "encode_images", lambda images: calls.append(len(images)) or original(images))
    path = tmp_path / "ring.png"
    red_ring.save(path)
    for use_templates in (True, False):
        calls.clear()
        scores, _, _, _, with_templates, bare = tab._classify_ui(str(path), None, tab.SHAPE_LABELS, use_templates, "a photo of a {}.", 0.0, "clip-shapes")
        assert calls == [1]  # one image encoded once, for all three answers
        assert max(with_templates, key=with_templates.get) == "red ring" and scores == (with_templates if use_templates else bare)
