"""Train and evaluate the local detectors on ShapesWorld boxes (five shapes and person).

    python -m models train fasterrcnn-shapes        # two-stage: torchvision FasterRCNN
    python -m models train fcos-shapes              # one-stage, anchor-free: torchvision FCOS
    python -m models evaluate fcos-shapes --seed 2000000 --count 500 --json

Scenes are generated on the fly from the train split, at their native 128 px. The metric is
COCO's box mAP from torchmetrics (pycocotools underneath): mAP@0.5 and mAP@[0.5:0.95].
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import torch
from PIL import Image
from torchmetrics.detection import MeanAveragePrecision

import shapesworld
from models.detection import Detector, RawDetections, select
from models.nets.detection import IMAGENET_MEAN, IMAGENET_STD, DetectorConfig, build_detector

from .common import WEIGHTS_DIR, TrainLog, save_checkpoint, seed_everything

RUNS_DIR = WEIGHTS_DIR.parent / "runs"  # interim checkpoints (git-ignored), so a stopped run is not lost
TEST_SEED = shapesworld.SPLITS["test"].start
VAL_SEED = shapesworld.SPLITS["val"].start


def box_targets(scene: shapesworld.Scene) -> dict[str, torch.Tensor]:
    return {"boxes": torch.from_numpy(scene.boxes), "labels": torch.from_numpy(scene.labels)}


@dataclass(frozen=True)
class Recipe:
    """How one local detector is built, fed and scored; the training loop (``fit``) is the same for all."""

    family: str  # a DetectorConfig family
    steps: int
    targets: Callable[[shapesworld.Scene], dict[str, torch.Tensor]] = box_targets
    evaluate: Callable[..., dict] | None = None  # None: box mAP (``evaluate`` below)
    classes: tuple[str, ...] = shapesworld.CLASSES
    num_keypoints: int = 0
    people: tuple[int, int] = (0, 2)  # stick figures per training scene
    batch: int = 8
    lr: float = 2e-3
    half_precision_file: bool = False  # ship float16 weights (half the megabytes; scored as shipped)
    network: Mapping[str, object] = field(default_factory=dict)  # DetectorConfig fields other than the defaults
    loss_weights: Mapping[str, float] = field(default_factory=dict)  # e.g. {"loss_mask": 2.0}; others weigh 1

    def wrap(self, network: torch.nn.Module) -> Detector:
        """The app's own wrapper around a network being trained, for scoring it."""
        keypoints = dict(keypoint_names=list(shapesworld.KEYPOINTS), skeleton=list(shapesworld.SKELETON_INDICES)) if self.num_keypoints else {}
        return Detector(network.eval(), list(self.classes), **keypoints)


RECIPES = {
    "fasterrcnn-shapes": Recipe("faster_rcnn", steps=2600),
    "fcos-shapes": Recipe("fcos", steps=4400),
}


def scene_batch(seeds: range, size: int, recipe: Recipe) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    """Images in [0, 1] (the detector normalises them itself) and torchvision-style targets."""
    scenes = [shapesworld.generate(s, size, people=recipe.people) for s in seeds]
    images = [torch.from_numpy(s.image).permute(2, 0, 1).float() / 255 for s in scenes]
    return images, [recipe.targets(s) for s in scenes]


def evaluate(detector: Callable[[Image.Image], RawDetections], seed: int = TEST_SEED, count: int = 500, size: int = 128) -> dict:
    """COCO box mAP of a detector (the app's own wrapper and post-processing) on scenes ``seed..seed+count-1``.

    Detections are taken as COCO evaluation takes them: every score above the floor, the model's
    own NMS, at most 100 per image.
    """
    metric = MeanAveragePrecision(box_format="xyxy", iou_type="bbox", class_metrics=True)
    for s in range(seed, seed + count):
        scene = shapesworld.generate(s, size)
        found = select(detector(Image.fromarray(scene.image)), score_threshold=0.0, max_detections=100)
        metric.update(
            [{"boxes": torch.from_numpy(found.boxes), "scores": torch.from_numpy(found.scores), "labels": torch.from_numpy(found.labels)}],
            [{"boxes": torch.from_numpy(scene.boxes), "labels": torch.from_numpy(scene.labels)}],
        )
    result = metric.compute()
    classes = result["classes"].tolist()
    per_class = result["map_per_class"].tolist()
    return {
        "map_50": round(float(result["map_50"]), 4),
        "map": round(float(result["map"]), 4),
        "map_75": round(float(result["map_75"]), 4),
        "map_per_class": {shapesworld.CLASSES[c]: round(v, 4) for c, v in zip(classes, per_class)},
        "eval_seeds": f"{seed}..{seed + count - 1}",
        "eval_count": count,
    }


def train(name: str, **kwargs) -> dict:
    """Train local detector ``name`` (a key of RECIPES) from scratch and save it with its card."""
    return fit(name, RECIPES[name], **kwargs)


def fit(
    name: str,
    recipe: Recipe,
    steps: int | None = None,
    seed: int = 0,
    out: Path = WEIGHTS_DIR,
    eval_count: int = 500,
    size: int = 128,
    device: str = "cpu",
) -> dict:
    """The training loop every local detector shares: AdamW, one-cycle schedule, fresh scenes every step.

    ``device`` only moves the network and each batch (scenes are rendered on the CPU); scoring
    runs wherever the network is, through the app's own wrapper.
    """
    steps = steps or recipe.steps
    score = recipe.evaluate or evaluate
    seed_everything(seed)
    config = DetectorConfig(
        family=recipe.family, num_classes=len(recipe.classes), num_keypoints=recipe.num_keypoints, **({"image_size": size} | dict(recipe.network))
    )
    network = build_detector(config).to(device)
    opt = torch.optim.AdamW(network.parameters(), lr=recipe.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.lr, total_steps=steps, pct_start=0.1)
    log = TrainLog()
    first = shapesworld.SPLITS["train"].start + seed * steps * recipe.batch
    classes = list(recipe.classes)
    card_base = {"config": config.to_dict(), "classes": classes}
    if recipe.num_keypoints:
        card_base |= {"keypoints": list(shapesworld.KEYPOINTS), "skeleton": list(shapesworld.SKELETON_INDICES)}
    for step in range(1, steps + 1):
        network.train()
        images, targets = scene_batch(range(first + (step - 1) * recipe.batch, first + step * recipe.batch), size, recipe)
        images = [image.to(device) for image in images]
        targets = [{k: v.to(device) for k, v in target.items()} for target in targets]
        losses = network(images, targets)
        loss = sum(recipe.loss_weights.get(k, 1.0) * v for k, v in losses.items())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(network.parameters(), 10.0)
        opt.step()
        sched.step()
        log.step(step, steps, loss=loss.item(), **{k.removeprefix("loss_"): v.item() for k, v in losses.items()})
        if step % 1000 == 0 and step != steps:  # a quick look at unseen (validation) scenes as it trains
            quick = score(recipe.wrap(network), seed=VAL_SEED, count=50, size=size)
            print("  val " + " ".join(f"{k} {v:.3f}" for k, v in quick.items() if isinstance(v, float)), flush=True)
            save_checkpoint(network, name, card_base | {"step": step}, RUNS_DIR / name)
    train_seconds = log.elapsed
    if recipe.half_precision_file:
        network.load_state_dict({k: v.half().to(v.dtype) if v.is_floating_point() else v for k, v in network.state_dict().items()})
    metrics = score(recipe.wrap(network), count=eval_count, size=size)
    print("test " + " ".join(f"{k} {v}" for k, v in metrics.items()), flush=True)
    card = {
        "architecture": f"torchvision.models.detection.{type(network).__name__} + models.nets.detection.ConvBackbone",
        **card_base,
        "preprocessing": {"mean": IMAGENET_MEAN, "std": IMAGENET_STD, "native_size": size, "note": "inside the network (GeneralizedRCNNTransform)"},
        "seed": seed,
        "train": {"steps": steps, "batch": recipe.batch, "lr": recipe.lr, "scenes_seen": steps * recipe.batch, "first_seed": first, "people_per_scene": list(recipe.people), "loss_weights": dict(recipe.loss_weights)},
        "train_seconds": round(train_seconds, 1),
        "metrics": metrics,
        "trained_at": time.strftime("%Y-%m-%d"),
    }
    save_checkpoint(network, name, card, out, half=recipe.half_precision_file)
    return card
