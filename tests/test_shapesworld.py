"""ShapesWorld: deterministic, and every annotation agrees with the pixels."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

import shapesworld
from shapesworld import CLASSES, KEYPOINTS, PERSON, SPLITS, generate, single_object
from shapesworld.language import NUMBER_WORDS, holds

SEEDS = range(SPLITS["test"].start, SPLITS["test"].start + 40)


def scene_digest(seed: int) -> str:
    s = generate(seed)
    return hashlib.sha256(s.image.tobytes() + s.semantic.tobytes() + s.instance_map.tobytes() + s.caption.encode()).hexdigest()


def test_same_seed_same_scene_and_different_seeds_differ():
    assert scene_digest(123) == scene_digest(123)
    assert scene_digest(123) != scene_digest(124)


GOLDEN = {  # recorded once; a change here means old seeds no longer give old scenes
    0: "968698d3409e1357257bf248af68a9b7bf5d29711347e602a03959e54dd3c072",
    2_000_000: "234a1e7ab6a642ace86a5750f6a9f09ad1173076ddbe9ee801aa206742463b55",
}


@pytest.mark.parametrize("seed", GOLDEN)
def test_scenes_are_the_same_on_every_machine(seed):
    assert scene_digest(seed) == GOLDEN[seed]


def test_splits_are_disjoint():
    ranges = sorted(SPLITS.values(), key=lambda r: r.start)
    for a, b in zip(ranges, ranges[1:]):
        assert a.stop <= b.start


@pytest.mark.parametrize("size", [64, 128, 200])
def test_image_and_masks_have_requested_size(size):
    s = generate(5, size)
    assert s.image.shape == (size, size, 3) and s.image.dtype == np.uint8
    assert s.semantic.shape == s.instance_map.shape == (size, size)


@pytest.mark.parametrize("seed", SEEDS)
def test_annotations_agree_with_each_other(seed):
    s = generate(seed)
    assert s.masks.shape[0] == len(s.objects)
    assert set(np.unique(s.instance_map)) <= set(range(len(s.objects) + 1))
    # Semantic mask = the class of whatever instance is visible at each pixel.
    expected = np.zeros_like(s.semantic)
    for obj, mask in zip(s.objects, s.masks):
        assert mask.sum() == obj.area >= 12
        x0, y0, x1, y1 = obj.box
        ys, xs = np.nonzero(mask)
        assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x0, y0, x1, y1)
        expected[mask] = obj.label
    np.testing.assert_array_equal(expected, s.semantic)
    for person in s.people:
        assert person.keypoints.shape == (len(KEYPOINTS), 3)
        assert set(np.unique(person.keypoints[:, 2])) <= {0, 1, 2}


def test_backgrounds_are_textured_not_flat():
    s = generate(7)
    background = s.image[s.semantic == 0].astype(float)
    assert background.std(axis=0).mean() > 10  # varied: colour alone cannot find the objects


def test_scenes_cover_every_class_and_overlap_sometimes():
    seen = np.zeros(len(CLASSES), bool)
    occluded_joint = False
    for seed in range(200):
        s = generate(seed)
        seen[np.unique(s.semantic)] = True
        occluded_joint |= any((p.keypoints[:, 2] == 1).any() for p in s.people)
    assert seen.all()
    assert occluded_joint


def test_caption_names_real_objects_and_the_true_relation():
    for seed in SEEDS:
        s = generate(seed)
        phrases = {o.phrase for o in s.objects}
        if len(s.objects) >= 2:
            assert any(s.caption.startswith(f"a {p} ") for p in phrases)
            assert any(s.caption.endswith(f" a {p}") for p in phrases)


def test_answers_match_the_annotations():
    kinds_seen = set()
    for seed in range(300):
        s = generate(seed)
        for qa in s.qa:
            kinds_seen.add(qa.kind)
            if qa.kind == "count":
                kind = qa.question.split()[2]
                kind = PERSON if kind == "people" else kind[:-1]
                assert NUMBER_WORDS.index(qa.answer) == sum(o.kind == kind for o in s.objects)
            elif qa.kind == "colour":
                kind = qa.question.rsplit(" ", 1)[1].rstrip("?")
                assert [o.colour for o in s.objects if o.kind == kind] == [qa.answer]
            elif qa.kind == "existence":
                _, _, _, colour, kind = qa.question.rstrip("?").split()
                present = any(o.kind == kind and o.colour == colour for o in s.objects)
                assert qa.answer == ("yes" if present else "no")
            elif qa.kind == "relation":
                words = qa.question.rstrip("?").split()
                a = next(o for o in s.objects if o.kind == words[2])
                b = next(o for o in s.objects if o.kind == words[-1])
                relation = " ".join(words[3:-2])
                assert qa.answer == ("yes" if holds(a, relation, b) else "no")
    assert kinds_seen == set(shapesworld.QUESTION_TYPES)


def test_single_object_prompt_describes_the_image():
    image, prompt = single_object(3)
    assert image.shape == (64, 64, 3)
    article, size, colour, kind = prompt.split()
    assert article == "a" and size in shapesworld.SIZES and colour in shapesworld.COLOURS and kind in shapesworld.SHAPES
