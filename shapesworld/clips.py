"""ShapesWorld clips: seed -> a short video in which shapes and stick figures move, with exact optical flow.

Every thing in a clip is a rigid *part* whose pose at frame ``t`` is a known similarity map from its
own coordinates to the image: a shape is one part (it translates, turns and grows), a stick figure
is one part per limb (each limb turns about its joint and keeps its length), and the background is
one part that pans. A pixel's colour is a function of its point in the part's own coordinates, so
the optical flow of a pixel owned by part ``k`` is exactly ``M_k(t+1)(M_k(t)^-1(p)) - p``, and the
point is *occluded* in the next frame when it leaves the image or another part covers it there.

``plan(seed)`` draws what moves and how (a pure function of the seed); ``ClipPlan.frame(t)`` renders
one frame with the per-frame annotations a scene has, and ``ClipPlan.flow(t)`` the flow from frame
``t`` to ``t + 1``. A stick figure's limbs follow a ``FigureMotion`` (joint angles as functions of
time): today a random fidget; an action (wave, jump, walk...) is one more such function of time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import render
from .scene import Scene, SceneObject, _layer_depths, _pick_colour
from .vocab import CLASSES, KEYPOINTS, NOT_IN_IMAGE, OCCLUDED, PERSON, SHAPES, SIZES, SKELETON_INDICES, VISIBLE

FRAMES, SIZE = 16, 128
SPRITE = 256  # side of the canonical shape masks and textures, covering local coordinates [-SPRITE_EXTENT, SPRITE_EXTENT]
SPRITE_EXTENT = 1.3
MAX_PAN, MAX_SPEED = 5.0, 7.0  # px per frame: the background's pan, and a shape's speed
NOISE = 3.0  # sensor noise, drawn afresh for every frame


def _sample(grid: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bilinear sample of ``grid`` (H, W[, C]) at continuous (column ``u``, row ``v``), clamped at the border."""
    h, w = grid.shape[:2]
    u, v = np.clip(u, 0, w - 1.001), np.clip(v, 0, h - 1.001)
    x0, y0 = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
    fx, fy = u - x0, v - y0
    if grid.ndim == 3:
        fx, fy = fx[..., None], fy[..., None]
    top = grid[y0, x0] * (1 - fx) + grid[y0, x0 + 1] * fx
    bottom = grid[y0 + 1, x0] * (1 - fx) + grid[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _rotate(x: np.ndarray, y: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    c, s = math.cos(angle), math.sin(angle)
    return c * x - s * y, s * x + c * y


@dataclass(frozen=True)
class Pose:
    """A similarity map from a part's coordinates to the image: p = origin + scale * R(angle) u."""

    x: float
    y: float
    angle: float
    scale: float = 1.0

    def to_local(self, px: np.ndarray, py: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        u, v = _rotate(px - self.x, py - self.y, -self.angle)
        return u / self.scale, v / self.scale

    def to_image(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, y = _rotate(u * self.scale, v * self.scale, self.angle)
        return x + self.x, y + self.y


class Part:
    """A rigid piece of the clip: which points of its own coordinates it covers, their colour, its pose at t."""

    object_index: int  # index into the clip's objects; -1 = the background

    def pose(self, t: float) -> Pose:
        raise NotImplementedError

    def covers(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def colour(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        raise NotImplementedError


@dataclass
class Background(Part):
    """The textured ground, panning at a constant velocity: its content at p is the field at p + offset(t)."""

    field: np.ndarray  # float32 (S, S, 3), larger than the image by the pan's reach
    margin: float
    velocity: tuple[float, float]
    object_index: int = -1

    def pose(self, t: float) -> Pose:
        return Pose(-self.margin - self.velocity[0] * t, -self.margin - self.velocity[1] * t, 0.0)

    def covers(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        return np.ones(u.shape, bool)

    def colour(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        return _sample(self.field, u, v)


@dataclass
class Sprite(Part):
    """A shape: its canonical mask and a shaded, textured skin, both in coordinates where its radius is 1."""

    object_index: int
    mask: np.ndarray  # bool (SPRITE, SPRITE)
    skin: np.ndarray  # float32 (SPRITE, SPRITE, 3)
    start: Pose
    velocity: tuple[float, float]
    spin: float  # rad per frame
    growth: float  # scale factor per frame

    def pose(self, t: float) -> Pose:
        s = self.start
        return Pose(s.x + self.velocity[0] * t, s.y + self.velocity[1] * t, s.angle + self.spin * t, s.scale * self.growth**t)

    def _texel(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        half = SPRITE / 2
        return u / SPRITE_EXTENT * half + half, v / SPRITE_EXTENT * half + half

    def covers(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        col, row = self._texel(u, v)
        inside = (col >= 0) & (col < SPRITE) & (row >= 0) & (row < SPRITE)
        out = np.zeros(u.shape, bool)
        out[inside] = self.mask[row[inside].astype(np.int64), col[inside].astype(np.int64)]
        return out

    def colour(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        return _sample(self.skin, *self._texel(u, v))


@dataclass
class FigureMotion:
    """A stick figure's pose as a function of time: where its neck is, its lean, and each limb's angle.

    ``angles`` hold, per limb (upper arms, forearms, thighs, shins, in that order, left then right),
    a base angle, an amplitude and a phase; they swing at ``rate`` rad per frame. An action is a
    choice of these functions (a wave swings one forearm high and fast), so it slots in here.
    """

    neck: tuple[float, float]
    velocity: tuple[float, float]
    lean: float
    lean_swing: float
    angles: np.ndarray  # (8, 3): base, amplitude, phase
    rate: float
    unit: float  # one "head unit" of the figure, px
    _cache: dict = field(default_factory=dict, repr=False, compare=False)  # t -> keypoints: every bone asks

    def keypoints(self, t: float) -> np.ndarray:
        """(len(KEYPOINTS), 2) positions at time t."""
        if t not in self._cache:
            self._cache[t] = self._keypoints(t)
        return self._cache[t]

    def _keypoints(self, t: float) -> np.ndarray:
        u = self.unit
        lean = self.lean + self.lean_swing * math.sin(self.rate * t)
        neck = np.array([self.neck[0] + self.velocity[0] * t, self.neck[1] + self.velocity[1] * t])

        def body(dx: float, dy: float) -> np.ndarray:  # a point fixed to the torso, turned by the lean
            return neck + np.array(_rotate(np.float64(dx * u), np.float64(dy * u), lean))

        limb = [self.angles[i, 0] + self.angles[i, 1] * math.sin(self.rate * t + self.angles[i, 2]) for i in range(8)]

        def end(start: np.ndarray, angle: float, length: float) -> np.ndarray:
            return start + np.array([math.cos(angle), math.sin(angle)]) * length * u

        at = {"neck": neck, "head": body(0, -0.9), "left_shoulder": body(-0.9, 0.25), "right_shoulder": body(0.9, 0.25),
              "left_hip": body(-0.6, 2.6), "right_hip": body(0.6, 2.6)}
        at["left_elbow"], at["right_elbow"] = end(at["left_shoulder"], limb[0], 1.3), end(at["right_shoulder"], limb[1], 1.3)
        at["left_wrist"], at["right_wrist"] = end(at["left_elbow"], limb[2], 1.2), end(at["right_elbow"], limb[3], 1.2)
        at["left_knee"], at["right_knee"] = end(at["left_hip"], limb[4], 1.5), end(at["right_hip"], limb[5], 1.5)
        at["left_ankle"], at["right_ankle"] = end(at["left_knee"], limb[6], 1.5), end(at["right_knee"], limb[7], 1.5)
        return np.stack([at[k] for k in KEYPOINTS])


@dataclass
class Limb(Part):
    """One bone of a stick figure, from joint a to joint b: a thick segment (the head's bone ends in the head's disc)."""

    object_index: int
    motion: FigureMotion
    joints: tuple[int, int]
    width: float
    head_radius: float  # > 0 for the bone whose first joint is the head
    rgb: np.ndarray

    def pose(self, t: float) -> Pose:
        points = self.motion.keypoints(t)
        (ax, ay), (bx, by) = points[self.joints[0]], points[self.joints[1]]
        return Pose(float(ax), float(ay), math.atan2(by - ay, bx - ax))

    def __post_init__(self) -> None:
        points = self.motion.keypoints(0.0)  # a bone keeps its length at every t
        self.length = float(np.linalg.norm(points[self.joints[1]] - points[self.joints[0]]))

    def covers(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        along = np.clip(u, 0, self.length)
        inside = (u - along) ** 2 + v**2 <= (self.width / 2) ** 2
        return inside | (u**2 + v**2 <= self.head_radius**2)

    def colour(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        shade = 1.0 + 0.25 * np.tanh(v / max(self.width, 1.0)) + 0.04 * np.sin(u * 0.9)
        return self.rgb * shade[..., None]


@dataclass
class ClipObject:
    """What a clip object is (its kind, colour and size name); its parts carry how it looks and moves."""

    kind: str
    colour: str
    size: str
    motion: FigureMotion | None = None  # stick figures only


@dataclass
class Flow:
    """The exact flow from frame t to t + 1: (H, W, 2) as (dx, dy) in px, and where the point is hidden or gone in t + 1."""

    flow: np.ndarray  # float32 (H, W, 2)
    occluded: np.ndarray  # bool (H, W)


@dataclass
class ClipPlan:
    """Everything that moves in clip ``seed`` and how; renders any frame and any consecutive pair's flow."""

    seed: int
    size: int
    frames: int
    objects: list[ClipObject]
    parts: list[Part]  # back to front: the background first

    def _grid(self) -> tuple[np.ndarray, np.ndarray]:
        yy, xx = np.mgrid[0 : self.size, 0 : self.size].astype(np.float64)
        return xx, yy

    def _owner(self, t: float, px: np.ndarray, py: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Index of the front-most part covering each point at time t, and every part's full coverage."""
        owner = np.zeros(px.shape, np.int64)
        cover = []
        for k, part in enumerate(self.parts):
            hit = part.covers(*part.pose(t).to_local(px, py))
            owner[hit] = k
            cover.append(hit)
        return owner, cover

    def frame(self, t: int) -> Scene:
        """Frame t as a scene: the image and the per-frame annotations (instance ids are the clip's object order + 1)."""
        xx, yy = self._grid()
        owner, cover = self._owner(t, xx, yy)
        image = np.zeros((self.size, self.size, 3), np.float32)
        for k, part in enumerate(self.parts):
            mine = owner == k
            if mine.any():
                image[mine] = part.colour(*part.pose(t).to_local(xx[mine], yy[mine]))
        image += np.random.default_rng([self.seed, t]).normal(0.0, NOISE, image.shape).astype(np.float32)
        object_of_part = np.array([p.object_index + 1 for p in self.parts])
        instance_map = object_of_part[owner].astype(np.uint8)
        labels = np.array([0] + [CLASSES.index(o.kind) for o in self.objects], np.uint8)
        full = [np.zeros((self.size, self.size), bool) for _ in self.objects]
        for part, hit in zip(self.parts, cover):
            if part.object_index >= 0:
                full[part.object_index] |= hit
        _, depth = _layer_depths([m if m.any() else _nowhere(self.size) for m in full], self.size)
        objects = [self._annotate(i, obj, instance_map, t) for i, obj in enumerate(self.objects)]
        return Scene(self.seed, np.clip(image, 0, 255).astype(np.uint8), labels[instance_map], instance_map, objects, depth=depth)

    def _annotate(self, index: int, obj: ClipObject, instance_map: np.ndarray, t: int) -> SceneObject:
        visible = instance_map == index + 1
        ys, xs = np.nonzero(visible)
        box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1) if len(xs) else (0, 0, 0, 0)
        centre = next(p.pose(t) for p in self.parts if p.object_index == index)
        annotated = SceneObject(index + 1, obj.kind, obj.colour, obj.size, (centre.x, centre.y), box, int(visible.sum()))
        if obj.motion is not None:
            points = obj.motion.keypoints(t)
            keypoints = np.concatenate([points, np.zeros((len(points), 1))], axis=1).astype(np.float32)
            for k, (x, y) in enumerate(points):
                xi, yi = int(round(x)), int(round(y))
                if not (0 <= xi < self.size and 0 <= yi < self.size):
                    keypoints[k, 2] = NOT_IN_IMAGE
                else:
                    window = instance_map[max(0, yi - 1) : yi + 2, max(0, xi - 1) : xi + 2]
                    keypoints[k, 2] = VISIBLE if (window == index + 1).any() else OCCLUDED
            annotated.keypoints = keypoints
        return annotated

    def flow(self, t: int) -> Flow:
        """The exact flow from frame t to t + 1 and its occlusion mask (the point leaves the image or is covered)."""
        xx, yy = self._grid()
        owner, _ = self._owner(t, xx, yy)
        nx, ny = xx.copy(), yy.copy()
        for k, part in enumerate(self.parts):
            mine = owner == k
            if mine.any():
                nx[mine], ny[mine] = part.pose(t + 1).to_image(*part.pose(t).to_local(xx[mine], yy[mine]))
        next_owner, _ = self._owner(t + 1, nx, ny)
        gone = (nx < -0.5) | (nx > self.size - 0.5) | (ny < -0.5) | (ny > self.size - 0.5)
        flow = np.stack([nx - xx, ny - yy], axis=-1).astype(np.float32)
        return Flow(flow, gone | (next_owner != owner))

    def pair(self, t: int) -> tuple[np.ndarray, np.ndarray, Flow]:
        """Frames t and t + 1 (uint8 HxWx3) and the flow between them: one training example."""
        return self.frame(t).image, self.frame(t + 1).image, self.flow(t)


def _nowhere(size: int) -> np.ndarray:
    """A one-pixel mask at the bottom row, for an object wholly outside a frame (depth needs a base row)."""
    mask = np.zeros((size, size), bool)
    mask[-1, 0] = True
    return mask


def _canonical(kind: str, rng: np.random.Generator, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A shape's mask and skin at radius 1 (upright): render.shape_mask on the sprite grid, a shading ramp and a texture."""
    radius = SPRITE / 2 / SPRITE_EXTENT
    mask = render.shape_mask(kind, SPRITE, SPRITE / 2, SPRITE / 2, radius, rng.uniform(0, 2 * math.pi))
    yy, xx = np.mgrid[0:SPRITE, 0:SPRITE].astype(np.float32) / SPRITE
    angle = rng.uniform(0, 2 * math.pi)
    shade = 1.0 + rng.uniform(0.15, 0.35) * ((xx * math.cos(angle) + yy * math.sin(angle)) - 0.5)
    texture = (render.smooth_noise(rng, SPRITE, int(rng.integers(4, 9))) - 0.5) * rng.uniform(30, 60)
    return mask, (rgb[None, None] * shade[..., None] + texture[..., None]).astype(np.float32)


def _ground(rng: np.random.Generator, side: int) -> np.ndarray:
    """A scene's background plus a fine grain: a panning ground must show texture everywhere for its motion to be seen."""
    grain = render.smooth_noise(rng, side, max(2, side // 3)) - 0.5
    return render.background(rng, side) + grain[..., None] * rng.uniform(25, 50)


def _figure(rng: np.random.Generator, size: int) -> FigureMotion:
    height = rng.uniform(0.38, 0.55) * size
    down = math.pi / 2
    bases = [down + 0.6, down - 0.6, down + 0.4, down - 0.4, down + 0.25, down - 0.25, down + 0.1, down - 0.1]
    angles = np.stack([[b + rng.uniform(-0.6, 0.6), rng.uniform(0.0, 0.6), rng.uniform(0, 2 * math.pi)] for b in bases])
    return FigureMotion(
        neck=(rng.uniform(0.15, 0.85) * size, rng.uniform(0.2, 0.45) * size),
        velocity=tuple(rng.uniform(-4.0, 4.0, 2)), lean=rng.uniform(-0.25, 0.25), lean_swing=rng.uniform(0, 0.15),
        angles=angles, rate=rng.uniform(0.2, 0.6), unit=height / 7.0,
    )


def plan(
    seed: int, size: int = SIZE, frames: int = FRAMES, *, shapes: tuple[int, int] = (2, 5), people: tuple[int, int] = (0, 2),
) -> ClipPlan:
    """Draw clip ``seed``: a panning textured background, shapes that translate, turn and grow, fidgeting stick figures."""
    rng = np.random.default_rng([seed, 0xC11])
    pan = tuple(rng.uniform(-MAX_PAN, MAX_PAN, 2)) if rng.random() < 0.8 else (0.0, 0.0)
    margin = math.ceil(MAX_PAN * frames) + 2
    parts: list[Part] = [Background(_ground(rng, size + 2 * margin), margin, pan)]
    objects: list[ClipObject] = []
    kinds = [SHAPES[rng.integers(len(SHAPES))] for _ in range(int(rng.integers(shapes[0], shapes[1] + 1)))]
    kinds += [PERSON] * int(rng.integers(people[0], people[1] + 1))
    rng.shuffle(kinds)
    for kind in kinds:
        colour, rgb = _pick_colour(rng)
        index = len(objects)
        if kind == PERSON:
            motion = _figure(rng, size)
            width = max(2.0, size * 0.03)
            for a, b in SKELETON_INDICES:
                head = motion.unit * 7 / 14 if a == KEYPOINTS.index("head") else 0.0
                parts.append(Limb(index, motion, (a, b), width, head, rgb))
            objects.append(ClipObject(kind, colour, "large", motion))
            continue
        size_name = ("small", "large")[rng.integers(2)]
        radius = rng.uniform(*SIZES[size_name]) * size
        mask, skin = _canonical(kind, rng, rgb)
        speed, heading = rng.uniform(0, MAX_SPEED), rng.uniform(0, 2 * math.pi)
        start = Pose(rng.uniform(radius, size - radius), rng.uniform(radius, size - radius), rng.uniform(0, 2 * math.pi), radius)
        parts.append(Sprite(
            index, mask, skin, start, (speed * math.cos(heading), speed * math.sin(heading)),
            rng.uniform(-0.08, 0.08), float(np.exp(rng.uniform(-0.03, 0.03))),
        ))
        objects.append(ClipObject(kind, colour, size_name))
    return ClipPlan(seed, size, frames, objects, parts)


@dataclass
class Clip:
    """A rendered clip: its frames (each a Scene with the per-frame annotations) and the flow between consecutive frames."""

    seed: int
    frames: list[Scene]
    flows: list[Flow] = field(default_factory=list)  # flows[t]: frame t -> t + 1

    @property
    def images(self) -> np.ndarray:
        return np.stack([f.image for f in self.frames])


def generate_clip(seed: int, size: int = SIZE, frames: int = FRAMES) -> Clip:
    """Render clip ``seed``: ``frames`` frames and the ``frames - 1`` flows between them. Deterministic per seed."""
    clip_plan = plan(seed, size, frames)
    return Clip(seed, [clip_plan.frame(t) for t in range(frames)], [clip_plan.flow(t) for t in range(frames - 1)])
