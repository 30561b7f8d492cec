"""A small U-Net (Ronneberger et al., 2015) for semantic segmentation.

Read it top to bottom: an encoder that halves the resolution and doubles the channels at each
level, a decoder that upsamples with *transposed convolutions* (the operator the app's
upsampling panel lets you play with) and concatenates the encoder's map of the same size (the
skip connection), so fine detail lost by pooling comes back for the boundaries.

With ``coords`` the input also gets two coordinate channels (CoordConv, Liu et al., 2018): where a
pixel is in the image, which padded convolutions only sense near the borders. Depth on a receding
ground plane is mostly a function of the row, so the depth U-Net uses them; segmentation does not.

Three switches let a student take it apart in the Train tab (the defaults are the shipped
model's): ``batch_norm`` off (convolutions with a bias instead), ``skips`` off (the decoder sees
only the upsampled coarse map), and ``dropout`` (channel dropout after each block).
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class UNetConfig:
    in_channels: int = 3
    num_classes: int = 7
    widths: tuple[int, ...] = (16, 32, 64, 128)  # channels per level; len(widths)-1 poolings
    batch_norm: bool = True
    skips: bool = True  # the decoder concatenates the encoder's map of the same size
    dropout: float = 0.0  # channel dropout (Dropout2d) after each block while training
    coords: bool = False  # append x and y in [-1, 1] to the input channels

    def to_dict(self) -> dict:
        return {**asdict(self), "widths": list(self.widths)}

    @classmethod
    def from_dict(cls, d: dict) -> "UNetConfig":
        return cls(**{**d, "widths": tuple(d["widths"])})


def double_conv(cin: int, cout: int, batch_norm: bool = True, dropout: float = 0.0) -> nn.Sequential:
    """Two 3x3 convolutions with batch norm and ReLU: the U-Net's basic block.

    Without batch norm each convolution keeps its bias (batch norm's shift replaced it); dropout
    comes last, so the default block's layers keep the indices the shipped weights name.
    """
    layers: list[nn.Module] = []
    for c_in in (cin, cout):
        layers.append(nn.Conv2d(c_in, cout, 3, padding=1, bias=not batch_norm))
        layers.extend([nn.BatchNorm2d(cout)] if batch_norm else [])
        layers.append(nn.ReLU(inplace=True))
    layers.extend([nn.Dropout2d(dropout)] if dropout > 0 else [])
    return nn.Sequential(*layers)


def coordinate_channels(x: torch.Tensor) -> torch.Tensor:
    """(B, 2, H, W): each pixel's x and y, from -1 (left, top) to 1 (right, bottom), like ``x``'s dtype and device."""
    b, _, h, w = x.shape
    ys = torch.linspace(-1, 1, h, device=x.device, dtype=x.dtype).view(1, 1, h, 1).expand(b, 1, h, w)
    xs = torch.linspace(-1, 1, w, device=x.device, dtype=x.dtype).view(1, 1, 1, w).expand(b, 1, h, w)
    return torch.cat([xs, ys], dim=1)


class UNet(nn.Module):
    def __init__(self, config: UNetConfig = UNetConfig()) -> None:
        super().__init__()
        self.config = config
        w = config.widths
        block = functools.partial(double_conv, batch_norm=config.batch_norm, dropout=config.dropout)
        self.encoders = nn.ModuleList([block(config.in_channels + 2 * config.coords, w[0])])
        self.encoders.extend(block(w[i], w[i + 1]) for i in range(len(w) - 1))
        self.pool = nn.MaxPool2d(2)
        # Decoder level i goes from w[i+1] channels back to w[i]: upsample x2, concat skip, convolve.
        self.upsamplers = nn.ModuleList(nn.ConvTranspose2d(w[i + 1], w[i], 2, stride=2) for i in reversed(range(len(w) - 1)))
        joined = 2 if config.skips else 1  # with skips, the decoder sees its own channels twice
        self.decoders = nn.ModuleList(block(joined * w[i], w[i]) for i in reversed(range(len(w) - 1)))
        self.head = nn.Conv2d(w[0], config.num_classes, 1)

    @property
    def downsampling(self) -> int:
        """Input sides must be a multiple of this (callers pad)."""
        return 2 ** (len(self.config.widths) - 1)

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Logits plus every encoder and decoder feature map, by name, for looking inside."""
        features: dict[str, torch.Tensor] = {}
        skips = []
        if self.config.coords:
            x = torch.cat([x, coordinate_channels(x)], dim=1)
        for level, encoder in enumerate(self.encoders):
            if level > 0:
                x = self.pool(x)
            x = encoder(x)
            features[f"encoder {level + 1} ({x.shape[1]} ch, 1/{2 ** level})"] = x
            skips.append(x)
        skips.pop()  # the bottleneck is not a skip
        for level, (up, decoder) in enumerate(zip(self.upsamplers, self.decoders)):
            skip = skips.pop()
            x = decoder(torch.cat([up(x), skip], dim=1) if self.config.skips else up(x))
            scale = 2 ** (len(self.decoders) - level - 1)
            features[f"decoder {level + 1} ({x.shape[1]} ch, 1/{scale})"] = x
        return self.head(x), features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_features(x)[0]
