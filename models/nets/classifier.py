"""A small convolutional classifier of single objects, small enough to train in the page in under a minute.

Each stage is a 3x3 convolution, batch norm (optional), ReLU and a 2x2 max pool; global average
pooling then a linear layer give the class scores, with dropout (optional) before it: the
lecture's recipe for a CNN, with its regularisers as switches a student can turn off.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ClassifierConfig:
    num_classes: int = 5
    widths: tuple[int, ...] = (16, 32, 64, 128)  # four poolings: 64 px down to 4 (three learned far slower)
    batch_norm: bool = True
    dropout: float = 0.0  # before the last layer, while training

    def to_dict(self) -> dict:
        return {**asdict(self), "widths": list(self.widths)}

    @classmethod
    def from_dict(cls, d: dict) -> "ClassifierConfig":
        return cls(**{**d, "widths": tuple(d["widths"])})


class SmallCNN(nn.Module):
    def __init__(self, config: ClassifierConfig = ClassifierConfig()) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        channels = 3
        for width in config.widths:
            layers.append(nn.Conv2d(channels, width, 3, padding=1, bias=not config.batch_norm))
            layers.extend([nn.BatchNorm2d(width)] if config.batch_norm else [])
            layers.extend([nn.ReLU(inplace=True), nn.MaxPool2d(2)])
            channels = width
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(channels, config.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x).mean(dim=(2, 3))))
