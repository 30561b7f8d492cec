"""CLIP zero-shot, model side: open_clip's loader from a planted Hugging Face cache, open_clip's
documented recipe, the text-embedding cache, the local mini-CLIP's trainer and its quality bar."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import open_clip
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file
from skimage import data

import models
import shapesworld
from models import Availability, WeightsUnavailable
from models.clip import ZeroShotClassifier, _load_local, zero_shot
from models.nets.clip import WordTokenizer, vocabulary_of
from models.sources import LocalWeights, WEIGHTS_DIR
from models.training import clip as clip_training

PHOTO = Image.fromarray(data.astronaut())
LABELS = ["astronaut", "rocket", "cat", "bowl of soup"]
TEMPLATES = ["a photo of a {}.", "a drawing of a {}.", "a close-up photo of the {}."]



@pytest.fixture(scope="module")
def planted_vit_b32(tmp_path_factory):
    """Random-init ViT-B-32 weights planted under open_clip's real repo id, loaded by the app's loader.

    Yields the ready classifier, the planted snapshot folder, and the checkpoint path open_clip's
    own tag resolution returned while loading.
    """
    from models.planting import plant_random_weights

    home = tmp_path_factory.mktemp("hf_home")
    spec = models.spec("clip-vit-b-32")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HOME", str(home))
        patch.delenv("HF_HUB_CACHE", raising=False)
        patch.setenv("DVL_OFFLINE", "1")
        snapshot = plant_random_weights(spec, hf_home=home)
        resolved = []
        original = open_clip.factory.download_pretrained

        def recording(*args, **kwargs):
            resolved.append(original(*args, **kwargs))
            return resolved[-1]

        patch.setattr(open_clip.factory, "download_pretrained", recording)
        assert spec.availability() is Availability.CACHED
        classifier = spec.load(spec).eval()
        yield classifier, snapshot, resolved


def test_specs_name_open_clips_tags_and_repos():
    specs = {s.name: s for s in models.for_task("clip")}
    assert list(specs) == ["clip-vit-b-16", "clip-vit-b-32", "clip-shapes"]
    assert specs["clip-vit-b-32"].fast_on_cpu and specs["clip-shapes"].tier == "local"
    b32 = specs["clip-vit-b-32"].source
    assert (b32.model_name, b32.tag) == ("ViT-B-32", "laion2b_s34b_b79k")
    assert b32.repo_id == "laion/CLIP-ViT-B-32-laion2B-s34B-b79K"
    assert b32.weight_files == ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
    assert specs["clip-vit-b-16"].source.repo_id == "laion/CLIP-ViT-B-16-laion2B-s34B-b88K"


def test_pretrained_clip_offline_without_weights_says_how_to_get_them(hf_home):
    spec = models.spec("clip-vit-b-32")
    assert spec.availability() is Availability.UNAVAILABLE
    with pytest.raises(WeightsUnavailable) as error:
        spec.load(spec)
    message = str(error.value)
    assert "laion/CLIP-ViT-B-32-laion2B-s34B-b79K" in message and "prefetch" in message
    assert str(hf_home) not in message  # the message reaches web pages: it names commands, no server folder


def test_planted_weights_load_through_open_clips_own_tag_resolution(planted_vit_b32):
    classifier, snapshot, resolved = planted_vit_b32
    planted = snapshot / "open_clip_model.safetensors"
    assert snapshot.parent.parent.name == "models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K"
    assert [str(p) for p in resolved] == [str(planted)]  # open_clip resolved the tag to the planted file
    state = load_file(str(planted))
    loaded = classifier.model.state_dict()
    assert state.keys() == loaded.keys() and all(torch.equal(state[k], loaded[k]) for k in state)
    assert classifier.preprocess(PHOTO).shape == (3, 224, 224)  # open_clip's transform for the tag
    assert isinstance(classifier.tokenizer, open_clip.SimpleTokenizer)  # its BPE vocabulary ships with open_clip


def test_explicit_weights_dir_comes_first(planted_vit_b32, hf_home, tmp_path_factory, monkeypatch):
    """DVL_WEIGHTS_DIR/<repo id>/open_clip_model.safetensors, with an empty HF cache: open_clip loads the file."""
    classifier, snapshot, _ = planted_vit_b32
    folder = tmp_path_factory.mktemp("weights_dir")
    repo = folder / "laion" / "CLIP-ViT-B-32-laion2B-s34B-b79K"
    repo.mkdir(parents=True)
    (repo / "open_clip_model.safetensors").symlink_to(snapshot / "open_clip_model.safetensors")
    monkeypatch.setenv("DVL_WEIGHTS_DIR", str(folder))
    spec = models.spec("clip-vit-b-32")
    assert spec.source.cached_file() is None and spec.availability() is Availability.CACHED
    loaded = spec.load(spec)
    assert torch.equal(loaded.model.visual.proj, classifier.model.visual.proj)
    # the tag's preprocessing all the same
    assert open_clip.get_model_preprocess_cfg(loaded.model) == open_clip.get_model_preprocess_cfg(classifier.model)


def test_zero_shot_equals_open_clips_documented_recipe(planted_vit_b32):
    """README recipe: encode_image(preprocess), encode_text(tokenizer), normalise, softmax(100 * image @ text.T)."""
    classifier, _, _ = planted_vit_b32
    model, preprocess, tokenizer = classifier.model, classifier.preprocess, classifier.tokenizer
    with torch.no_grad():
        image_features = F.normalize(model.encode_image(preprocess(PHOTO).unsqueeze(0)), dim=-1)
        text_features = F.normalize(model.encode_text(tokenizer([f"a photo of a {label}." for label in LABELS])), dim=-1)
        expected = (100.0 * image_features @ text_features.T).softmax(dim=-1)
    found = zero_shot(classifier, [PHOTO], LABELS, ["a photo of a {}."], temperature=0.01)
    assert expected.max() - expected.min() > 0.01, "uniform probabilities: the comparison would prove nothing"
    np.testing.assert_allclose(found.probabilities, expected.numpy(), atol=1e-5)
    np.testing.assert_allclose(found.similarities, (image_features @ text_features.T).numpy(), atol=1e-5)

    # Template ensembling: open_clip's own build_zero_shot_classifier, and the model's learned scale.
    weights = open_clip.build_zero_shot_classifier(model, tokenizer, LABELS, TEMPLATES, num_classes_per_batch=None)
    ensembled = zero_shot(classifier, [PHOTO], LABELS, TEMPLATES)
    scale = model.logit_scale.exp().item()
    np.testing.assert_allclose(ensembled.similarities, (image_features @ weights).numpy(), atol=1e-5)
    np.testing.assert_allclose(ensembled.probabilities, (scale * image_features @ weights).softmax(-1).numpy(), atol=1e-5)
    assert ensembled.scale == pytest.approx(scale)


def test_a_label_sets_text_embeddings_are_computed_once(planted_vit_b32, monkeypatch):
    classifier, _, _ = planted_vit_b32
    calls = []
    original = classifier.model.encode_text
    monkeypatch.setattr(classifier.model, "encode_text", lambda *a, **k: calls.append(1) or original(*a, **k))
    labels = ["tabby cat", "golden retriever"]
    first = zero_shot(classifier, [PHOTO], labels)
    second = zero_shot(classifier, [PHOTO.rotate(90)], labels)
    assert len(calls) == 1 and not np.allclose(first.similarities, second.similarities)
    zero_shot(classifier, [PHOTO], [*labels, "parrot"])
    assert len(calls) == 2


def test_zero_shot_refuses_bad_input_clearly(planted_vit_b32):
    classifier, _, _ = planted_vit_b32
    for images, labels, templates, match in [
        ([PHOTO], [], ["{}"], "at least one label"),
        ([PHOTO], ["cat", " "], ["{}"], "no empty"),
        ([PHOTO], ["cat"], ["a photo"], "{}"),
        ([], ["cat"], ["{}"], "at least one image"),
    ]:
        with pytest.raises(ValueError, match=match):
            zero_shot(classifier, images, labels, templates)


def test_texts_are_encoded_in_bounded_batches_and_past_the_prompt_cap_refused_before_any_encoding(monkeypatch):
    from models.clip import MAX_PROMPTS, TEXT_BATCH, TooManyPrompts

    classifier = models.get("clip-shapes")
    texts = [f"a photo of a {colour} {shape}." for colour in shapesworld.COLOURS for shape in shapesworld.SHAPES] * 20
    assert len(texts) > TEXT_BATCH
    sizes = []
    original = classifier.model.encode_text
    monkeypatch.setattr(classifier.model, "encode_text", lambda tokens, **k: sizes.append(len(tokens)) or original(tokens, **k))
    batched = classifier.encode_texts(texts)
    assert max(sizes) == TEXT_BATCH and sum(sizes) == len(texts)
    np.testing.assert_allclose(batched.numpy(), classifier.encode_texts(texts, batch_size=len(texts)).numpy(), atol=1e-5)
    sizes.clear()
    labels = [f"label {i}" for i in range(MAX_PROMPTS // 2 + 1)]
    with pytest.raises(TooManyPrompts, match=f"{MAX_PROMPTS + 2:,} prompts; at most {MAX_PROMPTS:,}"):
        zero_shot(classifier, [PHOTO], labels, ["a {}.", "the {}."])
    assert sizes == []


def test_word_tokenizer_lays_out_tokens_as_open_clip_does():
    tokenizer = WordTokenizer(vocabulary_of(clip_training.caption_texts()), context_length=8)
    assert tokenizer.vocab_size < 40  # every word of the training captions, and nothing else
    tokens = tokenizer(["a large red star.", "a zebra", "a photo of a small orange ring on a grey background"])
    assert tokens.shape == (3, 8) and tokens.dtype == torch.long
    assert (tokens[:, 0] == tokenizer.sot_id).all() and tokenizer.eot_id == tokenizer.vocab_size - 1
    assert tokens.argmax(dim=-1).tolist() == [6, 3, 7]  # end-of-text: where open_clip's text pooling looks
    assert tokens[1, 2] == 1 and tokens[1, 4:].eq(0).all()  # "zebra" is <unk>; padding is 0
    assert tokenizer.unknown_words("A Zebra and a red star") == ["zebra", "and"]
    assert WordTokenizer.from_dict(tokenizer.to_dict()).vocabulary == tokenizer.vocabulary


@pytest.fixture()
def one_thread():
    """Train on one thread, as `python -m models train --threads 1` does: small convolutions on two
    OpenMP threads crawl when another process holds a core."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_a_short_training_run_writes_weights_and_a_complete_card(tmp_path, one_thread):
    card = clip_training.train(steps=20, eval_count=20, out=tmp_path)
    written = json.loads((tmp_path / "clip-shapes.json").read_text())
    assert written["metrics"] == card["metrics"]
    for key in ("config", "tokenizer", "preprocessing", "labels", "held_out_pairs", "train", "seed", "train_seconds"):
        assert key in written, key
    for key in ("parameters", "command", "file_bytes"):
        assert key in written, key
    metrics = written["metrics"]
    assert metrics["eval_count"] == 20 and 0 <= metrics["zero_shot_accuracy"] <= 1 and 0 <= metrics["held_out_accuracy"] <= 1
    assert len(written["labels"]) == 30 and len(written["held_out_pairs"]) == 6
    held_out = {tuple(p.split()) for p in written["held_out_pairs"]}
    assert {c for c, _ in held_out} == set(shapesworld.COLOURS) and {s for _, s in held_out} == set(shapesworld.SHAPES)
    weights = tmp_path / "clip-shapes.safetensors"
    assert weights.stat().st_size < 6_000_000 and written["file_dtype"] == "float16"

    # The app's loader reads it back through open_clip (the card's config, open_clip's transform) and scores it the same.
    spec = models.spec("clip-shapes")
    spec = dataclasses.replace(spec, source=LocalWeights("clip-shapes", tmp_path))
    classifier = _load_local(spec)
    assert isinstance(classifier, ZeroShotClassifier) and classifier.image_size == 64
    assert classifier.unknown_words(["a photo of a red zebra."]) == ["zebra"]
    assert clip_training.evaluate(classifier, count=20) == metrics


def test_missing_local_weights_say_how_to_train(tmp_path):
    spec = models.spec("clip-shapes")
    spec = dataclasses.replace(spec, source=LocalWeights("clip-shapes", tmp_path))
    with pytest.raises(WeightsUnavailable, match="python -m models train clip-shapes"):
        _load_local(spec)


def test_shipped_mini_clip_meets_the_bar_on_unseen_scenes():
    """Zero-shot over all 30 colour-shape labels: >= 0.90 on unseen scenes, >= 0.80 on pairs never trained on."""
    metrics = clip_training.evaluate(models.get("clip-shapes"), seed=clip_training.TEST_SEED, count=500)
    assert metrics["zero_shot_accuracy"] >= 0.90, metrics
    assert metrics["held_out_accuracy"] >= 0.80, metrics
    assert (WEIGHTS_DIR / "clip-shapes.safetensors").stat().st_size <= 6_000_000


def test_every_small_clip_batch_pairs_each_image_with_a_different_caption():
    """ClipLoss counts every other caption in a batch as wrong: no batch may say the same thing twice."""
    images, sizes, members, _ = clip_training.render_pool(0, per_pair=2)
    rng = np.random.default_rng(0)
    x, captions, batches = clip_training.training_batch(rng, images, sizes, members, colour_batches=True)
    assert len(x) == len(captions) == batches[-1].stop
    assert len(batches) == 1 + clip_training.SHAPE_BATCHES + clip_training.COLOUR_BATCHES
    meaning = lambda caption: " ".join(w for w in caption.split() if w.strip(".") in {*shapesworld.COLOURS, *shapesworld.SHAPES})  # noqa: E731
    for rows in batches:
        said = [meaning(c) for c in captions[rows]]
        assert len(set(said)) == len(said), said
    held_out = {f"{c} {s}" for c, s in clip_training.HELD_OUT}
    assert not held_out & {meaning(c) for c in captions}
