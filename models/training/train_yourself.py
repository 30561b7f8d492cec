"""One run of the Train tab: a student's recipe trained by the shared loop, reporting as it goes.

``run(recipe, send, should_stop)`` builds the recipe's network and data, trains it with
``loop.fit`` until its time budget is spent (or it is stopped, or its loss diverges) and calls
``send`` with plain events: ``started``, ``steps`` (the losses since the last), ``validation``
(loss, metric and the predictions on the shown scenes) every ``validation_every`` steps, and
``done`` with the weights (safetensors bytes) and a card. What a run does is a pure function of
its recipe: the batches are drawn from seeds, augmentation from a generator seeded per step, so
the same recipe on the same number of threads gives the same curve bit for bit.

``python -m models.training.train_yourself`` runs one in a process of its own, as
``models/training/runs.py`` starts it; Ray runs ``run`` as a task.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import resource
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save
from torch import nn

import shapesworld
from models.nets.classifier import ClassifierConfig, SmallCNN
from models.nets.unet import UNet, UNetConfig
from models.recipe import SIZE, Recipe

from .common import seed_everything
from .loop import Batch, Step, fit
from .metrics import ConfusionMatrix
from .segmentation import IMAGENET_MEAN, IMAGENET_STD, scene_batch, segmentation_criterion

UNET_WIDTHS = (8, 16, 32, 64)  # the smallest U-Net that learns visibly in a minute on one thread at 64 px
VALIDATION_FIRST = shapesworld.SPLITS["val"].start
VALIDATION_COUNT = 50  # unseen scenes (or objects) scored at every validation
SHOWN = 4  # of those, the first four are shown with their predictions
IMAGES_PER_VALIDATION = 160  # validate after about this many training images, whatever the batch size
SEND_EVERY_S = 0.25  # losses go out in bunches, not one message per step
Send = Callable[[dict], None]


@dataclass
class Problem:
    """What a run trains: its network, its batches, its loss and how it is scored on validation inputs."""

    network: nn.Module
    batch: Callable[[int], Batch]
    criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    validation: Batch
    metric: Callable[[torch.Tensor, torch.Tensor], float]
    shown: Callable[[torch.Tensor], list]


def validation_every(batch: int) -> int:
    return max(2, IMAGES_PER_VALIDATION // batch)


def augment(images: torch.Tensor, targets: torch.Tensor | None, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Flips, quarter turns and a brightness and contrast jitter, the same geometry for an image and its class map.

    A shape's class does not change when it is turned or mirrored, so these are free extra data.
    """
    out_images, out_targets = [], []
    for i in range(len(images)):
        turns, flip = int(torch.randint(4, (1,), generator=generator)), bool(torch.randint(2, (1,), generator=generator))
        image = torch.rot90(images[i], turns, (1, 2))
        image = image.flip(2) if flip else image
        gain, shift = 1 + 0.4 * (torch.rand(2, generator=generator) - 0.5)
        out_images.append(image * gain + (shift - 1))
        if targets is not None:
            target = torch.rot90(targets[i], turns, (0, 1))
            out_targets.append(target.flip(1) if flip else target)
    return torch.stack(out_images), torch.stack(out_targets) if targets is not None else None


def _augmented(batch: Callable[[int], Batch], recipe: Recipe, dense: bool) -> Callable[[int], Batch]:
    if not recipe.augment:
        return batch

    def augmented(step: int) -> Batch:
        images, targets = batch(step)
        generator = torch.Generator().manual_seed(recipe.seed * 1_000_003 + step)
        images, moved = augment(images, targets if dense else None, generator)
        return images, moved if dense else targets

    return augmented


def _first_seed(recipe: Recipe) -> int:
    """Where a seed's stream of training inputs starts in the train split (runs with other seeds see other data)."""
    return shapesworld.SPLITS["train"].start + (recipe.seed * 100_000) % 900_000


def segmentation_problem(recipe: Recipe) -> Problem:
    first, size, b = _first_seed(recipe), SIZE, recipe.batch
    config = UNetConfig(num_classes=len(shapesworld.CLASSES), widths=UNET_WIDTHS, batch_norm=recipe.batch_norm, skips=recipe.skips, dropout=recipe.dropout)

    def metric(logits: torch.Tensor, targets: torch.Tensor) -> float:
        confusion = ConfusionMatrix(len(shapesworld.CLASSES))
        confusion.update(targets.numpy(), logits.argmax(1).numpy())
        return confusion.mean_iou()

    return Problem(
        network=UNet(config),
        batch=_augmented(lambda step: scene_batch(range(first + (step - 1) * b, first + step * b), size), recipe, dense=True),
        criterion=lambda logits, targets: segmentation_criterion(logits, targets)[0],
        validation=scene_batch(range(VALIDATION_FIRST, VALIDATION_FIRST + VALIDATION_COUNT), size),
        metric=metric,
        shown=lambda logits: [labels.astype(np.uint8) for labels in logits[:SHOWN].argmax(1).numpy()],
    )


def object_batch(seeds: range, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised single-object images (B,3,H,W) and their shape's index in ``shapesworld.SHAPES``."""
    drawn = [shapesworld.single_object(s, size) for s in seeds]
    images = torch.from_numpy(np.stack([image for image, _ in drawn])).permute(0, 3, 1, 2).float() / 255
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (IMAGENET_MEAN, IMAGENET_STD))
    labels = torch.tensor([shapesworld.SHAPES.index(prompt.split()[-1]) for _, prompt in drawn])
    return (images - mean) / std, labels


def classifier_problem(recipe: Recipe) -> Problem:
    first, b = _first_seed(recipe), recipe.batch
    config = ClassifierConfig(num_classes=len(shapesworld.SHAPES), batch_norm=recipe.batch_norm, dropout=recipe.dropout)
    return Problem(
        network=SmallCNN(config),
        batch=_augmented(lambda step: object_batch(range(first + (step - 1) * b, first + step * b), SIZE), recipe, dense=False),
        criterion=F.cross_entropy,
        validation=object_batch(range(VALIDATION_FIRST, VALIDATION_FIRST + VALIDATION_COUNT), SIZE),
        metric=lambda logits, labels: float((logits.argmax(1) == labels).float().mean()),
        shown=lambda logits: [probabilities.astype(np.float32) for probabilities in logits[:SHOWN].softmax(1).numpy()],
    )


PROBLEMS = {"unet": segmentation_problem, "classifier": classifier_problem}


def optimiser_for(recipe: Recipe, network: nn.Module) -> torch.optim.Optimizer:
    params, lr = network.parameters(), recipe.lr
    if recipe.optimiser == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if recipe.optimiser == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=0.9)
    if recipe.optimiser == "adam":
        return torch.optim.Adam(params, lr=lr)
    return torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)


def validate(problem: Problem, step: int, elapsed: float, send: Send) -> None:
    """Score the network on the validation inputs (in eval mode, no gradients) and send it with the shown predictions."""
    problem.network.eval()
    with torch.no_grad():
        images, targets = problem.validation
        logits = problem.network(images)
        loss = float(problem.criterion(logits, targets))
        metric = problem.metric(logits, targets)
    problem.network.train()
    send({"kind": "validation", "step": step, "elapsed": elapsed, "loss": loss, "metric": metric, "predictions": problem.shown(logits)})


def run(recipe: Recipe, send: Send, should_stop: Callable[[], bool]) -> None:
    """Train ``recipe`` until its budget is spent, ``should_stop()`` or a non-finite loss; ``send`` reports as it goes."""
    seed_everything(recipe.seed)
    problem = PROBLEMS[recipe.model](recipe)
    send({"kind": "started", "shown_seeds": list(range(VALIDATION_FIRST, VALIDATION_FIRST + SHOWN))})
    validate(problem, 0, 0.0, send)
    start = time.perf_counter()
    every = validation_every(recipe.batch)
    pending: list[tuple[int, float, float]] = []
    state = {"reason": "done", "last_sent": 0.0, "validated": 0}

    def report(step: Step) -> bool:
        elapsed = time.perf_counter() - start
        pending.append((step.number, elapsed, step.loss))
        if not np.isfinite(step.loss):
            state["reason"] = "diverged"
        elif should_stop():
            state["reason"] = "stopped"
        if elapsed - state["last_sent"] >= SEND_EVERY_S or state["reason"] != "done":
            send({"kind": "steps", "points": list(pending)})
            pending.clear()
            state["last_sent"] = elapsed
        if step.number % every == 0 and state["reason"] == "done":
            validate(problem, step.number, elapsed, send)
            state["validated"] = step.number
        return state["reason"] != "done" or time.perf_counter() - start >= recipe.budget_s

    steps = fit(problem.network, optimiser_for(recipe, problem.network), problem.batch, _loss(problem), None, callbacks=[report])
    if pending:
        send({"kind": "steps", "points": list(pending)})
    elapsed = time.perf_counter() - start
    if state["reason"] != "diverged" and state["validated"] != steps:
        validate(problem, steps, elapsed, send)
    weights = b"" if state["reason"] == "diverged" else save({k: v.contiguous() for k, v in problem.network.state_dict().items()})
    send({"kind": "done", "reason": state["reason"], "steps": steps, "elapsed": elapsed, "weights": weights, "card": card(recipe, problem, steps, elapsed)})


def _loss(problem: Problem):
    def loss(network: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        images, targets = batch
        return problem.criterion(network(images), targets), {}

    return loss


def card(recipe: Recipe, problem: Problem, steps: int, elapsed: float) -> dict:
    """What the downloaded file's card says: the network, its classes and preprocessing, how it was trained."""
    network = problem.network
    return {
        "architecture": f"{type(network).__module__}.{type(network).__name__}",
        "config": network.config.to_dict(),
        "classes": list(shapesworld.CLASSES if recipe.model == "unet" else shapesworld.SHAPES),
        "preprocessing": {"mean": IMAGENET_MEAN, "std": IMAGENET_STD, "native_size": SIZE, "resize_to": SIZE},
        "parameters": sum(p.numel() for p in network.parameters()),
        "train": {"steps": steps, "batch": recipe.batch, "images_seen": steps * recipe.batch, "first_seed": _first_seed(recipe)},
        "train_seconds": round(elapsed, 1),
        "validation": {"seeds": f"{VALIDATION_FIRST}..{VALIDATION_FIRST + VALIDATION_COUNT - 1}", "count": VALIDATION_COUNT},
        "trained_on": f"{platform.machine()}, {torch.get_num_threads()} CPU threads, torch {torch.__version__}",
        "trained_at": time.strftime("%Y-%m-%d %H:%M"),
    }


# ---------------------------------------------------------------- a run in a process of its own


def limit_resources(threads: int, memory_mb: float) -> None:
    """``threads`` torch threads, a low scheduling priority (the server's requests come first) and at most ``memory_mb`` more memory."""
    torch.set_num_threads(threads)
    os.nice(10)
    if memory_mb > 0:
        with open("/proc/self/statm") as statm:
            now = int(statm.read().split()[0]) * resource.getpagesize()
        limit = now + int(memory_mb * 2**20)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def encode(event: dict) -> str:
    """One JSON line; bytes and arrays in base64, since a process's pipe carries text."""

    def plain(value):
        if isinstance(value, bytes):
            return {"bytes": base64.b64encode(value).decode()}
        if isinstance(value, np.ndarray):
            return {"array": base64.b64encode(value.tobytes()).decode(), "dtype": str(value.dtype), "shape": list(value.shape)}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    return json.dumps({key: plain(value) for key, value in event.items()}) + "\n"


def decode(line: str) -> dict:
    def value_of(value):
        if isinstance(value, dict) and "bytes" in value:
            return base64.b64decode(value["bytes"])
        if isinstance(value, dict) and "array" in value:
            return np.frombuffer(base64.b64decode(value["array"]), dtype=value["dtype"]).reshape(value["shape"])
        if isinstance(value, list):
            return [value_of(v) for v in value]
        return value

    return {key: value_of(value) for key, value in json.loads(line).items()}


def main(argv: list[str] | None = None) -> int:
    """The child process: the recipe as JSON, events out through file descriptor ``--fd``; SIGINT asks it to stop."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipe", required=True)
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--memory-mb", type=float, default=0)
    args = parser.parse_args(argv)
    stop = {"asked": False}
    signal.signal(signal.SIGINT, lambda *_: stop.update(asked=True))
    parent = os.getppid()
    limit_resources(args.threads, args.memory_mb)
    with os.fdopen(args.fd, "w") as out:

        def send(event: dict) -> None:
            out.write(encode(event))
            out.flush()

        try:
            run(Recipe(**json.loads(args.recipe)), send, lambda: stop["asked"] or os.getppid() != parent)
        except MemoryError:
            send({"kind": "error", "message": f"the run needed more than its {args.memory_mb:.0f} MB of memory; try a smaller batch."})
        except BrokenPipeError:  # the server went away
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
