"""The fixed vocabulary of ShapesWorld: shapes, colours, sizes, classes, keypoints.

Everything that names a thing in a scene lives here, so that the generator, the captions,
the question-answer pairs and every model's label list agree by construction.
"""

from __future__ import annotations

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "ring")
"""Shape kinds, in class-index order (class 1 is the first shape)."""

PERSON = "person"

CLASSES: tuple[str, ...] = ("background", *SHAPES, PERSON)
"""Semantic classes: index 0 is background, then one class per shape kind, then person."""

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 215, 40),
    "purple": (140, 50, 180),
    "orange": (245, 140, 20),
}
"""Nominal RGB of each colour name; rendering jitters and shades around it."""

SIZES: dict[str, tuple[float, float]] = {"small": (0.055, 0.08), "large": (0.12, 0.17)}
"""Object radius range per size name, as a fraction of the image side."""

KEYPOINTS: tuple[str, ...] = (
    "head", "neck",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)
"""Stick-figure keypoints (a COCO-like subset with an explicit neck)."""

SKELETON: tuple[tuple[str, str], ...] = (
    ("head", "neck"),
    ("neck", "left_shoulder"), ("neck", "right_shoulder"),
    ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
    ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"),
    ("neck", "left_hip"), ("neck", "right_hip"), ("left_hip", "right_hip"),
    ("left_hip", "left_knee"), ("left_knee", "left_ankle"),
    ("right_hip", "right_knee"), ("right_knee", "right_ankle"),
)
"""Limbs drawn between keypoints; also what a pose overlay connects."""

SKELETON_INDICES: tuple[tuple[int, int], ...] = tuple((KEYPOINTS.index(a), KEYPOINTS.index(b)) for a, b in SKELETON)
"""The same limbs as pairs of indices into KEYPOINTS (what drawing code and COCO files take)."""

# Keypoint visibility, as in COCO: 0 = outside the image, 1 = hidden behind something, 2 = visible.
NOT_IN_IMAGE, OCCLUDED, VISIBLE = 0, 1, 2

# Seed ranges of the splits. Disjoint, so "scenes it never saw" is a matter of seeds.
SPLITS: dict[str, range] = {
    "train": range(0, 1_000_000),
    "val": range(1_000_000, 1_100_000),
    "test": range(2_000_000, 2_100_000),
}
