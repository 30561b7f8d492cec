"""The local text-to-image model: diffusers' own ``UNet2DModel``, conditioned on a prompt embedding.

ShapesWorld's single-object prompts ("a large red triangle") name three things, so the prompt
encoder is three small embedding tables, one per attribute (size, colour, shape), summed into one
vector. The UNet takes that vector through its class embedding (``class_embed_type="identity"``):
it is added to the timestep embedding, as a class label would be, in every residual block.

Each table has one extra row, "unspecified". Training replaces attributes by it at random
(classifier-free guidance's condition dropout, one attribute at a time and all three together),
so one network is at once conditional, partly conditional ("a red shape") and unconditional (all
three unspecified), which is what classifier-free guidance extrapolates away from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from diffusers import UNet2DModel
from torch import nn

from shapesworld import COLOURS, SHAPES, SIZES

ATTRIBUTES: dict[str, tuple[str, ...]] = {"size": tuple(SIZES), "colour": tuple(COLOURS), "shape": SHAPES}
"""Each attribute's words, in embedding-row order; row ``len(words)`` is "unspecified"."""


@dataclass(frozen=True)
class ParsedPrompt:
    """What the local model understood of a prompt: one word (or None) per attribute, and the rest."""

    size: str | None
    colour: str | None
    shape: str | None
    ignored: tuple[str, ...]  # words the model has no embedding for

    @property
    def known(self) -> bool:
        return any(value is not None for value in (self.size, self.colour, self.shape))

    def rows(self) -> list[int]:
        """Embedding row per attribute: the word's index, or "unspecified"."""
        return [
            ATTRIBUTES[name].index(value) if value is not None else len(ATTRIBUTES[name])
            for name, value in (("size", self.size), ("colour", self.colour), ("shape", self.shape))
        ]

    def text(self) -> str:
        """The prompt as the model reads it ("a red star", "a shape")."""
        words = [w for w in (self.size, self.colour) if w] + [self.shape or "shape"]
        return f"a {' '.join(words)}"


FILLER = frozenset({"a", "an", "the", "one", "of", "photo", "picture", "image", "drawing", "shape", "on", "grey", "background"})
"""Words that say nothing the model could draw differently; not reported as ignored."""
SYNONYMS = {"big": "large", "little": "small", "tiny": "small", "gray": "grey", "violet": "purple", "circles": "circle"}


def parse_prompt(prompt: str) -> ParsedPrompt:
    """Find the size, colour and shape words in ``prompt``; the last one of each kind wins."""
    found: dict[str, str | None] = {name: None for name in ATTRIBUTES}
    ignored = []
    for word in re.findall(r"[^\W\d_]+", prompt.lower()):
        word = SYNONYMS.get(word, word)
        word = word[:-1] if word.endswith("s") and word[:-1] in SHAPES else word  # "stars" -> "star"
        kind = next((name for name, words in ATTRIBUTES.items() if word in words), None)
        if kind:
            found[kind] = word
        elif word not in FILLER:
            ignored.append(word)
    return ParsedPrompt(found["size"], found["colour"], found["shape"], tuple(ignored))


class PromptEncoder(nn.Module):
    """Sum of one learned vector per attribute (size, colour, shape), each with an "unspecified" row."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.tables = nn.ModuleDict({name: nn.Embedding(len(words) + 1, dim) for name, words in ATTRIBUTES.items()})

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        """``rows``: (B, 3) embedding rows (size, colour, shape) -> (B, dim)."""
        return sum(table(rows[:, i]) for i, table in enumerate(self.tables.values()))

    @staticmethod
    def unconditional_rows(batch: int) -> torch.Tensor:
        return torch.tensor([[len(words) for words in ATTRIBUTES.values()]] * batch)


def unet_config(image_size: int = 32, widths: tuple[int, ...] = (32, 64, 64)) -> dict:
    """A small ``UNet2DModel``: one residual block per level, self-attention only at the coarsest (8x8).

    Attention at 16x16 as well cost a third more time per step on a CPU (1.57 s against 1.21 s for a
    batch of 64 on one thread); at 8x8 every position already sees the whole object.
    """
    return {
        "sample_size": image_size,
        "in_channels": 3,
        "out_channels": 3,
        "layers_per_block": 1,
        "block_out_channels": list(widths),
        "down_block_types": ["DownBlock2D", "DownBlock2D", "AttnDownBlock2D"],
        "up_block_types": ["AttnUpBlock2D", "UpBlock2D", "UpBlock2D"],
        "attention_head_dim": 32,
        "norm_num_groups": 8,
        "class_embed_type": "identity",  # the prompt vector arrives as the "class label", already embedded
    }


class ShapesDiffusion(nn.Module):
    """UNet + prompt encoder: predicts the denoising target for noisy images and prompt rows."""

    def __init__(self, config: dict) -> None:
        super().__init__()
        self.unet = UNet2DModel(**config)
        self.prompts = PromptEncoder(self.unet.config.block_out_channels[0] * 4)  # the UNet's time-embedding width

    @property
    def image_size(self) -> int:
        return int(self.unet.config.sample_size)

    def forward(self, sample: torch.Tensor, timesteps: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return self.unet(sample, timesteps, class_labels=self.prompts(rows)).sample
