"""A small U-Net (Ronneberger et al., 2015) for semantic segmentation.

Read it top to bottom: an encoder that halves the resolution and doubles the channels at each
level, a decoder that upsamples with *transposed convolutions* (the operator the app's
upsampling panel lets you play with) and concatenates the encoder's map of the same size (the
skip connection), so fine detail lost by pooling comes back for the boundaries.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class UNetConfig:
    in_channels: int = 3
    num_classes: int = 7
    widths: tuple[int, ...] = (16, 32, 64, 128)  # channels per level; len(widths)-1 poolings

    def to_dict(self) -> dict:
        return {**asdict(self), "widths": list(self.widths)}

    @classmethod
    def from_dict(cls, d: dict) -> "UNetConfig":
        return cls(**{**d, "widths": tuple(d["widths"])})


def double_conv(cin: int, cout: int) -> nn.Sequential:
    """Two 3x3 convolutions with batch norm and ReLU: the U-Net's basic block."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    def __init__(self, config: UNetConfig = UNetConfig()) -> None:
        super().__init__()
        self.config = config
        w = config.widths
        self.encoders = nn.ModuleList([double_conv(config.in_channels, w[0])])
        self.encoders.extend(double_conv(w[i], w[i + 1]) for i in range(len(w) - 1))
        self.pool = nn.MaxPool2d(2)
        # Decoder level i goes from w[i+1] channels back to w[i]: upsample x2, concat skip, convolve.
        self.upsamplers = nn.ModuleList(nn.ConvTranspose2d(w[i + 1], w[i], 2, stride=2) for i in reversed(range(len(w) - 1)))
        self.decoders = nn.ModuleList(double_conv(2 * w[i], w[i]) for i in reversed(range(len(w) - 1)))
        self.head = nn.Conv2d(w[0], config.num_classes, 1)

    @property
    def downsampling(self) -> int:
        """Input sides must be a multiple of this (callers pad)."""
        return 2 ** (len(self.config.widths) - 1)

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Logits plus every encoder and decoder feature map, by name, for looking inside."""
        features: dict[str, torch.Tensor] = {}
        skips = []
        for level, encoder in enumerate(self.encoders):
            if level > 0:
                x = self.pool(x)
            x = encoder(x)
            features[f"encoder {level + 1} ({x.shape[1]} ch, 1/{2 ** level})"] = x
            skips.append(x)
        skips.pop()  # the bottleneck is not a skip
        for level, (up, decoder) in enumerate(zip(self.upsamplers, self.decoders)):
            x = decoder(torch.cat([up(x), skips.pop()], dim=1))
            scale = 2 ** (len(self.decoders) - level - 1)
            features[f"decoder {level + 1} ({x.shape[1]} ch, 1/{scale})"] = x
        return self.head(x), features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_features(x)[0]
