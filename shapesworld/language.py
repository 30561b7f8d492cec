"""Captions and question-answer pairs for ShapesWorld scenes, from a small grammar.

Answers are computed from the same annotations the masks come from, so a captioning or VQA
model can be scored exactly. Questions only ask about things that are unambiguous in the scene
(the colour of "the star" is only asked when there is exactly one star).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .vocab import COLOURS, PERSON, SHAPES

if TYPE_CHECKING:
    from .scene import SceneObject

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
QUESTION_TYPES = ("colour", "shape", "count", "existence", "relation")


@dataclass(frozen=True)
class QA:
    question: str
    answer: str
    kind: str  # one of QUESTION_TYPES


def relation(a: SceneObject, b: SceneObject) -> str:
    """Where ``a`` is relative to ``b``: "left of", "right of", "above" or "below" (larger axis wins)."""
    dx = a.centre[0] - b.centre[0]
    dy = a.centre[1] - b.centre[1]
    if abs(dx) >= abs(dy):
        return "left of" if dx < 0 else "right of"
    return "above" if dy < 0 else "below"


def holds(a: SceneObject, rel: str, b: SceneObject) -> bool:
    """Whether "a <rel> b" is true along that relation's own axis (centres compared)."""
    dx = a.centre[0] - b.centre[0]
    dy = a.centre[1] - b.centre[1]
    return {"left of": dx < 0, "right of": dx > 0, "above": dy < 0, "below": dy > 0}[rel]


def _with_article(phrase: str) -> str:
    return f"a {phrase}"


def captions_for(objects: list[SceneObject]) -> list[str]:
    """Every caption the grammar allows for these objects: one, or the two orders of the two largest.

    "a red circle left of a blue star" and "a blue star right of a red circle" say the same thing,
    so a captioner is scored against both.
    """
    if not objects:
        return ["an empty scene"]
    if len(objects) == 1:
        return [_with_article(objects[0].phrase)]
    # Describe the two largest visible objects: they are what a viewer notices first.
    a, b = sorted(objects, key=lambda o: -o.area)[:2]
    return [f"{_with_article(x.phrase)} {relation(x, y)} {_with_article(y.phrase)}" for x, y in ((a, b), (b, a))]


def caption_for(objects: list[SceneObject], rng: np.random.Generator) -> str:
    """One sentence: "a large red circle left of a small blue star" (or a single object, or nothing)."""
    variants = captions_for(objects)
    if len(variants) == 1:
        return variants[0]
    return variants[1] if rng.random() < 0.5 else variants[0]


def named_objects(caption: str) -> list[tuple[str, str]]:
    """The (colour, shape) of every object a caption names, sorted; a person has no colour ("", "person").

    The grammar's inverse, for scoring captions: two captions that name the same objects, in any
    order and with any relation or sizes, give the same list.
    """
    words = caption.lower().replace("?", " ").split()
    named = [("", PERSON) for w in words if w == PERSON]
    named += [(colour, shape) for colour, shape in zip(words, words[1:]) if colour in COLOURS and shape in SHAPES]
    return sorted(named)


def questions_for(objects: list[SceneObject], rng: np.random.Generator) -> list[QA]:
    """Up to one question of each type in QUESTION_TYPES, answerable from this scene alone."""
    qa: list[QA] = []
    shapes = [o for o in objects if o.kind != PERSON]
    kind_counts = Counter(o.kind for o in objects)

    unique = [o for o in shapes if kind_counts[o.kind] == 1]
    if unique:
        o = unique[rng.integers(len(unique))]
        qa.append(QA(f"what colour is the {o.kind}?", o.colour, "colour"))

    by_colour = Counter(o.colour for o in shapes)
    unique_colour = [o for o in shapes if by_colour[o.colour] == 1]
    if unique_colour:
        o = unique_colour[rng.integers(len(unique_colour))]
        qa.append(QA(f"what shape is the {o.colour} object?", o.kind, "shape"))

    kind = (*SHAPES, PERSON)[rng.integers(len(SHAPES) + 1)]
    plural = "people" if kind == PERSON else f"{kind}s"
    qa.append(QA(f"how many {plural} are there?", NUMBER_WORDS[min(kind_counts[kind], 9)], "count"))

    colour = list(COLOURS)[rng.integers(len(COLOURS))]
    shape = SHAPES[rng.integers(len(SHAPES))]
    present = any(o.kind == shape and o.colour == colour for o in shapes)
    qa.append(QA(f"is there a {colour} {shape}?", "yes" if present else "no", "existence"))

    if len(unique) >= 2:
        i, j = rng.choice(len(unique), size=2, replace=False)
        a, b = unique[i], unique[j]
        asked = ("left of", "right of", "above", "below")[rng.integers(4)]
        answer = "yes" if holds(a, asked, b) else "no"
        qa.append(QA(f"is the {a.kind} {asked} the {b.kind}?", answer, "relation"))
    return qa
