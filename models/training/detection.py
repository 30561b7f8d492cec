"""Train and evaluate the local detectors on ShapesWorld boxes (five shapes and person).

    python -m models train fasterrcnn-shapes        # two-stage: torchvision FasterRCNN
    python -m models train fcos-shapes              # one-stage, anchor-free: torchvision FCOS
    python -m models evaluate fcos-shapes --seed 2000000 --count 500 --json

Scenes are generated on the fly from the train split, at their native 128 px. The metric is
COCO's box mAP from torchmetrics (pycocotools underneath): mAP@0.5 and mAP@[0.5:0.95].
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
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


@dataclass(frozen=True)
class Recipe:
    family: str
    steps: int
    batch: int = 8
    lr: float = 2e-3


RECIPES = {
    "fasterrcnn-shapes": Recipe("faster_rcnn", steps=2600),
    "fcos-shapes": Recipe("fcos", steps=4400),
}


def scene_batch(seeds: range, size: int) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    """Images in [0, 1] (the detector normalises them itself) and torchvision-style targets."""
    scenes = [shapesworld.generate(s, size) for s in seeds]
    images = [torch.from_numpy(s.image).permute(2, 0, 1).float() / 255 for s in scenes]
    targets = [{"boxes": torch.from_numpy(s.boxes), "labels": torch.from_numpy(s.labels)} for s in scenes]
    return images, targets


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


def train(
    name: str,
    steps: int | None = None,
    seed: int = 0,
    out: Path = WEIGHTS_DIR,
    eval_count: int = 500,
    size: int = 128,
) -> dict:
    """Train local detector ``name`` (a key of RECIPES) from scratch and save it with its card."""
    recipe = RECIPES[name]
    steps = steps or recipe.steps
    seed_everything(seed)
    config = DetectorConfig(family=recipe.family, num_classes=len(shapesworld.CLASSES), image_size=size)
    network = build_detector(config)
    opt = torch.optim.AdamW(network.parameters(), lr=recipe.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.lr, total_steps=steps, pct_start=0.1)
    log = TrainLog()
    first = shapesworld.SPLITS["train"].start + seed * steps * recipe.batch
    classes = list(shapesworld.CLASSES)
    for step in range(1, steps + 1):
        network.train()
        images, targets = scene_batch(range(first + (step - 1) * recipe.batch, first + step * recipe.batch), size)
        losses = network(images, targets)
        loss = sum(losses.values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(network.parameters(), 10.0)
        opt.step()
        sched.step()
        log.step(step, steps, loss=loss.item(), **{k.removeprefix("loss_"): v.item() for k, v in losses.items()})
        if step % 1000 == 0 and step != steps:  # a quick look at unseen (validation) scenes as it trains
            quick = evaluate(Detector(network.eval(), classes), seed=VAL_SEED, count=50, size=size)
            print(f"  val mAP@0.5 {quick['map_50']:.3f} mAP {quick['map']:.3f}", flush=True)
            save_checkpoint(network, name, {"config": config.to_dict(), "classes": classes, "step": step}, RUNS_DIR / name)
    train_seconds = log.elapsed
    network.eval()
    metrics = evaluate(Detector(network, classes), count=eval_count, size=size)
    print(f"test mAP@0.5 {metrics['map_50']:.4f} mAP@[.5:.95] {metrics['map']:.4f} {metrics['map_per_class']}", flush=True)
    card = {
        "architecture": f"torchvision.models.detection.{'FasterRCNN' if recipe.family == 'faster_rcnn' else 'FCOS'} + models.nets.detection.ConvBackbone",
        "config": config.to_dict(),
        "classes": classes,
        "preprocessing": {"mean": IMAGENET_MEAN, "std": IMAGENET_STD, "native_size": size, "note": "inside the network (GeneralizedRCNNTransform)"},
        "seed": seed,
        "train": {"steps": steps, "batch": recipe.batch, "lr": recipe.lr, "scenes_seen": steps * recipe.batch, "first_seed": first},
        "train_seconds": round(train_seconds, 1),
        "metrics": metrics,
        "trained_at": time.strftime("%Y-%m-%d"),
    }
    save_checkpoint(network, name, card, out)
    return card
