"""Train it yourself: pick a network and a recipe, watch it learn, compare runs, use the result.

Pure functions first (``recipe_of``, ``loss_frame``, ``metric_frame``, ``compare_frame``,
``predictions_image``, ``status_text``, ``summary``), then the handlers and ``build()``. The run
itself happens in ``models.train_yourself`` (its own process, one at a time per server); this tab
streams its ``Progress``: the loss curves, the validation metric, the predictions on four fixed
validation inputs, the time left, and at the end a verdict in plain words, a download, and (for a
U-Net) an entry in the segmentation tab's model picker for this session.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import gradio as gr
import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

import models
import settings
import shapesworld
from models import recipe as recipes
from models import train_yourself as runner
from models.recipe import Recipe

from . import common, drawing, errors
from .files import OUTPUT_DIR

TITLE = "Train it yourself"
TASK = "train_yourself"
ENDPOINT = "train"  # the tab's main action, served at /train
RUNS_KEPT = 6  # the session's last runs overlaid in the comparison
TILE = 128  # each shown input and prediction, enlarged from 64 px
PLOTTED_STEPS = 200  # at most this many training-loss points per plot
UPDATE_S = 1.0  # the page is updated about this often while a run trains


@dataclass
class RunSummary:
    """One finished run of the session, as the comparison plot draws it."""

    number: int  # the session's run count, shown in the label
    label: str
    model: str
    curve: list[tuple[float, float]]  # (seconds, validation metric)


def recipe_of(
    model: str, budget_s: float, lr: float, batch: float, optimiser: str, augment: bool, batch_norm: bool, dropout: float, skips: bool, seed: float,
) -> Recipe:
    """The widgets' values as a checked recipe (``BadRecipe``, a clear message, when one is out of range)."""
    values = dict(budget_s=budget_s, lr=lr, batch=batch, dropout=dropout, seed=seed)
    missing = [name for name, value in values.items() if value is None]
    if missing:
        raise recipes.BadRecipe(f"Set the {missing[0].replace('_s', '').replace('lr', 'learning rate')} first.")
    return Recipe(model, float(budget_s), float(lr), batch, optimiser, bool(augment), bool(batch_norm), float(dropout), bool(skips), seed).checked()


def loss_frame(progress: runner.Progress) -> pd.DataFrame:
    """Training loss (averaged over bins of steps past ``PLOTTED_STEPS``) and validation loss, against seconds of training.

    The averages keep a two-minute run's curve light to send every half second, and smoother to read.
    """
    points = [(seconds, loss) for _, seconds, loss in progress.train if np.isfinite(loss)]
    per_bin = max(1, -(-len(points) // PLOTTED_STEPS))
    binned = [points[i : i + per_bin] for i in range(0, len(points), per_bin)]
    rows = [(chunk[-1][0], float(np.mean([loss for _, loss in chunk])), "training") for chunk in binned]
    rows += [(seconds, loss, "validation") for _, seconds, loss, _ in progress.val if np.isfinite(loss)]
    return pd.DataFrame(rows, columns=["seconds", "loss", "curve"])


def metric_frame(progress: runner.Progress) -> pd.DataFrame:
    name = recipes.METRIC[progress.recipe.model]
    rows = [(seconds, metric, f"validation {name}") for _, seconds, _, metric in progress.val]
    return pd.DataFrame(rows, columns=["seconds", "score", "curve"])


def compare_frame(runs: list[RunSummary], model: str, budget_s: float) -> pd.DataFrame:
    """The session's last runs of ``model``, each labelled by what it changed, and the shipped model's figure as a line."""
    rows = [(seconds, metric, run.label) for run in runs if run.model == model for seconds, metric in run.curve]
    reference = runner.shipped_reference(model, models.all_specs)
    if reference:
        title, value = reference
        rows += [(0.0, value, title), (float(budget_s), value, title)]
    return pd.DataFrame(rows, columns=["seconds", "score", "run"])


def _scene_image(seed: int) -> tuple[Image.Image, np.ndarray]:
    scene = shapesworld.generate(seed, recipes.SIZE)
    return Image.fromarray(scene.image), scene.semantic


def _object_image(seed: int) -> tuple[Image.Image, str]:
    image, prompt = shapesworld.single_object(seed, recipes.SIZE)
    return Image.fromarray(image), prompt.split()[-1]


def predictions_image(progress: runner.Progress) -> Image.Image | None:
    """The shown validation inputs with the latest predictions, in one picture.

    U-Net: a row per scene, its image, the predicted classes and the true ones; classifier: the
    objects side by side, each with its guess, how sure, and the truth.
    """
    if not progress.predictions:
        return None
    if progress.recipe.model == "unet":
        colours = drawing.palette(len(shapesworld.CLASSES))
        rows = []
        for seed, labels in zip(progress.shown_seeds, progress.predictions):
            image, truth = _scene_image(seed)
            rows.append([image, drawing.overlay_labels(image, labels, 1.0, colours), drawing.overlay_labels(image, truth, 1.0, colours)])
        return _grid(rows, ["image", "predicted", "true classes"])
    tiles, notes = [], []
    for seed, probabilities in zip(progress.shown_seeds, progress.predictions):
        image, truth = _object_image(seed)
        guess = int(np.argmax(probabilities))
        tiles.append(image)
        notes.append(f"{shapesworld.SHAPES[guess]} {probabilities[guess]:.0%}" + ("" if shapesworld.SHAPES[guess] == truth else f" (is {truth})"))
    return _grid([tiles], notes)


def _grid(rows: list[list[Image.Image]], labels: list[str], gap: int = 4, label_height: int = 18) -> Image.Image:
    """Panels enlarged to TILE px in a grid, a label over each column."""
    columns = len(rows[0])
    grid = Image.new("RGB", (columns * (TILE + gap) - gap, label_height + len(rows) * (TILE + gap) - gap), "white")
    draw = ImageDraw.Draw(grid)
    for c, label in enumerate(labels):
        draw.text((c * (TILE + gap) + 2, 3), label, fill=(40, 40, 40))
    for r, row in enumerate(rows):
        for c, panel in enumerate(row):
            grid.paste(panel.resize((TILE, TILE), Image.NEAREST), (c * (TILE + gap), label_height + r * (TILE + gap)))
    return grid


def status_text(progress: runner.Progress) -> str:
    """One line while it waits or runs; the verdict when it is over."""
    metric = recipes.METRIC[progress.recipe.model]
    if progress.status == "queued":
        ahead = progress.position
        return f"**Waiting in line**: {ahead} run{'s' * (ahead != 1)} ahead of yours. One training runs at a time on this server."
    if progress.status == "starting":
        return "**Starting** the training process…"
    if progress.status == "training":
        score = f" · validation {metric} **{progress.metric:.2f}**" if progress.metric is not None else ""
        return f"**Training**: step {progress.steps} · {progress.elapsed:.0f} s done, **{progress.time_left:.0f} s left**{score}"
    return f"**{'Finished' if progress.status == 'done' else progress.status.capitalize()}.** {progress.verdict()}"


def summary(progress: runner.Progress) -> dict:
    """What an API client reads: status, steps, seconds, the last validation metric and the verdict."""
    return {
        "status": progress.status,
        "position": progress.position,
        "steps": progress.steps,
        "seconds": round(progress.elapsed, 1),
        "time_left": round(progress.time_left, 1),
        "metric": recipes.METRIC[progress.recipe.model],
        "value": None if progress.metric is None else round(progress.metric, 4),
        "verdict": progress.verdict() if progress.finished else "",
        "model": progress.result.name if progress.result else None,
        "recipe": asdict(progress.recipe),
    }


# ---------------------------------------------------------------- UI


def _outputs(progress: runner.Progress, runs: list[RunSummary], *, new_validation: bool, whole: bool, files=gr.skip()) -> tuple:
    """The tab's outputs for one update; the validation curve, the picture and the comparison only when they change.

    Every plot redrawn twice a second kept a browser on a busy laptop behind the run by seconds.
    """
    return (
        status_text(progress), loss_frame(progress), metric_frame(progress) if new_validation else gr.skip(),
        predictions_image(progress) if new_validation else gr.skip(),
        compare_frame(runs, progress.recipe.model, progress.recipe.budget_s) if whole else gr.skip(), files, summary(progress), runs,
    )


@errors.user_errors
def _train_ui(
    model: str, budget_s: float, lr: float, batch: float, optimiser: str, augment: bool, batch_norm: bool, dropout: float, skips: bool, seed: float,
    runs: list[RunSummary] | None, request: gr.Request,
):
    """Train a small network on ShapesWorld in the server, streaming its progress.

    Args:
        model: "unet" (segmentation U-Net on 64-px scenes) or "classifier" (single objects).
        budget_s: seconds of training, 15 to 120.
        lr: learning rate, e.g. 0.004.
        batch: batch size, 1 to 64.
        optimiser: "sgd", "momentum", "adam" or "adamw".
        augment: flips, quarter turns and brightness jitter on the training inputs.
        batch_norm: batch normalisation in the network.
        dropout: dropout probability, 0 to 0.9.
        skips: the U-Net's skip connections (ignored for the classifier).
        seed: the run's seed; the same seed and settings give the same curve.

    Returns:
        A stream of updates: a status line, the loss curves, the validation metric, the predictions on four validation inputs, the comparison with earlier runs, the trained weights and card (at the end), and a summary (status, steps, seconds, metric value, verdict).
    """
    recipe = recipe_of(model, budget_s, lr, batch, optimiser, augment, batch_norm, dropout, skips, seed)
    runs = list(runs or [])
    owner = request.session_hash or "api"
    progress, validations = None, 0
    for progress in runner.train(recipe, OUTPUT_DIR / "trained", owner, poll_s=UPDATE_S):
        if not progress.finished:
            yield _outputs(progress, runs, new_validation=len(progress.val) != validations, whole=validations == 0)
            validations = len(progress.val)
    if progress.val:
        number = runs[-1].number + 1 if runs else 1
        curve = [(seconds, metric) for _, seconds, _, metric in progress.val]
        runs = [*runs, RunSummary(number, f"run {number}: {recipe.changes()}", recipe.model, curve)][-RUNS_KEPT:]
    result = progress.result
    if result is not None and result.spec is not None:
        models.add_trained(result.spec, owner)
        gr.Info(f"“{result.title}” is in the Semantic segmentation tab's model picker for this session.")
    yield _outputs(progress, runs, new_validation=True, whole=True, files=[str(result.weights), str(result.card)] if result else None)


def _stop_ui(request: gr.Request) -> str:
    """Stop this session's training now (it keeps what it learned) or take it out of the line.

    Returns:
        What happened.
    """
    if runner.stop(request.session_hash or "api"):
        return "Stopping: the run keeps what it has learned so far."
    return "No training of yours is running or waiting."


def build() -> None:
    gr.Markdown(
        "Train a small network from scratch on ShapesWorld and watch it learn: the loss falls, the validation score "
        "rises and the predictions on four scenes it never trains on sharpen. Change one thing at a time (the learning "
        "rate, batch norm, the skip connections) and compare the curves. One training runs at a time on this server; "
        "the others wait in line."
    )
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            model = gr.Radio([(title, key) for key, title in recipes.MODELS.items()], value="unet", label="What to train")
            budget = common.int_slider(*recipes.BUDGET_S, value=60, step=5, label="Time budget (seconds)")
            with gr.Row():
                lr = gr.Number(value=Recipe().lr, label="Learning rate", min_width=120)
                batch = gr.Number(value=Recipe().batch, precision=0, label="Batch size (1 to 64)", min_width=120)
            optimiser = gr.Radio([(title, key) for key, title in recipes.OPTIMISERS.items()], value=Recipe().optimiser, label="Optimiser")
            augment = gr.Checkbox(value=False, label="Data augmentation (flips, quarter turns, brightness)")
            batch_norm = gr.Checkbox(value=True, label="Batch normalisation")
            skips = gr.Checkbox(value=True, label="Skip connections (U-Net)")
            dropout = gr.Slider(0, recipes.MAX_DROPOUT, value=0, step=0.05, label="Dropout")
            seed = gr.Number(value=0, precision=0, label="Seed (same seed and settings: the same curve)")
            with gr.Row():
                run = gr.Button("Train", variant="primary")
                stop = gr.Button("Stop", variant="stop")
        with gr.Column(scale=2):
            status = gr.Markdown("Pick a recipe and press **Train**.", label="Status", elem_id="train-status")
            with gr.Row():
                losses = gr.LinePlot(x="seconds", y="loss", color="curve", title="Loss", label="Loss curves", height=260, elem_id="train-loss", min_width=260)
                scores = gr.LinePlot(x="seconds", y="score", color="curve", title="Validation score", label="Validation curve", y_lim=[0, 1], height=260,
                                     elem_id="train-metric", min_width=260)
            shown = gr.Image(label="Four validation inputs it never trains on, with its latest predictions", type="pil", format="png",
                             interactive=False, elem_id="train-predictions", elem_classes="dvl-image")
            compare = gr.LinePlot(x="seconds", y="score", color="run", title="Your last runs and the shipped model", label="Comparison", y_lim=[0, 1],
                                  height=280, elem_id="train-compare")
            files = gr.Files(label="The trained network: safetensors weights and its card (JSON)", elem_id="train-files")
            with gr.Accordion("Numbers", open=False):
                numbers = gr.JSON(label="Run summary")
    runs = gr.State([])
    inputs = [model, budget, lr, batch, optimiser, augment, batch_norm, dropout, skips, seed, runs]
    outputs = [status, losses, scores, shown, compare, files, numbers, runs]
    # Gradio's queue keeps the line (each waiting client sees its position) without holding a thread per waiting run.
    run.click(_train_ui, inputs, outputs, api_name=ENDPOINT, concurrency_limit=settings.train_slots(), concurrency_id="train")
    stop.click(_stop_ui, None, status, api_name="stop_training", queue=False)
