"""Captioning and VQA: the local models' bars, BLIP through the app's loader, decoding, explanations, the tab's functions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata

import models
import shapesworld
import gradio as gr
from demos import captioning as tab
from demos import scenes
from demos.examples import example_images
from models.captioning import Explanation, Step, longest_caption, names_only_what_is_there
from models.decoding import MAX_NEW_TOKENS, Decoding, Generated
from models.gradcam import gradcam
from models.nets.captioning import MAX_TEXT_TOKENS, shapes_tokenizer
from models.sources import Availability, WeightsUnavailable
from models.training import captioning as training
from shapesworld.language import captions_for, named_objects
from tests.conftest import planted_hugging_face

SCENE = Image.fromarray(shapesworld.generate(shapesworld.SPLITS["test"].start + 7).image)
PHOTO = Image.fromarray(skdata.astronaut())
LOCAL_CAPTIONERS = ("blip-caption-shapes", "lstm-caption-shapes")
LONG_PREFIX = "a picture of an astronaut with a large red circle left of a small blue star above a person and two green rings"


@pytest.fixture(scope="module")
def captioner():
    return models.get("blip-caption-shapes")


@pytest.fixture(scope="module")
def answerer():
    return models.get("blip-vqa-shapes")


# ---------------------------------------------------------------- the grammar, the vocabulary, the metrics


def test_the_vocabulary_reads_every_caption_question_and_answer_of_the_grammar():
    tokenizer = shapes_tokenizer()
    for seed in range(300):
        scene = shapesworld.generate(seed)
        texts = [*captions_for(scene.objects), *(t for qa in scene.qa for t in (qa.question, qa.answer))]
        for text in texts:
            ids = tokenizer(text).input_ids
            assert tokenizer.unk_token_id not in ids and len(ids) <= MAX_TEXT_TOKENS, text
            assert tokenizer.decode(ids, skip_special_tokens=True) == text


def test_both_orders_of_a_caption_name_the_same_objects_and_the_scene_uses_one():
    for seed in range(200):
        scene = shapesworld.generate(seed)
        variants = captions_for(scene.objects)
        assert scene.caption in variants and len({tuple(named_objects(v)) for v in variants}) == 1
    assert named_objects("a large red circle left of a person") == [("", "person"), ("red", "circle")]
    assert named_objects("a small blue star above a small blue star") == [("blue", "star"), ("blue", "star")]
    assert named_objects("an empty scene") == []


def test_the_caption_metrics_come_from_the_coco_scorers_and_are_perfect_on_the_references():
    scenes = [shapesworld.generate(s) for s in range(40)]

    class Echo:  # writes the other order of each reference: right by every metric, and exact
        def generate(self, images, decoding):
            return Generated([captions_for(s.objects)[-1] for s in scenes], [])

    metrics = training.evaluate_captions(Echo(), scenes, batch=len(scenes))
    assert metrics["caption_all_attributes"] == metrics["caption_reference_objects"] == metrics["caption_exact"] == 1.0
    assert metrics["bleu4"] > 0.99 and metrics["cider"] > 5.0  # CIDEr is x10 of a cosine: a perfect match scores 10


def test_a_caption_is_right_when_every_object_it_names_is_there_with_that_colour_and_shape():
    scene = next(shapesworld.generate(s) for s in range(100) if len({(o.colour, o.kind) for o in shapesworld.generate(s).objects if o.kind != "person"}) >= 3)
    shapes = [o for o in scene.objects if o.kind != "person"]
    a, b, c = shapes[:3]
    right = f"a {a.size} {a.colour} {a.kind} left of a {c.size} {c.colour} {c.kind}"
    absent = next(colour for colour in shapesworld.COLOURS if not any(o.colour == colour and o.kind == a.kind for o in scene.objects))
    wrong_colour = f"a {a.size} {absent} {a.kind} left of a {b.size} {b.colour} {b.kind}"
    assert names_only_what_is_there(right, scene.objects)
    assert not names_only_what_is_there(wrong_colour, scene.objects)
    assert not names_only_what_is_there(f"a {a.size} {a.colour} {a.kind}", scene.objects)  # one of two
    assert not names_only_what_is_there(f"a {a.colour} {a.kind} above a {a.colour} {a.kind}", [a])  # one, named twice
    assert names_only_what_is_there("an empty scene", []) and not names_only_what_is_there("an empty scene", [a])


def test_each_patch_is_labelled_with_the_colour_and_shape_that_mostly_covers_it():
    scene = shapesworld.generate(shapesworld.SPLITS["test"].start + 3)
    grid = 12
    labels = training.patch_labels(scene, grid)
    names = {training.PATCH_LABELS[i] for i in labels.unique().tolist()}
    present = {"person" if o.kind == "person" else f"{o.colour} {o.kind}" for o in scene.objects}
    assert labels.shape == (grid, grid) and names <= present | {"background"} and names >= {"background"}
    cell = scene.image.shape[0] / grid
    for obj in scene.objects:
        if obj.kind != "person" and obj.size == "large" and obj.area > 0.8 * np.pi * (0.12 * 128) ** 2:
            x, y = (int(v // cell) for v in obj.centre)
            assert training.PATCH_LABELS[labels[y, x]] == f"{obj.colour} {obj.kind}", obj
    empty = np.ones_like(scene.instance_map)  # a patch counts as background only where no object covers a quarter of it
    for obj in scene.objects:
        x0, y0, x1, y1 = obj.box
        empty[max(0, y0 - 11) : y1 + 11, max(0, x0 - 11) : x1 + 11] = 0
    for y in range(grid):
        for x in range(grid):
            if empty[int(y * cell) : int((y + 1) * cell) + 1, int(x * cell) : int((x + 1) * cell) + 1].all():
                assert labels[y, x] == 0


def test_the_patch_probe_trains_the_image_encoder_and_ships_nothing():
    network = training.BlipForConditionalGeneration(training.tiny_blip_config(width=32, vision_layers=1, text_layers=1))
    before = set(network.state_dict())
    probe = training.PatchProbe(network)
    pixels = torch.randn(2, 3, 96, 96)
    network(pixel_values=pixels, input_ids=torch.tensor([[2, 5, 3], [2, 6, 3]]))
    loss = probe.loss(torch.randint(len(training.PATCH_LABELS), (2, 12, 12), dtype=torch.uint8))
    loss.backward()
    assert probe.head.weight.grad is not None and network.vision_model.embeddings.patch_embedding.weight.grad.abs().sum() > 0
    assert set(network.state_dict()) == before


# ---------------------------------------------------------------- the shipped local models


def test_the_tiny_blip_captions_unseen_scenes_far_above_an_untrained_model(captioner):
    """80 unseen test scenes: the shipped captioner, loaded and preprocessed as the app does, keeps its level.

    An untrained model scores 0 here; a wrong resize or mean would drop it far below the card's 0.93.
    """
    metrics = training.evaluate(captioner, seed=training.TEST_SEED + 500, count=80)
    assert metrics["caption_all_attributes"] >= 0.80 and metrics["bleu4"] >= 0.55, metrics
    card = models.spec("blip-caption-shapes").source.card()
    assert {"bleu4", "cider", "caption_exact", "caption_reference_objects"} <= set(card["metrics"]) and card["metrics"]["scenes"] >= 500


def test_the_tiny_blip_captions_meet_the_bar(captioner):
    card = models.spec("blip-caption-shapes").source.card()
    assert card["metrics"]["caption_all_attributes"] >= 0.85, card["metrics"]


def test_the_tiny_blip_answers_questions_about_unseen_scenes_from_the_image(answerer):
    """40 unseen scenes: colour and shape questions far above the 1-in-6 and 1-in-5 a blind guess gets, answered as the app answers them."""
    metrics = training.evaluate(answerer, seed=training.TEST_SEED + 500, count=40)
    by_type = metrics["vqa_accuracy_by_type"]
    assert metrics["vqa_accuracy"] >= 0.75 and by_type["colour"] >= 0.8 and by_type["shape"] >= 0.8, metrics
    card = models.spec("blip-vqa-shapes").source.card()
    assert card["metrics"]["scenes"] >= 500 and set(card["metrics"]["vqa_accuracy_by_type"]) == set(shapesworld.QUESTION_TYPES)


def test_the_tiny_blip_vqa_meets_the_bar(answerer):
    card = models.spec("blip-vqa-shapes").source.card()
    assert card["metrics"]["vqa_accuracy"] >= 0.85, card["metrics"]


def test_the_cnn_lstm_reports_the_same_metrics_and_decodes_through_generate():
    lstm = models.get("lstm-caption-shapes")
    card = models.spec("lstm-caption-shapes").source.card()
    assert {"caption_all_attributes", "caption_reference_objects", "caption_exact", "bleu4", "cider"} <= set(card["metrics"])
    for decoding in (Decoding(), Decoding("beam search", beams=4, count=3), Decoding("nucleus sampling", count=2, seed=3)):
        result = lstm.generate([SCENE], decoding)
        assert len(result.texts) == decoding.sequences and all(result.texts)
    explanation = lstm.explain(SCENE, lstm.generate([SCENE], Decoding()).ids[0])
    assert explanation.heatmaps is None and explanation.parted_ways() == []


def test_this_tabs_shipped_weights_fit_in_8_mb():
    sizes = [models.spec(n).source.path.stat().st_size for n in ("blip-caption-shapes", "lstm-caption-shapes", "blip-vqa-shapes")]
    assert sum(sizes) <= 8 * 2**20, sizes


# ---------------------------------------------------------------- decoding and looking inside


def test_greedy_streams_token_by_token_and_never_parts_from_the_top_token(captioner):
    items = list(captioner.stream(SCENE, Decoding(max_tokens=20)))
    partial, result = items[:-1], items[-1]
    assert isinstance(result, Generated) and len(partial) >= 5
    words = [len(p[0].split()) for p in partial]
    assert words == sorted(words) and partial[-1][0] == result.texts[0]  # grows a token at a time, ends as the result
    explanation = captioner.explain(SCENE, result.ids[0])
    assert [s.token for s in explanation.steps][:-1] == result.texts[0].split() and explanation.steps[-1].token == "[SEP]"
    assert explanation.parted_ways() == []  # greedy takes the most likely token at every step, by definition
    for step in explanation.steps:
        probabilities = [p for _, p in step.top]
        assert len(step.top) == 5 and probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1.0001
    assert explanation.heatmaps.shape == (len(explanation.steps), 12, 12)
    assert explanation.heatmaps.min() >= 0 and np.allclose(explanation.heatmaps.max(axis=(1, 2)), 1.0, atol=1e-5)


def test_beam_search_and_sampling_give_the_asked_number_of_captions_and_the_seed_repeats(captioner):
    beams = captioner.generate([SCENE], Decoding("beam search", beams=5, count=3))
    assert len(beams.texts) == 3
    sampled = [captioner.generate([SCENE], Decoding("nucleus sampling", top_p=0.95, temperature=1.5, count=4, seed=s)).texts for s in (1, 1, 2)]
    assert sampled[0] == sampled[1] and len(sampled[0]) == 4
    assert captioner.generate([SCENE], Decoding(count=3)).notices  # greedy has one answer, and says so


@pytest.mark.parametrize("name", LOCAL_CAPTIONERS)
def test_a_caption_prefix_is_kept_and_unknown_words_are_named(name):
    model = models.get(name)
    result = model.generate([SCENE], Decoding(), prefix="a small")
    assert result.texts[0].startswith("a small")
    result = model.generate([SCENE], Decoding(), prefix="un chat")
    assert any("chat" in n for n in result.notices)
    path = next(p for p in example_images() if "astronaut" in p)
    captions, notes = list(tab._caption_ui(path, name, "a picture of an astronaut", "greedy", 3, 0.9, 1.0, 19, 1, 0))[-1][:2]
    assert "cannot read: picture, astronaut" in notes  # the caption reads "a of an ...": the dropped words are named
    assert "lowered" not in notes  # the slider's longest, less the room the start takes: nothing to say unless a caption is cut


# ---------------------------------------------------------------- within the model's text positions


def noise_file(tmp_path, side: int) -> str:
    path = tmp_path / f"noise-{side}.png"
    Image.fromarray(np.random.default_rng(side).integers(0, 256, (side, side, 3), dtype=np.uint8)).save(path)
    return str(path)


@pytest.mark.parametrize("name", LOCAL_CAPTIONERS)
def test_captions_of_noise_and_long_prefixes_stay_within_the_models_positions_by_every_method(name, tmp_path):
    """Random noise never ends its caption early: asked for the API's longest, generation must stop at the last position.

    (The tiny BLIP has 20 position embeddings; a 128 px noise image ran ``generate`` into the 21st.)
    """
    model = models.get(name)
    assert model.max_new_tokens() == longest_caption(models.spec(name)) == model.text_positions - 1 < MAX_NEW_TOKENS
    for side in (32, 128, 700):
        path = noise_file(tmp_path, side)
        for method in tab.DECODING_METHODS:
            for prefix in ("", LONG_PREFIX):
                count = 1 if method == "greedy" else 2
                *_, final = tab._caption_ui(path, name, prefix, method, 4, 0.9, 1.5, MAX_NEW_TOKENS, count, 0)
                captions, notes, _, _, _, truth, _ = final
                assert len(captions.splitlines()) == count and truth == "", (side, method, prefix)
                assert f"lowered from {MAX_NEW_TOKENS} to" in notes
    result = model.generate([Image.open(path)], Decoding("beam search", beams=4, count=4, max_tokens=MAX_NEW_TOKENS), prefix=LONG_PREFIX)
    assert max(map(len, result.ids)) <= model.text_positions and any("reads only its first 18" in n for n in result.notices)
    assert len(model.explain(Image.open(path), result.ids[0]).steps) < model.text_positions
    for side in (32, 128):  # a caption that fills every position without ending says it was cut
        result = model.generate([Image.open(noise_file(tmp_path, side))], Decoding(max_tokens=19))
        (ids,) = result.ids
        cut = len(ids) == model.text_positions and ids[-1] != model.tokenizer.sep_token_id
        assert cut == any("cut there" in n for n in result.notices), (side, ids, result.notices)


def test_answers_about_noise_stay_within_the_models_positions(answerer, tmp_path):
    for side in (32, 128, 700):
        path = noise_file(tmp_path, side)
        answer, top, heat, notes, truth = list(tab._answer_ui(path, "blip-vqa-shapes", "what colour is the circle?"))[-1]
        assert answer and top and heat is not None and truth == ""
        image = Image.open(path)
        for method in tab.DECODING_METHODS:
            result = answerer.generate([image], ["what colour is the circle?"], Decoding(method, beams=4, count=2, max_tokens=MAX_NEW_TOKENS))
            assert len(result.texts) == (1 if method == "greedy" else 2) and max(map(len, result.ids)) <= answerer.text_positions
            assert any(f"lowered from {MAX_NEW_TOKENS} to 19" in n for n in result.notices)


@pytest.mark.parametrize(
    "change, hint",
    [
        ({"method": "top-k"}, "Unknown decoding method"),
        ({"max_tokens": 0}, "Maximum length"),
        ({"count": 99}, "Number of captions"),
        ({"method": "beam search", "beams": 2, "count": 3}, "at most that many captions"),
        ({"method": "nucleus sampling", "top_p": 0.0}, "top-p"),
    ],
)
def test_bad_decoding_settings_are_refused_before_any_work(change, hint):
    with pytest.raises(ValueError, match=hint):
        Decoding(**change).check()


def test_gradcam_weights_attention_by_positive_gradient_and_drops_the_cls_slot():
    attention = torch.zeros(2, 1, 5)  # 2 heads, 1 query, [CLS] + 2x2 patches
    attention[:, 0] = torch.tensor([0.6, 0.1, 0.1, 0.1, 0.1])
    gradients = torch.tensor([[[9.0, 1.0, -1.0, 0.0, 2.0]], [[9.0, 1.0, 3.0, 0.0, 2.0]]])
    (heat,) = gradcam(attention, gradients, (2, 2))
    assert np.allclose(heat, np.array([[1.0, 1.5], [0.0, 2.0]]) / 2.0)


def test_the_answerer_gives_top_answers_with_their_probabilities_and_a_map(answerer):
    scene = shapesworld.generate(shapesworld.SPLITS["test"].start + 3)
    image = Image.fromarray(scene.image)
    qa = scene.qa[0]
    top = answerer.top_answers(image, qa.question)
    probabilities = [p for _, p in top]
    assert 1 <= len(top) <= 5 and probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1.0001
    greedy = answerer.generate([image], [qa.question], Decoding(max_tokens=5)).texts[0]
    assert greedy in [a for a, _ in top]
    heat = answerer.explain(image, qa.question, greedy)
    assert heat.shape == (12, 12) and heat.max() == pytest.approx(1.0) and heat.min() >= 0


def test_questions_are_checked_and_answered_honestly(answerer):
    with pytest.raises(ValueError, match="Ask a question"):
        tab.check_question("   ", answerer)
    with pytest.raises(ValueError, match="at most 300"):
        tab.check_question("is there a red star? " * 40, answerer)
    with pytest.raises(ValueError, match="none of this question's words"):
        tab.check_question("这是什么颜色？", answerer)
    question, notices = tab.check_question("what colour is the dragon?", answerer)
    assert question == "what colour is the dragon?" and "dragon" in notices[0]
    question, notices = tab.check_question(" ".join(["is there a red star?"] * 6), answerer)
    assert any("reads only the first 20" in n for n in notices)
    answer = answerer.generate([SCENE], [question], Decoding(max_tokens=5)).texts[0]
    assert answer  # a truncated question is still answered


# ---------------------------------------------------------------- the tab's pure functions


def test_the_step_table_marks_where_a_caption_left_the_top_token():
    steps = [Step("a", 0.9, [("a", 0.9), ("an", 0.05)]), Step("blue", 0.3, [("red", 0.6), ("blue", 0.3)]), Step("[SEP]", 0.99, [("[SEP]", 0.99)])]
    explanation = Explanation(steps, None)
    table = tab.steps_html(explanation)
    assert explanation.parted_ways() == [1] and table.count("⟂") == 1 and "greedy would take “red”" in table
    assert table.count("class='dvl-taken'") == 3
    assert tab.word_choices(explanation)[1] == ("2. blue", 1) and tab.first_content_word(explanation) == 1


def test_the_handlers_stream_the_caption_then_explain_it(captioner):
    path = shapesworld_example_path()
    updates = list(tab._caption_ui(path, "blip-caption-shapes", "", "greedy", 3, 0.9, 1.0, 19, 1, 0))
    final = updates[-1]
    assert len(updates) >= 3 and final[0] == captioner.generate([Image.open(path).convert("RGB")], Decoding()).texts[0]
    assert "<table" in final[2] and final[6].shape[1:] == (12, 12) and "lowered" not in final[1]
    assert final[4].height == 384 and final[4].width > 384  # the map, and its colour scale beside it
    answer, top, heat, notes, _ = list(tab._answer_ui(path, "blip-vqa-shapes", "how many circles are there?"))[-1]
    assert answer in top and heat.height == 384 and heat.width > 384 and "answer" in notes


def test_the_length_slider_follows_the_picked_model():
    card, _, slider = tab._caption_model_changed("lstm-caption-shapes", 60)
    assert slider["maximum"] == slider["value"] == 19 and "CNN-LSTM" in card
    assert tab._length_slider("blip-caption-shapes", 5) | {} == {"__type__": "update", "maximum": 19, "value": 5}
    assert tab._length_slider("blip-caption-base", 20)["maximum"] == MAX_NEW_TOKENS  # 512 positions; offline, its config unread


def test_every_output_is_named_and_every_count_is_an_integer_in_the_api():
    with gr.Blocks() as blocks:
        tab.build()
    endpoints = blocks.get_api_info()["named_endpoints"]
    caption, answer = endpoints["/caption"], endpoints["/answer"]
    types = {p["parameter_name"]: p["type"]["type"] for p in caption["parameters"]}
    assert all(types[name] == "integer" for name in ("beams", "max_tokens", "count", "seed")), types
    labels = [r["label"] for endpoint in (caption, answer) for r in endpoint["returns"]]
    assert not any(label.startswith("value_") for label in labels) and labels.count(tab.GROUND_TRUTH) == 2, labels
    drawn = [f for f in blocks.fns.values() if f.fn is scenes.new_scene_file]
    assert len(drawn) == 1 and any(getattr(b, "value", None) == "New unseen scene" for b in blocks.blocks.values())


def scene_with_three_kinds() -> tuple[str, shapesworld.Scene]:
    test = shapesworld.SPLITS["test"].start
    seed = next(s for s in range(test, test + 100) if len({o.kind for o in scenes.scene(s).objects}) >= 3)
    return scenes.scene_file(seed), scenes.scene(seed)


def test_a_scene_shows_its_true_captions_and_whether_each_caption_is_right_by_the_caption_metric(captioner, tmp_path):
    path, scene = scene_with_three_kinds()
    assert scenes.scene_of(path) is scene
    obj = next(o for o in scene.objects if o.kind != "person")
    absent = next(c for c in shapesworld.COLOURS if not any(o.colour == c and o.kind == obj.kind for o in scene.objects))
    truth = tab.caption_truth(scene, [scene.caption, f"a {obj.size} {absent} {obj.kind}"])
    assert truth.startswith(f"**{tab.GROUND_TRUTH}**") and all(c in truth for c in captions_for(scene.objects))
    assert "Caption 1: ✓" in truth and "Caption 2: ✗" in truth
    captions, *_, shown, _ = list(tab._caption_ui(path, "blip-caption-shapes", "", "beam search", 3, 0.9, 1.0, 19, 3, 0))[-1]
    assert shown == tab.caption_truth(scene, captions.splitlines()) and shown.count("Caption ") == 3
    renamed = tmp_path / path.rsplit("/", 1)[-1]  # named like the scene, but another picture: no made-up truth
    Image.fromarray(skdata.astronaut()).save(renamed)
    assert list(tab._caption_ui(str(renamed), "blip-caption-shapes", "", "greedy", 3, 0.9, 1.0, 19, 1, 0))[-1][5] == ""


def test_a_scene_lists_its_questions_and_marks_whether_the_answer_to_the_asked_one_is_right(answerer):
    path, scene = scene_with_three_kinds()
    qa = scene.qa[0]
    listed = tab.answer_truth(scene)
    assert all(q.question in listed and q.answer in listed for q in scene.qa) and "✓" not in listed and "✗" not in listed
    assert "✓" in tab.answer_truth(scene, qa.question.upper() + "  ", qa.answer) and "✗" in tab.answer_truth(scene, qa.question, "purple")
    assert "not one of this scene's" in tab.answer_truth(scene, "is there a purple dragon?", "no")
    answer, *_, truth = list(tab._answer_ui(path, "blip-vqa-shapes", qa.question))[-1]
    assert f"**{answer}** {'✓' if answer == qa.answer else '✗'}" in truth
    assert tab.answer_truth(None, qa.question, answer) == ""


def shapesworld_example_path() -> str:
    return next(p for p in example_images() if "shapesworld" in p)


# ---------------------------------------------------------------- BLIP base through the app's loader, planted


@pytest.fixture(scope="module")
def planted_blip_caption(tmp_path_factory):
    with planted_hugging_face(tmp_path_factory, "blip-caption-base") as snapshot:
        yield snapshot


@pytest.fixture(scope="module")
def planted_blip_vqa(tmp_path_factory):
    with planted_hugging_face(tmp_path_factory, "blip-vqa-base") as snapshot:
        yield snapshot


def test_blip_without_weights_says_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    spec = models.spec("blip-caption-base")
    assert spec.availability() is Availability.UNAVAILABLE
    with pytest.raises(WeightsUnavailable, match="prefetch"):
        spec.load(spec)


def test_blip_captions_equal_what_generate_gives_through_the_processor(planted_blip_caption):
    """Reference equivalence: the documented ``processor -> model.generate -> processor.decode``, same planted weights."""
    from transformers import BlipForConditionalGeneration, BlipProcessor

    assert models.spec("blip-caption-base").availability() is Availability.CACHED
    model = models.get("blip-caption-base")
    processor = BlipProcessor.from_pretrained(planted_blip_caption)
    reference = BlipForConditionalGeneration.from_pretrained(planted_blip_caption).eval()
    for prefix in ("", "a picture of"):
        inputs = processor(images=PHOTO, text=prefix or None, return_tensors="pt")
        expected = processor.decode(reference.generate(**inputs, max_new_tokens=12)[0], skip_special_tokens=True)
        ours = model.generate([PHOTO], Decoding(max_tokens=12), prefix=prefix)
        assert ours.texts == [expected.strip()]
    explanation = model.explain(PHOTO, ours.ids[0])
    assert explanation.heatmaps.shape[1:] == (4, 4) and len(explanation.steps) == len(ours.ids[0]) - 1


def test_blip_vqa_answers_equal_what_generate_gives_through_the_processor(planted_blip_vqa):
    from transformers import BlipForQuestionAnswering, BlipProcessor

    model = models.get("blip-vqa-base")
    processor = BlipProcessor.from_pretrained(planted_blip_vqa)
    reference = BlipForQuestionAnswering.from_pretrained(planted_blip_vqa).eval()
    inputs = processor(images=PHOTO, text="what is she holding?", return_tensors="pt")
    expected = processor.decode(reference.generate(**inputs, max_new_tokens=5)[0], skip_special_tokens=True)
    assert model.generate([PHOTO], ["what is she holding?"], Decoding(max_tokens=5)).texts == [expected.strip()]
    question, notices = tab.check_question("这是什么 colour?", model)
    assert any("English" in n for n in notices)
    assert len(model.top_answers(PHOTO, question)) >= 1 and model.explain(PHOTO, question, "yes").shape == (4, 4)
