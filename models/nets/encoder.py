"""The small image encoder both self-supervised local models share, so comparing them compares the pretext tasks.

It is the detectors' backbone (``models.nets.detection.ConvBackbone``: a stem and three stages of
3x3 convolutions with batch norm, each halving the resolution) followed by global average
pooling: a 64x64 object becomes one 128-d feature vector. Only the head on top differs per
pretext task, and it is thrown away after training: retrieval and linear probes use the pooled
backbone features, as the lecture's "attach a shallow network to frozen features" does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from .detection import ConvBackbone


@dataclass(frozen=True)
class EncoderConfig:
    widths: tuple[int, ...] = (16, 32, 64, 128)
    head: str = "none"  # "rotation": 4-way classifier; "projection": SimCLR's MLP into the contrastive space
    projection_dim: int = 64

    @property
    def feature_dim(self) -> int:
        return self.widths[-1]

    def to_dict(self) -> dict:
        return {**asdict(self), "widths": list(self.widths)}

    @classmethod
    def from_dict(cls, d: dict) -> "EncoderConfig":
        return cls(**{**d, "widths": tuple(d["widths"])})


class Encoder(nn.Module):
    """``features(x)``: the pooled backbone features (what retrieval uses); ``forward(x)``: the pretext head's output."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = ConvBackbone(config.widths)
        d = config.feature_dim
        if config.head == "rotation":
            self.head: nn.Module = nn.Linear(d, 4)
        elif config.head == "projection":
            self.head = nn.Sequential(nn.Linear(d, d), nn.ReLU(inplace=True), nn.Linear(d, config.projection_dim))
        else:
            self.head = nn.Identity()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
