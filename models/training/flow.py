"""Train and evaluate the local RAFT on ShapesWorld frame pairs.

    python -m models train raft-flow-shapes              # ~12 min on one CPU thread
    python -m models evaluate raft-flow-shapes --seed 2000000 --count 500 --json

A pair is frames t and t + 1 of clip ``seed`` (t = seed mod 15) with its exact flow, drawn on the fly
from the train split's seeds, so the model never sees a test clip. The loss is RAFT's: the L1 error
of the flow after every update of the recurrent unit, later updates weighted more (gamma 0.8), over
every pixel (occluded ones too: their flow is defined, as the object's own motion).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

import shapesworld
from models.flow import FlowEstimator, FlowField, LocalRaftConfig, epe
from shapesworld import clips

from .common import WEIGHTS_DIR, TrainLog, save_checkpoint, seed_everything
from .loop import fit

TEST_SEED = shapesworld.SPLITS["test"].start
CONFIG = LocalRaftConfig()
TRAIN_UPDATES = 4  # updates unrolled in training; inference runs EVAL_UPDATES (the unit is recurrent, so more refine further)
EVAL_UPDATES = 8
GAMMA = 0.8


def pair_of(seed: int, size: int = clips.SIZE) -> tuple[np.ndarray, np.ndarray, clips.Flow]:
    """Frames t and t + 1 of clip ``seed`` (t = seed mod the clip's pair count) and their flow: the data's one sampling rule."""
    return clips.plan(seed, size).pair(seed % (clips.FRAMES - 1))


def pair_batch(seeds: range, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """uint8 first and second frames (B,3,H,W) and their flows (B,2,H,W)."""
    pairs = [pair_of(s, size) for s in seeds]
    first, second = (torch.from_numpy(np.stack([p[i] for p in pairs])).permute(0, 3, 1, 2) for i in (0, 1))
    return first, second, torch.from_numpy(np.stack([p[2].flow for p in pairs])).permute(0, 3, 1, 2)


def sequence_loss(predictions: list[torch.Tensor], truth: torch.Tensor) -> torch.Tensor:
    """RAFT's loss: the mean L1 error after each update, the i-th of n weighted GAMMA ** (n - 1 - i)."""
    n = len(predictions)
    return sum(GAMMA ** (n - 1 - i) * (p - truth).abs().mean() for i, p in enumerate(predictions))


def raft_loss(model: FlowEstimator, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, dict[str, float]]:
    """``fit``'s loss: torchvision's transforms on both frames, the network unrolled TRAIN_UPDATES times, ``sequence_loss``."""
    first, second, truth = batch
    one, two = model.transforms(first, second)
    predictions = model.network(one, two, num_flow_updates=TRAIN_UPDATES)
    with torch.no_grad():
        last = (predictions[-1] - truth).norm(dim=1).mean().item()
    return sequence_loss(predictions, truth), {"epe": last}


def evaluate(estimator: Callable[[Image.Image, Image.Image], FlowField], seed: int = TEST_SEED, count: int = 500, size: int = clips.SIZE) -> dict:
    """Mean end-point error over ``count`` unseen pairs (clips ``seed..seed+count-1``), beside the zero-flow baseline's.

    ``epe_px`` counts every pixel; ``epe_visible_px`` only those still visible in the second frame.
    """
    totals = {"epe_px": 0.0, "epe_zero_px": 0.0, "epe_visible_px": 0.0}
    for s in range(seed, seed + count):
        first, second, truth = pair_of(s, size)
        flow = estimator(Image.fromarray(first), Image.fromarray(second)).flow
        totals["epe_px"] += epe(flow, truth.flow)
        totals["epe_zero_px"] += epe(np.zeros_like(truth.flow), truth.flow)
        totals["epe_visible_px"] += epe(flow, truth.flow, ~truth.occluded) if (~truth.occluded).any() else 0.0
    means = {key: round(value / count, 4) for key, value in totals.items()}
    means["epe_over_zero"] = round(means["epe_px"] / means["epe_zero_px"], 4)
    return {**means, "eval_seeds": f"{seed}..{seed + count - 1}", "eval_count": count}


def train(
    steps: int = 800,
    batch: int = 4,
    lr: float = 4e-4,
    size: int = clips.SIZE,
    seed: int = 0,
    name: str = "raft-flow-shapes",
    out: Path = WEIGHTS_DIR,
    eval_count: int = 500,
    device: str = "cpu",
) -> dict:
    seed_everything(seed)
    network = CONFIG.build()
    with torch.no_grad():  # the first updates add nothing: random large flows at the start drove earlier runs to predict no motion
        network.update_block.flow_head.conv2.weight.zero_()
        network.update_block.flow_head.conv2.bias.zero_()
    model = FlowEstimator(network, name, EVAL_UPDATES, max_side=size).to(device)
    opt = torch.optim.AdamW(model.network.parameters(), lr=lr, weight_decay=1e-5)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.05, anneal_strategy="linear")
    parameters = list(model.network.parameters())

    def clip_gradients(*_) -> None:  # RAFT clips the gradients' norm to 1 before each step; ``fit`` steps, so a hook does it
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)

    opt.register_step_pre_hook(clip_gradients)
    log = TrainLog()
    first = shapesworld.SPLITS["train"].start + seed * steps * batch
    fit(
        model, opt, lambda step: pair_batch(range(first + (step - 1) * batch, first + step * batch), size), raft_loss, steps,
        scheduler=sched, callbacks=[lambda done: log.step(done.number, steps, loss=done.loss, **done.values)], device=device,
    )
    train_seconds = log.elapsed
    metrics = evaluate(model.eval(), count=eval_count, size=size)
    print(f"test epe {metrics['epe_px']:.4f} px, zero-flow {metrics['epe_zero_px']:.4f} px", flush=True)
    card = {
        "architecture": "torchvision.models.optical_flow.RAFT (models.flow.LocalRaftConfig)",
        "config": CONFIG.to_dict(),
        "output": "flow from frame 1 to frame 2, (dx, dy) in px",
        "preprocessing": {"transforms": "Raft_Large_Weights.transforms(): (x / 255 - 0.5) / 0.5", "native_size": size, "max_side": size,
                          "updates": EVAL_UPDATES, "train_updates": TRAIN_UPDATES},
        "seed": seed,
        "train": {"steps": steps, "batch": batch, "lr": lr, "pairs_seen": steps * batch, "first_seed": first, "gamma": GAMMA},
        "train_seconds": round(train_seconds, 1),
        "metrics": metrics,
        "trained_at": time.strftime("%Y-%m-%d"),
    }
    save_checkpoint(model.network, name, card, out, half=True)
    return card
