"""What a student chose in the Train tab, checked before anything starts, and how a run is named in a plot.

It sits apart from the runner (``models/train_yourself.py``) because the run itself
(``models/training/train_yourself.py``, in its own process) reads it too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

MODELS = {"unet": "Segmentation U-Net", "classifier": "Classifier of single objects"}
OPTIMISERS = {"sgd": "SGD", "momentum": "SGD with momentum 0.9", "adam": "Adam", "adamw": "AdamW"}
METRIC = {"unet": "mIoU", "classifier": "accuracy"}
SIZE = 64  # the side of the scenes and objects a run trains on: small, so it learns visibly within a minute
BUDGET_S = (15, 120)
BATCH = (1, 64)
LEARNING_RATE = (1e-6, 10.0)
MAX_DROPOUT = 0.9


class BadRecipe(ValueError):
    """A setting out of range: the message says which and what is allowed; nothing was started."""


@dataclass(frozen=True)
class Recipe:
    """What a student chose. The defaults are the recipe that reaches the README's figures."""

    model: str = "unet"
    budget_s: float = 60
    lr: float = 4e-3
    batch: int = 8
    optimiser: str = "adamw"
    augment: bool = False
    batch_norm: bool = True
    dropout: float = 0.0
    skips: bool = True  # the U-Net's skip connections (a classifier has none)
    seed: int = 0

    def checked(self) -> "Recipe":
        """This recipe, or ``BadRecipe`` naming the first setting out of range."""
        if self.model not in MODELS:
            raise BadRecipe(f"Unknown model {self.model!r}: pick one of {', '.join(MODELS)}.")
        if self.optimiser not in OPTIMISERS:
            raise BadRecipe(f"Unknown optimiser {self.optimiser!r}: pick one of {', '.join(OPTIMISERS)}.")
        numbers = {"budget": self.budget_s, "learning rate": self.lr, "batch size": self.batch, "dropout": self.dropout, "seed": self.seed}
        for name, value in numbers.items():
            if value is None or not math.isfinite(float(value)):
                raise BadRecipe(f"The {name} must be a number; it is {value}.")
        if not BUDGET_S[0] <= self.budget_s <= BUDGET_S[1]:
            raise BadRecipe(f"The time budget must be {BUDGET_S[0]} to {BUDGET_S[1]} seconds; it is {self.budget_s:g}.")
        if self.batch != int(self.batch) or not BATCH[0] <= self.batch <= BATCH[1]:
            raise BadRecipe(f"The batch size must be a whole number from {BATCH[0]} to {BATCH[1]}; it is {self.batch:g}.")
        if not LEARNING_RATE[0] <= self.lr <= LEARNING_RATE[1]:
            raise BadRecipe(f"The learning rate must be from {LEARNING_RATE[0]:g} to {LEARNING_RATE[1]:g}; it is {self.lr:g}.")
        if not 0 <= self.dropout <= MAX_DROPOUT:
            raise BadRecipe(f"Dropout must be from 0 to {MAX_DROPOUT}; it is {self.dropout:g}.")
        if self.seed != int(self.seed) or not 0 <= self.seed < 2**31:
            raise BadRecipe(f"The seed must be a whole number from 0 to {2**31 - 1}; it is {self.seed:g}.")
        return replace(self, batch=int(self.batch), seed=int(self.seed), budget_s=float(self.budget_s), lr=float(self.lr))

    def changes(self) -> str:
        """What differs from the default recipe, in words for a plot's legend ("lr ×10 · no skip connections")."""
        base = Recipe(model=self.model)
        said = []
        for f in fields(self):
            value, default = getattr(self, f.name), getattr(base, f.name)
            if f.name == "model" or value == default or (f.name == "skips" and self.model != "unet"):
                continue
            said.append(_change(f.name, value, default))
        return " · ".join(said) or "default recipe"


def _change(name: str, value, default) -> str:
    if name == "lr":
        ratio = value / default
        return f"lr ×{ratio:.3g}" if ratio >= 1 else f"lr ÷{1 / ratio:.3g}"
    if isinstance(value, bool):
        words = {"augment": "augmentation", "batch_norm": "batch norm", "skips": "skip connections"}[name]
        return f"{'with' if value else 'no'} {words}"
    words = {"budget_s": "budget {:g} s", "batch": "batch {}", "optimiser": "{}", "dropout": "dropout {:g}", "seed": "seed {}"}[name]
    return words.format(OPTIMISERS[value] if name == "optimiser" else value)
