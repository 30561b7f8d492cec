"""ShapesWorld scenes: seed -> image + every annotation the course's tasks need.

``generate(seed)`` is a pure function of its arguments: the same seed gives the same scene on
any machine (NumPy's PCG64 stream and Pillow's rasteriser are both platform-independent).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from . import render
from .language import QA, caption_for, questions_for
from .vocab import CLASSES, COLOURS, KEYPOINTS, NOT_IN_IMAGE, OCCLUDED, PERSON, SHAPES, SIZES, SKELETON, VISIBLE

_LIMBS = [(KEYPOINTS.index(a), KEYPOINTS.index(b)) for a, b in SKELETON]


@dataclass
class SceneObject:
    """One thing in a scene: a shape or a stick figure, with its visible-pixel annotations."""

    instance_id: int  # 1-based index into Scene.instance_map
    kind: str  # a SHAPES entry or PERSON
    colour: str
    size: str  # "small" | "large" (persons: "large")
    centre: tuple[float, float]  # (x, y) in pixels, of the drawn shape (not only its visible part)
    box: tuple[int, int, int, int] = (0, 0, 0, 0)  # visible pixels, (x0, y0, x1, y1), exclusive end
    area: int = 0  # visible pixels
    keypoints: np.ndarray | None = None  # persons only: (len(KEYPOINTS), 3) as x, y, visibility
    depth: float = 0.0  # distance of its flat, camera-facing card (scene units; the ground spans FAR..NEAR)

    @property
    def label(self) -> int:
        return CLASSES.index(self.kind)

    @property
    def phrase(self) -> str:
        """How captions and questions name this object ("a large red circle", "a person")."""
        return PERSON if self.kind == PERSON else f"{self.size} {self.colour} {self.kind}"


@dataclass
class Scene:
    """A generated scene. ``semantic`` holds class indices, ``instance_map`` 0 or an instance id.

    ``depth`` is a ShapesWorld distance (the ground runs from GROUND_FAR at the top row to GROUND_NEAR
    at the bottom; objects are flat cards nearer than the ground behind them and than what they cover).
    """

    seed: int
    image: np.ndarray  # uint8 HxWx3
    semantic: np.ndarray  # uint8 HxW, indices into CLASSES
    instance_map: np.ndarray  # uint8 HxW, 0 = background, k = objects[k-1]
    objects: list[SceneObject]
    depth: np.ndarray  # float32 HxW distance per pixel: the receding ground, then each object's card
    caption: str = ""
    qa: list[QA] = field(default_factory=list)

    @cached_property
    def masks(self) -> np.ndarray:
        """Boolean (N, H, W) visible mask per object, in ``objects`` order."""
        ids = np.array([o.instance_id for o in self.objects], dtype=np.uint8)
        return self.instance_map[None] == ids[:, None, None]

    @property
    def boxes(self) -> np.ndarray:
        return np.array([o.box for o in self.objects], dtype=np.float32).reshape(-1, 4)

    @property
    def labels(self) -> np.ndarray:
        return np.array([o.label for o in self.objects], dtype=np.int64)

    @property
    def people(self) -> list[SceneObject]:
        return [o for o in self.objects if o.kind == PERSON]


GROUND_FAR, GROUND_NEAR = 10.0, 2.0
"""Depth of the ground plane at the top and at the bottom row of every scene."""
CARD_IN_FRONT = 0.95  # an object's card stands just in front of the ground at its base
OCCLUDER_IN_FRONT = 0.9  # an object drawn over another stands at most this fraction of that one's depth


def ground_depth(size: int) -> np.ndarray:
    """Depth of each row of a ground plane seen from above its horizon: far at the top, near at the bottom.

    Disparity (1 / depth) of a plane is linear in the image row, so it is interpolated, not depth.
    """
    rows = (np.arange(size, dtype=np.float64) + 0.5) / size
    return (1.0 / (1.0 / GROUND_FAR + rows * (1.0 / GROUND_NEAR - 1.0 / GROUND_FAR))).astype(np.float32)


def _layer_depths(full_masks: list[np.ndarray], size: int) -> tuple[list[float], np.ndarray]:
    """Each object's depth, and the per-pixel depth map, from the objects' full masks in draw order.

    An object stands where it touches the ground (its lowest row), so its height in the image is the
    monocular cue; then, in draw order, it is pulled in front of every earlier object its full mask
    overlaps, so that what is drawn over something is nearer (painter's order = z order).
    """
    ground = ground_depth(size)
    depth = np.repeat(ground[:, None], size, axis=1)
    depths: list[float] = []
    for i, mask in enumerate(full_masks):
        base_row = int(np.nonzero(mask.any(axis=1))[0].max())
        d = float(ground[base_row]) * CARD_IN_FRONT
        for earlier, earlier_mask in zip(depths, full_masks[:i]):
            if (mask & earlier_mask).any():
                d = min(d, earlier * OCCLUDER_IN_FRONT)
        depths.append(d)
        depth[mask] = d
    return depths, depth


def _pick_colour(rng: np.random.Generator) -> tuple[str, np.ndarray]:
    name = list(COLOURS)[rng.integers(len(COLOURS))]
    rgb = np.clip(np.array(COLOURS[name], dtype=np.float32) + rng.uniform(-18, 18, size=3), 0, 255)
    return name, rgb


def _overlaps_too_much(box: tuple[float, ...], placed: list[tuple[float, ...]], limit: float) -> bool:
    """True if ``box`` covers more than ``limit`` of any already placed box (or vice versa)."""
    x0, y0, x1, y1 = box
    for a0, b0, a1, b1 in placed:
        inter = max(0.0, min(x1, a1) - max(x0, a0)) * max(0.0, min(y1, b1) - max(y0, b0))
        smaller = min((x1 - x0) * (y1 - y0), (a1 - a0) * (b1 - b0))
        if inter > limit * smaller:
            return True
    return False


def _person_keypoints(rng: np.random.Generator, cx: float, cy: float, height: float) -> np.ndarray:
    """Keypoints (x, y) of a stick figure in a random pose, centred near (cx, cy)."""
    u = height / 7.0  # one "head unit"
    lean = rng.uniform(-0.25, 0.25)
    neck = np.array([cx + math.sin(lean) * u * 0.5, cy - 2.0 * u])
    head = neck + np.array([math.sin(lean), -math.cos(lean)]) * u * 0.9
    pelvis = neck + np.array([math.sin(-lean), math.cos(lean)]) * u * 2.6
    shoulder_l, shoulder_r = neck + [-0.9 * u, 0.25 * u], neck + [0.9 * u, 0.25 * u]
    hip_l, hip_r = pelvis + [-0.6 * u, 0], pelvis + [0.6 * u, 0]

    def limb(start: np.ndarray, base_angle: float, spread: float, length: float) -> np.ndarray:
        angle = base_angle + rng.uniform(-spread, spread)
        return start + np.array([math.cos(angle), math.sin(angle)]) * length

    down = math.pi / 2
    elbow_l = limb(shoulder_l, down + 0.6, 1.2, 1.3 * u)
    elbow_r = limb(shoulder_r, down - 0.6, 1.2, 1.3 * u)
    wrist_l = limb(elbow_l, down + 0.4, 1.5, 1.2 * u)
    wrist_r = limb(elbow_r, down - 0.4, 1.5, 1.2 * u)
    knee_l = limb(hip_l, down + 0.25, 0.45, 1.5 * u)
    knee_r = limb(hip_r, down - 0.25, 0.45, 1.5 * u)
    ankle_l = limb(knee_l, down + 0.1, 0.5, 1.5 * u)
    ankle_r = limb(knee_r, down - 0.1, 0.5, 1.5 * u)
    by_name = {
        "head": head, "neck": neck, "left_shoulder": shoulder_l, "right_shoulder": shoulder_r,
        "left_elbow": elbow_l, "right_elbow": elbow_r, "left_wrist": wrist_l, "right_wrist": wrist_r,
        "left_hip": hip_l, "right_hip": hip_r, "left_knee": knee_l, "right_knee": knee_r,
        "left_ankle": ankle_l, "right_ankle": ankle_r,
    }
    return np.stack([by_name[k] for k in KEYPOINTS]).astype(np.float32)


def generate(
    seed: int,
    size: int = 128,
    *,
    shapes: tuple[int, int] = (2, 6),
    people: tuple[int, int] = (0, 2),
    noise: float = 6.0,
) -> Scene:
    """Render scene ``seed``: a textured background, ``shapes`` objects and ``people`` stick figures.

    Counts are inclusive ranges. Objects may overlap (boxes share at most 35 % of the smaller
    one), so masks and keypoint visibility describe what is actually visible. ``depth`` is derived
    from the drawn masks alone (no random draws), so adding it left every seed's image as it was.
    """
    rng = np.random.default_rng(seed)
    img = render.background(rng, size)
    semantic = np.zeros((size, size), np.uint8)
    instance_map = np.zeros((size, size), np.uint8)
    objects: list[SceneObject] = []
    placed: list[tuple[float, ...]] = []
    full_masks: list[np.ndarray] = []

    n_shapes = int(rng.integers(shapes[0], shapes[1] + 1))
    n_people = int(rng.integers(people[0], people[1] + 1))
    kinds = [SHAPES[rng.integers(len(SHAPES))] for _ in range(n_shapes)] + [PERSON] * n_people
    rng.shuffle(kinds)

    for kind in kinds:
        colour, rgb = _pick_colour(rng)
        for _attempt in range(20):
            if kind == PERSON:
                height = rng.uniform(0.38, 0.55) * size
                cx, cy = rng.uniform(0.15, 0.85) * size, rng.uniform(0.3, 0.7) * size
                extent = (cx - height * 0.3, cy - height * 0.55, cx + height * 0.3, cy + height * 0.55)
                size_name, radius = "large", height / 2
            else:
                size_name = ("small", "large")[rng.integers(2)]
                radius = rng.uniform(*SIZES[size_name]) * size
                cx, cy = rng.uniform(radius, size - radius), rng.uniform(radius, size - radius)
                extent = (cx - radius, cy - radius, cx + radius, cy + radius)
            if not _overlaps_too_much(extent, placed, 0.35):
                break
        else:
            continue  # no room left for this object; the scene simply has one fewer
        placed.append(extent)
        obj = SceneObject(len(objects) + 1, kind, colour, size_name, (float(cx), float(cy)))
        if kind == PERSON:
            keypoints = _person_keypoints(rng, cx, cy, height)
            width = max(2, round(size * 0.03))
            mask = render.stick_figure_mask(size, keypoints, _LIMBS, height / 14, width)
            obj.keypoints = np.concatenate([keypoints, np.zeros((len(KEYPOINTS), 1), np.float32)], axis=1)
        else:
            mask = render.shape_mask(kind, size, cx, cy, radius, rng.uniform(0, 2 * math.pi))
        ys, xs = np.nonzero(mask)
        if len(xs) == 0:
            continue
        box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        render.paint(img, mask, rgb, rng, box)
        semantic[mask] = obj.label
        instance_map[mask] = obj.instance_id
        objects.append(obj)
        full_masks.append(mask)

    object_depths, depth = _layer_depths(full_masks, size)
    for obj, d in zip(objects, object_depths):
        obj.depth = d

    img += rng.normal(0.0, noise, size=img.shape).astype(np.float32)
    image = np.clip(img, 0, 255).astype(np.uint8)
    objects = _finalise_annotations(objects, instance_map, size)
    scene = Scene(seed, image, semantic, instance_map, objects, depth=depth)
    scene.caption = caption_for(scene.objects, rng)
    scene.qa = questions_for(scene.objects, rng)
    return scene


def _finalise_annotations(objects: list[SceneObject], instance_map: np.ndarray, size: int) -> list[SceneObject]:
    """Boxes and areas from *visible* pixels; keypoint visibility from what covers each joint.

    Objects hidden almost entirely by later ones are dropped and the instance ids renumbered,
    so that every annotated object can really be seen.
    """
    kept: list[SceneObject] = []
    remap = np.zeros(256, np.uint8)
    for obj in objects:
        visible = instance_map == obj.instance_id
        area = int(visible.sum())
        if area < 12:
            continue
        ys, xs = np.nonzero(visible)
        obj.box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        obj.area = area
        if obj.keypoints is not None:
            for k, (x, y, _) in enumerate(obj.keypoints):
                xi, yi = int(round(x)), int(round(y))
                if not (0 <= xi < size and 0 <= yi < size):
                    obj.keypoints[k, 2] = NOT_IN_IMAGE
                elif instance_map[yi, xi] in (obj.instance_id, 0) or _near_own_pixels(instance_map, xi, yi, obj.instance_id):
                    obj.keypoints[k, 2] = VISIBLE
                else:
                    obj.keypoints[k, 2] = OCCLUDED
        remap[obj.instance_id] = len(kept) + 1
        obj.instance_id = len(kept) + 1
        kept.append(obj)
    instance_map[...] = remap[instance_map]
    return kept


def _near_own_pixels(instance_map: np.ndarray, x: int, y: int, instance_id: int) -> bool:
    """A joint counts as visible if its own figure shows within one pixel of it."""
    window = instance_map[max(0, y - 1) : y + 2, max(0, x - 1) : x + 2]
    return bool((window == instance_id).any())


def single_object(seed: int, size: int = 64, background_seed: int | None = None) -> tuple[np.ndarray, str]:
    """An image of one centred-ish object over a plain textured background, and its prompt.

    For text-to-image models: the prompt ("a large red star") names everything that varies.
    ``background_seed`` redraws the background and the pixel noise from that seed and leaves the
    object exactly as ``seed`` draws it: the same object in another setting (self-supervised
    training's positive pairs).
    """
    rng = np.random.default_rng(seed)
    img = render.background(rng, size) * 0.4 + 140  # low-contrast background, so the object dominates
    setting = rng if background_seed is None else np.random.default_rng([seed, background_seed])
    if background_seed is not None:
        img = render.background(setting, size) * 0.4 + 140
    kind = SHAPES[rng.integers(len(SHAPES))]
    colour, rgb = _pick_colour(rng)
    size_name = ("small", "large")[rng.integers(2)]
    radius = rng.uniform(*SIZES[size_name]) * size * 1.6
    cx, cy = size / 2 + rng.uniform(-0.1, 0.1) * size, size / 2 + rng.uniform(-0.1, 0.1) * size
    mask = render.shape_mask(kind, size, cx, cy, radius, rng.uniform(0, 2 * math.pi))
    render.paint(img, mask, rgb, rng, (0, 0, size, size))
    image = np.clip(img + setting.normal(0, 3, img.shape), 0, 255).astype(np.uint8)
    return image, f"a {size_name} {colour} {kind}"
