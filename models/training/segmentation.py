"""Train and evaluate the local U-Net on ShapesWorld semantic segmentation.

    python -m models train unet-shapes            # ~25 min on 2 CPU cores
    python -m models evaluate unet-shapes --seed 2000000 --count 500

Scenes are generated on the fly from the train split's seeds, so the model never sees the
same scene twice and never sees a test scene. Loss: cross-entropy plus soft Dice, because the
thin limbs of the stick figures and the small shapes are few pixels and cross-entropy alone
lets the background dominate.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

import shapesworld
from models.nets.unet import UNet, UNetConfig
from models.segmentation import SegmentationOutput, unet_segmenter

from .common import WEIGHTS_DIR, TrainLog, save_checkpoint, seed_everything
from .loop import fit
from .metrics import ConfusionMatrix

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TEST_SEED = shapesworld.SPLITS["test"].start


def scene_batch(seeds: range, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised images (B,3,H,W) and class targets (B,H,W) for the given scene seeds."""
    scenes = [shapesworld.generate(s, size) for s in seeds]
    images = torch.from_numpy(np.stack([s.image for s in scenes])).permute(0, 3, 1, 2).float() / 255
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    targets = torch.from_numpy(np.stack([s.semantic for s in scenes])).long()
    return (images - mean) / std, targets


def soft_dice_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    probs = logits.softmax(1)
    onehot = F.one_hot(targets, logits.shape[1]).permute(0, 3, 1, 2).float()
    inter = (probs * onehot).sum((0, 2, 3))
    total = probs.sum((0, 2, 3)) + onehot.sum((0, 2, 3))
    return 1 - ((2 * inter + 1) / (total + 1)).mean()


def segmentation_loss(model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    """Cross-entropy plus soft Dice of ``model`` on (images, targets), and the cross-entropy alone to report."""
    images, targets = batch
    loss, ce = segmentation_criterion(model(images), targets)
    return loss, {"ce": ce.item()}


def segmentation_criterion(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The training loss (cross-entropy plus soft Dice) of ``logits`` against ``targets``, and its cross-entropy part."""
    ce = F.cross_entropy(logits, targets)
    return ce + soft_dice_loss(logits, targets), ce


def evaluate(segmenter: Callable[[Image.Image], SegmentationOutput], seed: int = TEST_SEED, count: int = 500, size: int = 128) -> dict:
    """Dataset-level IoU of a segmenter (the app's own wrapper) on ShapesWorld scenes ``seed..seed+count-1``."""
    confusion = ConfusionMatrix(len(shapesworld.CLASSES))
    for s in range(seed, seed + count):
        scene = shapesworld.generate(s, size)
        confusion.update(scene.semantic, segmenter(Image.fromarray(scene.image)).labels)
    iou = confusion.iou()
    return {
        "mean_iou": round(confusion.mean_iou(), 4),
        "pixel_accuracy": round(confusion.pixel_accuracy(), 4),
        "iou_per_class": {c: round(float(v), 4) for c, v in zip(shapesworld.CLASSES, iou)},
        "eval_seeds": f"{seed}..{seed + count - 1}",
        "eval_count": count,
    }


def train(
    steps: int = 2800,
    batch: int = 16,
    lr: float = 4e-3,
    size: int = 128,
    seed: int = 0,
    name: str = "unet-shapes",
    out: Path = WEIGHTS_DIR,
    eval_count: int = 500,
    device: str = "cpu",
) -> dict:
    seed_everything(seed)
    config = UNetConfig(num_classes=len(shapesworld.CLASSES))
    model = UNet(config).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    log = TrainLog()
    first = shapesworld.SPLITS["train"].start + seed * steps * batch
    fit(
        model, opt, lambda step: scene_batch(range(first + (step - 1) * batch, first + step * batch), size), segmentation_loss, steps,
        scheduler=sched, callbacks=[lambda done: log.step(done.number, steps, loss=done.loss, **done.values)], device=device,
    )
    train_seconds = log.elapsed
    metrics = evaluate(unet_segmenter(model.eval(), list(shapesworld.CLASSES), IMAGENET_MEAN, IMAGENET_STD), count=eval_count, size=size)
    print(f"test mean IoU {metrics['mean_iou']:.4f} {metrics['iou_per_class']}", flush=True)
    card = {
        "architecture": "models.nets.unet.UNet",
        "config": config.to_dict(),
        "classes": list(shapesworld.CLASSES),
        "preprocessing": {"mean": IMAGENET_MEAN, "std": IMAGENET_STD, "native_size": size},
        "seed": seed,
        "train": {"steps": steps, "batch": batch, "lr": lr, "scenes_seen": steps * batch, "first_seed": first},
        "train_seconds": round(train_seconds, 1),
        "metrics": metrics,
        "trained_at": time.strftime("%Y-%m-%d"),
    }
    save_checkpoint(model, name, card, out)
    return card
