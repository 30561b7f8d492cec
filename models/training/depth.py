"""Train and evaluate the local depth U-Net on ShapesWorld.

    python -m models train unet-depth-shapes             # ~20 min on one CPU thread
    python -m models evaluate unet-depth-shapes --seed 2000000 --count 500 --json

Scenes come on the fly from the train split's seeds, so the model never sees a test scene. The
network regresses log-depth with an L1 loss (an error of a given *ratio* costs the same near and
far, which is what abs_rel and delta1 measure) plus an L1 loss on the log-depth's x and y
differences, which keeps the cards' edges sharp where one object stands in front of another.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

import shapesworld
from models.depth import MEAN, STD, DepthMap, LocalDepth
from models.depth_metrics import score
from models.nets.unet import UNet, UNetConfig

from .common import WEIGHTS_DIR, TrainLog, save_checkpoint, seed_everything
from .loop import fit

TEST_SEED = shapesworld.SPLITS["test"].start
CONFIG = UNetConfig(num_classes=1, widths=(16, 32, 64, 128), coords=True)


def scene_batch(seeds: range, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images (B,3,H,W) and log-depth targets (B,1,H,W) of the given scenes."""
    scenes = [shapesworld.generate(s, size) for s in seeds]
    images = torch.from_numpy(np.stack([s.image for s in scenes])).permute(0, 3, 1, 2)
    log_depth = torch.from_numpy(np.log(np.stack([s.depth for s in scenes])))[:, None]
    return images, log_depth


def depth_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 on log-depth plus L1 on its horizontal and vertical differences."""
    def grads(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]

    (px, py), (tx, ty) = grads(predicted), grads(target)
    return (predicted - target).abs().mean() + (px - tx).abs().mean() + (py - ty).abs().mean()


def local_depth_loss(model: LocalDepth, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    """``fit``'s loss: the wrapper's normalisation, the network, ``depth_loss`` against the log-depth targets."""
    images, target = batch
    return depth_loss(model.network(model.normalise(images)), target), {}


def evaluate(estimator: Callable[[Image.Image], DepthMap], seed: int = TEST_SEED, count: int = 500, size: int = 128) -> dict:
    """Mean per-scene abs_rel and delta1 on ShapesWorld scenes ``seed..seed+count-1``, as given and after alignment.

    ``delta1`` and ``abs_rel`` score the map as the model gives it (read as depth); the ``aligned_``
    pair after the least-squares scale and shift, the only fair score for a relative model.
    """
    totals: dict[str, float] = {}
    for s in range(seed, seed + count):
        scene = shapesworld.generate(s, size)
        output = estimator(Image.fromarray(scene.image))
        for key, value in score(output.values, output.kind, scene.depth).as_dict().items():
            totals[key] = totals.get(key, 0.0) + value
    means = {key: round(value / count, 4) for key, value in totals.items() if key not in ("scale", "shift")}
    return {**means, "eval_seeds": f"{seed}..{seed + count - 1}", "eval_count": count}


def train(
    steps: int = 1400,
    batch: int = 12,
    lr: float = 3e-3,
    size: int = 128,
    seed: int = 0,
    name: str = "unet-depth-shapes",
    out: Path = WEIGHTS_DIR,
    eval_count: int = 500,
    device: str = "cpu",
) -> dict:
    seed_everything(seed)
    network = UNet(CONFIG)
    with torch.no_grad():  # start at the scenes' typical log-depth, not at depth 1
        network.head.bias.fill_(float(np.log(5.0)))
    model = LocalDepth(network, name, size, MEAN, STD).to(device)
    opt = torch.optim.AdamW(network.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    log = TrainLog()
    first = shapesworld.SPLITS["train"].start + seed * steps * batch
    fit(
        model, opt, lambda step: scene_batch(range(first + (step - 1) * batch, first + step * batch), size), local_depth_loss, steps,
        scheduler=sched, callbacks=[lambda done: log.step(done.number, steps, loss=done.loss)], device=device,
    )
    train_seconds = log.elapsed
    metrics = evaluate(model.eval(), count=eval_count, size=size)
    print(f"test delta1 {metrics['delta1']:.4f} abs_rel {metrics['abs_rel']:.4f}", flush=True)
    card = {
        "architecture": "models.nets.unet.UNet",
        "config": CONFIG.to_dict(),
        "output": "log-depth (ShapesWorld units); the app shows exp of it",
        "preprocessing": {"mean": MEAN, "std": STD, "native_size": size},
        "seed": seed,
        "train": {"steps": steps, "batch": batch, "lr": lr, "scenes_seen": steps * batch, "first_seed": first},
        "train_seconds": round(train_seconds, 1),
        "metrics": metrics,
        "trained_at": time.strftime("%Y-%m-%d"),
    }
    save_checkpoint(network, name, card, out, half=True)
    return card
