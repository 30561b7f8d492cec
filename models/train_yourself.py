"""Train it yourself: a student's recipe, checked, trained in its own process, streamed back step by step.

``train(recipe)`` yields a ``Progress`` after every few steps of a run of the project's own
training loop (``models/training/loop.py``, driven by ``models/training/train_yourself.py``), in
a child process with a hard limit on time, threads and memory, so the server's other tabs stay
responsive and a stop frees everything at once: the child is killed. One run at a time per server
(``settings.train_slots``); the others wait in line and see their position. With the ray backend
each run is a Ray task that declares its CPUs and memory, so a cluster runs many at once.

The trained network is written to a folder the caller names (a temporary one: never ``weights/``)
as safetensors with a JSON card; a U-Net also comes with its ``ModelSpec`` so a page can offer it
in the segmentation tab's picker (``registry.add_trained``).

This is the one inference-side module that imports training code (the structure test names it):
it starts the runs, which are training.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

import settings

from . import segmentation
from .recipe import METRIC, MODELS, BadRecipe, Recipe
from .spec import ModelSpec
from .training.runs import Line, ProcessRun, RayRun, Run

STALLED_BELOW = {"unet": 0.25, "classifier": 0.35}
"""A best validation score below this is "did not learn": background everywhere scores about 0.12 mIoU, a guess 0.2 accuracy."""
SHIPPED_REFERENCE = {"unet": "unet-shapes"}
"""The shipped model whose card's figure is the line to reach."""


@dataclass
class Trained:
    """A finished run's network: its files (safetensors and card) and, for a U-Net, the spec a picker can list."""

    name: str
    title: str
    weights: Path
    card: Path
    metric: float
    spec: ModelSpec | None


@dataclass
class Progress:
    """A run as the page shows it. ``status``: queued, starting, training, then done, stopped, diverged or failed."""

    recipe: Recipe
    status: str = "queued"
    position: int = 0  # runs ahead of this one in line
    elapsed: float = 0.0
    steps: int = 0
    train: list[tuple[int, float, float]] = field(default_factory=list)  # (step, seconds, loss)
    val: list[tuple[int, float, float, float]] = field(default_factory=list)  # (step, seconds, loss, metric)
    predictions: list[np.ndarray] = field(default_factory=list)  # the shown validation inputs' predicted classes
    shown_seeds: list[int] = field(default_factory=list)
    message: str = ""
    result: Trained | None = None

    @property
    def finished(self) -> bool:
        return self.status in ("done", "stopped", "diverged", "failed")

    @property
    def time_left(self) -> float:
        return max(0.0, self.recipe.budget_s - self.elapsed) if self.status == "training" else 0.0

    @property
    def metric(self) -> float | None:
        return self.val[-1][3] if self.val else None

    def verdict(self) -> str:
        """What happened, in plain words: it learned, it stalled, or it diverged."""
        name, steps = METRIC[self.recipe.model], self.steps
        if self.status == "failed":
            return f"The run failed: {self.message}"
        if self.status == "diverged":
            return (
                f"It diverged: the loss became infinite or NaN at step {steps}. The learning rate is too high for this "
                "recipe: every step overshoots. Try one ten times lower."
            )
        if not self.val:
            return "Stopped before the first validation."
        first, best, last = self.val[0][3], max(v[3] for v in self.val), self.val[-1][3]
        losses = [loss for _, _, loss in self.train]
        if best < STALLED_BELOW[self.recipe.model] and self.status == "stopped":
            return f"It had not learned much yet when it stopped, after {steps} steps ({self.elapsed:.0f} s): validation {name} {last:.2f}."
        if best < STALLED_BELOW[self.recipe.model]:
            rose = len(losses) > 20 and np.mean(losses[-10:]) > np.mean(losses[:10])
            advice = (
                "A learning rate this high makes every step overshoot: try one ten times lower."
                if self.recipe.lr > 10 * Recipe().lr
                else "Try a larger learning rate, another optimiser or a longer budget."
            )
            went_up = ", and the training loss went up" if rose else ""
            return f"It did not learn: validation {name} stayed at {last:.2f} (best {best:.2f}) in {steps} steps{went_up}. {advice}"
        stopped = " (stopped early)" if self.status == "stopped" else ""
        return f"It learned{stopped}: validation {name} went from {first:.2f} to {last:.2f} (best {best:.2f}) in {steps} steps, {self.elapsed:.0f} s."


def _runner(recipe: Recipe) -> Run:
    limits = dict(threads=settings.train_threads(), memory_mb=settings.train_memory_mb())
    return RayRun(recipe, **limits) if settings.backend() == "ray" else ProcessRun(recipe, **limits)


LINE = Line(settings.train_slots)
ACTIVE: dict[str, Run] = {}  # owner (a page session) -> its run, for the Stop button
STOP_GRACE_S = 1.5  # a stopped run hands back its model within this, or is killed
START_GRACE_S = 60.0  # spawning and importing torch, or a Ray worker's start
FINISH_GRACE_S = 15.0  # the final validation and the weights, after the budget


def stop(owner: str) -> bool:
    """Ask ``owner``'s run to stop (it keeps what it learned); a queued one leaves the line. False if it has none."""
    return LINE.cancel(owner) or (owner in ACTIVE and ACTIVE[owner].stop())


def train(recipe: Recipe, out: Path, owner: str | None = None, poll_s: float = 0.25) -> Iterator[Progress]:
    """Check ``recipe`` (``BadRecipe`` before anything starts), wait for a turn, train, write the result under ``out``.

    Yields the run's ``Progress`` every ``poll_s`` seconds while it waits and trains (and when it
    starts), and a last time when it is over (``result`` set where a network came out of it).
    """
    recipe = recipe.checked()
    owner = owner or uuid.uuid4().hex
    progress = Progress(recipe)
    with LINE.turn(owner) as turn:
        for position in turn:
            progress.position = position
            yield progress
        if turn.cancelled:
            progress.status, progress.message = "stopped", "Stopped while waiting in line."
            yield progress
            return
        yield from _supervise(_runner(recipe), progress, owner, out, poll_s)


def _supervise(run: Run, progress: Progress, owner: str, out: Path, poll_s: float) -> Iterator[Progress]:
    """Start ``run`` and fold its events into ``progress``; kill it on any way out (done, a deadline, the caller gone)."""
    progress.status = "starting"
    yield progress
    ACTIVE[owner] = run
    try:
        run.start()
        deadline = time.monotonic() + START_GRACE_S + progress.recipe.budget_s + FINISH_GRACE_S
        while not progress.finished:
            events, tick = [], time.monotonic() + poll_s
            while not progress.finished and (left := tick - time.monotonic()) > 0:
                for event in run.events(left):
                    _apply(event, progress, out)
                    events.append(event)
            if not progress.finished and run.stop_overdue(STOP_GRACE_S):
                progress.status = "stopped"  # killed: a stop frees the run's memory and thread within two seconds
            elif not progress.finished and (time.monotonic() > deadline or (not events and not run.alive())):
                progress.status = "failed"
                progress.message = "the training process ended without a result (out of memory, or past its time limit)."
            yield progress
    finally:
        ACTIVE.pop(owner, None)
        run.kill()


def _apply(event: dict, progress: Progress, out: Path) -> None:
    kind = event["kind"]
    if kind == "started":
        progress.status, progress.shown_seeds = "training", event["shown_seeds"]
    elif kind == "steps":
        progress.train.extend(event["points"])
        progress.steps, progress.elapsed = event["points"][-1][0], event["points"][-1][1]
    elif kind == "validation":
        progress.val.append((event["step"], event["elapsed"], event["loss"], event["metric"]))
        progress.predictions = event["predictions"]
    elif kind == "done":
        progress.status, progress.steps, progress.elapsed = event["reason"], event["steps"], event["elapsed"]
        progress.result = _save(event, progress, out) if event["weights"] else None
    elif kind == "error":
        progress.status, progress.message = "failed", event["message"]


def _save(event: dict, progress: Progress, out: Path) -> Trained:
    """Write the run's weights and card under ``out``; a U-Net also gets its spec for the segmentation picker."""
    recipe = progress.recipe
    name = f"my-{recipe.model}-{uuid.uuid4().hex[:8]}"
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / f"{name}.safetensors"
    weights.write_bytes(event["weights"])
    metric = progress.metric or 0.0
    key = {"unet": "mean_iou", "classifier": "accuracy"}[recipe.model]
    card = {
        "name": name, **event["card"], "metrics": {key: round(metric, 4)}, "recipe": asdict(recipe), "recipe_changes": recipe.changes(),
        "command": "trained in the page (Train tab)",
    }
    card_path = folder / f"{name}.json"
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    title = f"My {MODELS[recipe.model]} ({recipe.changes()}, {METRIC[recipe.model]} {metric:.2f})"
    spec = segmentation.trained_spec(name, title, folder) if recipe.model == "unet" else None
    return Trained(name, title, weights, card_path, metric, spec)


def shipped_reference(model: str, specs: Callable[[], dict[str, ModelSpec]]) -> tuple[str, float] | None:
    """(title, figure) of the shipped model a run of ``model`` is measured against, from its card; None where there is none."""
    name = SHIPPED_REFERENCE.get(model)
    spec = specs().get(name) if name else None
    value = spec.source.card().get("metrics", {}).get("mean_iou") if spec else None
    return (f"shipped U-Net: {value:.2f} (128 px, {spec.source.card().get('train_seconds', 0) / 60:.0f} min)", float(value)) if value else None


def specs() -> list[ModelSpec]:
    """The Train tab ships no model: every network it shows is trained in the page."""
    return []
