"""ShapesWorld generation speed, and the U-Net's training throughput.

Training generates scenes on the fly, so scenes per second must stay far above what a training
step consumes. The s/step figure, times the shipped card's step count, projects how long
`python -m models train unet-shapes` takes on this machine (the issue asks for <= 30 min).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

import shapesworld
from models.nets.unet import UNet, UNetConfig
from models.sources import LocalWeights
from models.training.segmentation import scene_batch, soft_dice_loss

from .stats import Samples, repeat

SIZES = (64, 128, 256)


@dataclass
class DataResult:
    scenes_per_second: dict[int, float] = field(default_factory=dict)  # image side -> scenes/s
    train_step: Samples = field(default_factory=Samples)  # seconds per step (batch 16, 128x128)
    batch: int = 16
    card_steps: int | None = None

    @property
    def projected_train_s(self) -> float | None:
        p50 = self.train_step.p50
        return p50 * self.card_steps if p50 is not None and self.card_steps else None

    def to_dict(self) -> dict:
        return {
            "scenes_per_second": self.scenes_per_second, "train_step": self.train_step.summary(),
            "batch": self.batch, "card_steps": self.card_steps, "projected_train_s": self.projected_train_s,
        }


def measure(scenes: int = 200, steps: int = 12) -> DataResult:
    result = DataResult()
    for size in SIZES:
        samples = repeat(lambda i, size=size: shapesworld.generate(i, size), scenes, warmup=5)
        result.scenes_per_second[size] = samples.n / sum(samples.seconds)
    card = LocalWeights("unet-shapes").card()
    result.card_steps = card.get("train", {}).get("steps")
    config = UNetConfig.from_dict(card["config"]) if "config" in card else UNetConfig()
    model = UNet(config).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step(i: int) -> None:  # exactly the trainer's step: generate, forward, loss, backward, update
        images, targets = scene_batch(range(i * result.batch, (i + 1) * result.batch), 128)
        logits = model(images)
        loss = F.cross_entropy(logits, targets) + soft_dice_loss(logits, targets)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    result.train_step = repeat(step, steps, warmup=3)
    return result


if __name__ == "__main__":
    print(json.dumps(measure().to_dict(), indent=2))
