"""ShapesWorld: the procedural dataset every local model of Deep Vision Lab is trained on.

``generate(seed)`` renders one scene with every annotation (semantic and instance masks, boxes,
labels, stick-figure keypoints with visibility, a caption, question-answer pairs, a per-pixel depth
map: a receding ground and the objects as cards in front of it); ``single_object(seed)`` gives a
text prompt and its image for text-to-image models. ``degrade`` blurs, adds noise and compresses
with known parameters (``Degradation``), so restoration has exact clean/degraded pairs.
Splits are seed ranges (``SPLITS``), so "unseen scenes" is just a seed outside ``train``.
"""

from . import degrade
from .degrade import Degradation
from .language import QA, QUESTION_TYPES
from .scene import GROUND_FAR, GROUND_NEAR, Scene, SceneObject, generate, ground_depth, single_object
from .vocab import CLASSES, COLOURS, KEYPOINTS, PERSON, SHAPES, SIZES, SKELETON, SKELETON_INDICES, SPLITS

__all__ = [
    "CLASSES", "COLOURS", "Degradation", "degrade", "GROUND_FAR", "GROUND_NEAR", "KEYPOINTS", "PERSON", "QA", "QUESTION_TYPES", "SHAPES", "SIZES", "SKELETON",
    "SKELETON_INDICES", "SPLITS", "Scene", "SceneObject", "generate", "ground_depth", "single_object",
]
