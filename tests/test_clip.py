"""The CLIP tab's own functions: label and template parsing, the answer, the teaching views, bad input."""

from __future__ import annotations

import gradio as gr
import numpy as np
import pytest
from PIL import Image

import models
import shapesworld
from demos import clip as tab
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


def test_one_label_shows_its_cosine_similarity_never_as_a_percentage(red_ring):
    green_star = Image.fromarray(shapesworld.single_object(shapesworld.SPLITS["test"].start + 38, 64)[0])
    answer = tab.classify([red_ring, green_star], ["red ring"], "clip-shapes", ["a photo of a {}."]).result
    cosines = answer.similarities[:, 0]
    assert tab.scores_for(answer) == f"red ring: cosine similarity {cosines[0]:.3f}"  # text: a label chart would show 93%
    table = tab.similarity_table(answer, ["image 1", "image 2"])
    assert "%" not in table.replace("100%", "") and "100%" not in table.split("</caption>")[1]  # no 100% per image
    assert all(f"{c:.2f}</td>" in table for c in cosines) and "Cosine similarity" in table
    assert "cosine similarity" in tab.summary(tab.Classification(answer, []))


def test_the_table_says_its_probabilities_are_normalised_per_image_across_the_labels(red_ring):
    answer = tab.classify([red_ring], LABELS, "clip-shapes", ["a photo of a {}."]).result
    caption = tab.similarity_table(answer, ["image 1"]).split("<caption>")[1].split("</caption>")[0]
    assert f"normalised per image across all {len(LABELS)} labels" in caption and "not a percentage" in caption


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


def test_examples_are_single_objects_and_an_unseen_one_shows_its_truth_and_whether_the_top_1_is_right():
    from demos import scenes

    paths = [row[0] for row in tab._examples()[:2]]
    assert [scenes.object_of(p)[0] for p in paths] == list(tab.EXAMPLE_SEEDS)  # files the tab recognises as objects
    scores, note, table, *_ = tab._classify_ui(paths[0], [paths[1]], tab.SHAPE_LABELS)
    assert max(scores, key=scores.get) == "red ring"
    assert "True label: **red ring**" in note and "top-1 **right** ✓" in note
    assert "image 1 (true: red ring)" in table and "image 2 (true: green star)" in table
    _, note, *_ = tab._classify_ui(paths[0], None, "green star, blue circle")
    assert "not among the labels" in note
    _, note, *_ = tab._classify_ui(paths[0], None, "green star, red ring, blue circle, yellow ring, red star")
    assert "top-1" in note and ("right" in note or "wrong" in note)
    drawn = scenes.new_object_file()  # the "New unseen object" button's draw
    assert tab.truth_of(drawn) == " ".join(scenes.object_of(drawn)[1].split()[-2:])


def test_a_multi_object_scene_on_the_local_model_is_flagged_and_a_photo_has_no_truth(tmp_path):
    from demos import scenes

    scene = scenes.scene_file(shapesworld.SPLITS["test"].start)
    _, note, *_ = tab._classify_ui(scene, None, tab.SHAPE_LABELS)
    assert "trained on single objects" in note and "True label" not in note
    renamed = tmp_path / f"shapesworld-object-{tab.EXAMPLE_SEEDS[0]}.png"
    Image.fromarray(shapesworld.generate(5).image).save(renamed)  # the name of an object, other pixels
    assert tab.truth_of(str(renamed)) is None


def test_labels_times_templates_past_the_cap_are_refused_saying_the_limit(red_ring, tmp_path):
    from models.clip import MAX_PROMPTS

    labels = [f"label {i}" for i in range(1000)]
    with pytest.raises(ValueError, match=f"at most {MAX_PROMPTS:,} are encoded per request"):
        tab.classify([red_ring], labels, "clip-shapes", ["a photo of a {}.", "a {}.", "the {}."])
    path = tmp_path / "ring.png"
    red_ring.save(path)
    with pytest.raises(gr.Error, match="1,000 labels × 3 templates make 3,000 prompts"):
        tab._classify_ui(str(path), None, ",".join(labels), True, "a {}.\nthe {}.\none {}.")
    # Templates off: the bare labels are answered, and the templates comparison (over the cap) is skipped with a note.
    scores, note, _, _, with_templates, bare = tab._classify_ui(str(path), None, ",".join(labels), False, "a {}.\nthe {}.\none {}.")
    assert with_templates is None and bare and "No comparison with the templates" in note


def test_a_request_at_the_prompt_cap_grows_memory_by_a_bounded_amount(red_ring):
    """1,000 labels x 2 templates = MAX_PROMPTS texts, encoded in batches: RSS grows far less than the 2.26 GB one batch took."""
    import gc

    import psutil

    from models.clip import MAX_PROMPTS

    templates = ["a photo of a {}.", "a drawing of a {}."]
    labels = [f"red ring {i}" for i in range(MAX_PROMPTS // len(templates))]
    tab.classify([red_ring], ["red ring", "green star"], "clip-shapes", templates)  # the model loaded, the first-call costs paid
    gc.collect()
    process = psutil.Process()
    before = process.memory_info().rss
    answer = tab.classify([red_ring], labels, "clip-shapes", templates)
    growth = process.memory_info().rss - before
    assert answer.result.probabilities.shape == (1, len(labels))
    assert growth < 300 * 2**20, f"RSS grew {growth / 2**20:.0f} MB for {MAX_PROMPTS} prompts"


def test_the_api_needs_only_the_image_and_names_every_output(app_url):
    """Through gradio_client: every argument but the image is optional (``more`` included), and every output has a name."""
    from gradio_client import Client, handle_file

    from demos import scenes

    client = Client(app_url, verbose=False)
    path = handle_file(scenes.object_file(tab.EXAMPLE_SEEDS[0]))
    scores, note, table, space, with_templates, bare = client.predict(path, api_name="/classify")
    assert scores["label"] == "red ring" and "top-1 **right**" in note and with_templates["label"] == "red ring"
    scores, note, *_ = client.predict(path, labels_text="red ring", api_name="/classify")
    assert scores["label"].startswith("red ring: cosine similarity ") and not scores["confidences"]
    info = client.view_api(print_info=False, return_format="dict")["named_endpoints"]["/classify"]
    assert all(r["label"] and not r["label"].startswith("value_") for r in info["returns"]), info["returns"]
    assert [p["parameter_name"] for p in info["parameters"] if not p["parameter_has_default"]] == ["image_path"]
