"""The one training loop: a step is a batch, a forward pass, a loss, a backward pass and an optimiser step.

The shipped trainers and the runs a student starts in the page (``models/training/train_yourself.py``)
go through ``fit``; what differs between them is said by callbacks, called after every step:
printing progress to a log, scoring on validation scenes, streaming snapshots to the page, and
stopping (a time budget, a Stop button, a loss that has diverged). A callback stops the run by
returning True, so the loop itself never reads a clock or a flag.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

Batch = tuple[torch.Tensor, ...]


@dataclass
class Step:
    """What a callback sees after a step: its number (from 1), the loss, and any other values the loss reported."""

    number: int
    loss: float
    values: dict[str, float] = field(default_factory=dict)


Callback = Callable[[Step], "bool | None"]
"""Called after each step; True stops the run after that step."""

LossFn = Callable[[nn.Module, Batch], "tuple[torch.Tensor, dict[str, float]]"]
"""(model, batch) -> (the loss to minimise, extra values to report, e.g. its cross-entropy part)."""


def fit(
    model: nn.Module,
    optimiser: torch.optim.Optimizer,
    batch: Callable[[int], Batch],
    loss_fn: LossFn,
    steps: int | None,
    *,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    callbacks: Sequence[Callback] = (),
    device: str | torch.device = "cpu",
) -> int:
    """Train ``model`` on ``batch(step)`` for ``steps`` steps, or until a callback stops it when ``steps`` is None.

    ``batch(step)`` builds step ``step``'s batch (from 1), so a run is a pure function of its seed:
    the same steps see the same data whatever happened before. Returns the number of steps done.
    """
    model.train()
    number = 0
    while steps is None or number < steps:
        number += 1
        tensors = tuple(t.to(device) for t in batch(number))
        loss, values = loss_fn(model, tensors)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        if scheduler is not None:
            scheduler.step()
        step = Step(number, loss.item(), values)
        if any([callback(step) for callback in callbacks]):  # a list: every callback sees the last step
            break
    return number
