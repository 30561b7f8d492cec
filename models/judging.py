"""The one judge of every local generator (diffusion, VAE, GAN), so the three families stand in one table.

A generation is judged right when the project's mini-CLIP (``clip-shapes``, trained on real renders
only) picks the asked colour and shape among all 30 colour-shape labels. The generated 32x32 image
is upsampled to the judge's 64x64 by nearest neighbour: it invents no detail, and on real renders
through the same 64 -> 32 -> 64 round trip it read 97% right (bicubic 96%, bilinear 92%).

Diversity is measured in the same judge's image space: the mean pairwise cosine distance between
the features of generations that answer the same prompt from different seeds. A generator that
collapsed to one picture per prompt scores near 0; real renders of one prompt set the scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from PIL import Image

import shapesworld

from . import registry
from .clip import zero_shot

JUDGE = "clip-shapes"
JUDGE_LABELS = tuple(f"{colour} {shape}" for shape in shapesworld.SHAPES for colour in shapesworld.COLOURS)
DIFFUSION_SAMPLING = {"scheduler": "DPM-Solver++", "steps": 10, "guidance": 4.0}
"""How the local diffusion model is sampled when judged (its bar), and the tab's defaults for it."""


@dataclass
class Reading:
    """What the judge saw in each image: (colour, shape), and its unit feature vector."""

    seen: list[tuple[str, str]]
    features: np.ndarray  # (N, D)


def eval_prompts(count: int) -> list[str]:
    """``count`` prompts; any 30 in a row cover every colour-shape pair, any 60 each pair in both sizes.

    Prompt ``i`` asks for shape ``i mod 5`` in colour ``i mod 6`` (5 and 6 are coprime, so the pairs
    cycle through all 30), small for the first 30 of every 60 and large for the next.
    """
    sizes, colours, shapes = tuple(shapesworld.SIZES), tuple(shapesworld.COLOURS), shapesworld.SHAPES
    return [f"a {sizes[(i // 30) % 2]} {colours[i % 6]} {shapes[i % 5]}" for i in range(count)]


def read(images: Sequence[Image.Image]) -> Reading:
    """The judge's reading of each image, upsampled (nearest neighbour) to its input size."""
    classifier = registry.get(JUDGE)
    big = [im.resize((classifier.image_size, classifier.image_size), Image.Resampling.NEAREST) for im in images]
    result = zero_shot(classifier, big, JUDGE_LABELS)
    seen = [tuple(JUDGE_LABELS[i].split()) for i in result.probabilities.argmax(1)]
    return Reading(seen, result.image_features)  # type: ignore[arg-type]


def judge(images: Sequence[Image.Image]) -> list[tuple[str, str]]:
    """(colour, shape) the mini-CLIP sees in each image."""
    return read(images).seen


def asked(prompt: str) -> tuple[str | None, str | None]:
    """The (colour, shape) a prompt asks for, as the judge's labels name them (None where it names none)."""
    from .nets.diffusion import parse_prompt

    parsed = parse_prompt(prompt)
    return parsed.colour, parsed.shape


def diversity(features: np.ndarray) -> float:
    """Mean pairwise cosine distance (1 - cos) of unit feature vectors; 0 for fewer than two."""
    if len(features) < 2:
        return 0.0
    return float(np.mean([1.0 - float(features[i] @ features[j]) for i, j in combinations(range(len(features)), 2)]))


def grouped_diversity(features: np.ndarray, prompts: Sequence[str]) -> float:
    """Diversity within each prompt (over its seeds), averaged over the prompts asked more than once."""
    groups: dict[str, list[int]] = {}
    for i, prompt in enumerate(prompts):
        groups.setdefault(prompt, []).append(i)
    values = [diversity(features[rows]) for rows in groups.values() if len(rows) > 1]
    return round(float(np.mean(values)), 4) if values else 0.0


def score(images: Sequence[Image.Image], prompts: Sequence[str]) -> tuple[dict, list[bool]]:
    """The bar's figures for generations of ``prompts``: accuracy (all, colour, shape, per shape) and diversity.

    Returns the metrics and each generation's verdict (for a grid framed by it).
    """
    reading = read(images)
    wanted = [asked(p) for p in prompts]
    right = np.array([s == a for s, a in zip(reading.seen, wanted)])
    per_shape = {
        shape: round(float(right[[a[1] == shape for a in wanted]].mean()), 4)
        for shape in shapesworld.SHAPES if any(a[1] == shape for a in wanted)
    }
    metrics = {
        "generation_accuracy": round(float(right.mean()), 4),
        "colour_accuracy": round(float(np.mean([s[0] == a[0] for s, a in zip(reading.seen, wanted)])), 4),
        "shape_accuracy": round(float(np.mean([s[1] == a[1] for s, a in zip(reading.seen, wanted)])), 4),
        "per_shape": per_shape,
        "diversity": grouped_diversity(reading.features, prompts),
        "judge": JUDGE,
    }
    return metrics, right.tolist()


def real_diversity(seed: int, count: int, size: int = 32) -> float:
    """The diversity of real renders (seeds ``seed``..) grouped by their prompt: the scale a generator is read on."""
    images, prompts = [], []
    for s in range(seed, seed + count):
        image, prompt = shapesworld.single_object(s, 64)
        images.append(Image.fromarray(image).resize((size, size), Image.Resampling.BOX))
        prompts.append(prompt)
    return grouped_diversity(read(images).features, prompts)
