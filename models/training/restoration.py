"""Train and evaluate the local restoration network on degraded ShapesWorld scenes.

    python -m models train restore-shapes            # ~20 min on 1 CPU thread
    python -m models evaluate restore-shapes --seed 2000000 --count 500 --json

The clean target is the scene rendered without pixel noise (``generate(seed, noise=0)``): the
default scenes carry noise no restorer could know. Each scene is degraded by
``shapesworld.degrade.draw(seed)`` (blur, noise, JPEG at levels from the seed), so every training
pair is exact and every test pair is reproducible. Training takes random 64x64 crops, two per
scene, generated on the fly from the train split's seeds; the loss is the mean squared error,
which is what PSNR measures (L1 trained far more slowly to leave the identity on these small
residuals in short trials).
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
from models.nets.restoration import RestorationNet, RestorationNetConfig
from models.restoration import RestorationOutput, local_restorer, scores, to_size

from .common import WEIGHTS_DIR, TrainLog, save_checkpoint, seed_everything

TEST_SEED = shapesworld.SPLITS["test"].start
CROP = 64
CROPS_PER_SCENE = 2


def clean_and_degraded(seed: int, size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Scene ``seed`` without pixel noise, and the same image degraded by ``degrade.draw(seed)``."""
    clean = shapesworld.generate(seed, size, noise=0.0).image
    degraded, _ = shapesworld.degrade.degraded_pair(clean, seed)
    return clean, degraded


def crop_batch(seeds: range, rng: np.random.Generator, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Degraded and clean crops (B, 3, CROP, CROP) in [0, 1], ``CROPS_PER_SCENE`` from each scene."""
    inputs, targets = [], []
    for seed in seeds:
        clean, degraded = clean_and_degraded(seed, size)
        for _ in range(CROPS_PER_SCENE):
            y, x = rng.integers(0, size - CROP + 1, size=2)
            inputs.append(degraded[y : y + CROP, x : x + CROP])
            targets.append(clean[y : y + CROP, x : x + CROP])
    as_tensor = lambda images: torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255  # noqa: E731
    return as_tensor(inputs), as_tensor(targets)


def evaluate(restorer: Callable[[Image.Image], RestorationOutput], seed: int = TEST_SEED, count: int = 500, size: int = 128) -> dict:
    """PSNR and SSIM (torchmetrics, per image, averaged) of the degraded input and the restored output on scenes ``seed..``.

    A super-resolving model's output is resized back to the scene's size first (antialiased bicubic).
    """
    before, after = [], []
    for s in range(seed, seed + count):
        clean, degraded = clean_and_degraded(s, size)
        restored = to_size(restorer(Image.fromarray(degraded)).restored, (size, size))
        before.append(scores(degraded, clean))
        after.append(scores(restored, clean))
    mean = lambda values: round(float(np.mean(values)), 4)  # noqa: E731
    psnr_in, psnr_out = mean([x.psnr for x in before]), mean([x.psnr for x in after])
    return {
        "psnr_gain_db": round(psnr_out - psnr_in, 4),
        "ssim": mean([x.ssim for x in after]),
        "psnr_db": psnr_out,
        "degraded_psnr_db": psnr_in,
        "degraded_ssim": mean([x.ssim for x in before]),
        "eval_seeds": f"{seed}..{seed + count - 1}",
        "eval_count": count,
    }


def train(
    steps: int = 2600,
    batch_scenes: int = 8,
    lr: float = 1e-3,
    size: int = 128,
    seed: int = 0,
    name: str = "restore-shapes",
    out: Path = WEIGHTS_DIR,
    eval_count: int = 500,
    device: str = "cpu",
) -> dict:
    seed_everything(seed)
    config = RestorationNetConfig()
    model = RestorationNet(config).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.05)
    rng = np.random.default_rng(seed)
    log = TrainLog()
    first = shapesworld.SPLITS["train"].start + seed * steps * batch_scenes
    model.train()
    for step in range(1, steps + 1):
        inputs, targets = crop_batch(range(first + (step - 1) * batch_scenes, first + step * batch_scenes), rng, size)
        inputs, targets = inputs.to(device), targets.to(device)
        loss = F.mse_loss(model(inputs), targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        log.step(step, steps, mse=loss.item(), input_mse=F.mse_loss(inputs, targets).item())
    train_seconds = log.elapsed
    metrics = evaluate(local_restorer(model.eval()), count=eval_count, size=size)
    print(f"test PSNR gain {metrics['psnr_gain_db']:.2f} dB, SSIM {metrics['ssim']:.4f} {metrics}", flush=True)
    card = {
        "architecture": "models.nets.restoration.RestorationNet",
        "config": config.to_dict(),
        "preprocessing": {"range": [0, 1], "pad_multiple": model.downsampling, "native_size": size},
        "degradations": {"levels": shapesworld.degrade.LEVELS, "blur_chances": dict(zip(shapesworld.degrade.BLURS, shapesworld.degrade.BLUR_CHANCES)),
                         "jpeg_chance": shapesworld.degrade.JPEG_CHANCE},
        "seed": seed,
        "train": {"steps": steps, "batch_scenes": batch_scenes, "crops": f"{CROPS_PER_SCENE} x {CROP}px per scene", "lr": lr,
                  "scenes_seen": steps * batch_scenes, "first_seed": first, "loss": "MSE"},
        "train_seconds": round(train_seconds, 1),
        "metrics": metrics,
        "trained_at": time.strftime("%Y-%m-%d"),
    }
    save_checkpoint(model, name, card, out, half=True)
    return card
