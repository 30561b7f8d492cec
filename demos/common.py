"""Shared pieces of every tab: the model picker, examples, error handling, progress, result files.

A tab module wires widgets and calls pure functions; anything two tabs would otherwise both
write lives in a shared module once: here (inputs, models, files), ``drawing`` (palettes,
overlays, boxes, heat maps) and ``legends`` (legends and tables in HTML).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import json
import logging
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, ParamSpec, TypeVar

import gradio as gr
import torch
from PIL import Image

import models
import settings
import shapesworld

from . import scenes
from .files import OUTPUT_DIR, examples_folder
from .inputs import BadInput, load_image

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")


# ---------------------------------------------------------------- input and errors


def read_image(source) -> Image.Image:
    """Every uploaded image goes through here once: normalised to RGB, clamped, validated."""
    return load_image(source, max_side=settings.max_image_side())


def on_zero_gpu(fn: Callable[P, R], seconds: int) -> Callable[P, R]:
    """``fn`` inside ``spaces.GPU`` on Hugging Face ZeroGPU hardware, unchanged anywhere else.

    ZeroGPU lends a GPU only to functions decorated so, for at most ``seconds`` per call; the
    ``spaces`` package is present on every Space, and ``SPACES_ZERO_GPU`` is set on ZeroGPU ones.
    """
    if not settings.on_zero_gpu():
        return fn
    try:
        import spaces
    except ImportError:
        return fn
    return spaces.GPU(duration=seconds)(fn)


def user_errors(fn: Callable[P, R] | None = None, *, gpu_seconds: int = 30):
    """Turn expected failures into a clear message in the page (``gr.Error``), never a stack trace.

    Unexpected exceptions are logged with their traceback on the server and reported to the
    user as a short, honest sentence; the server keeps serving either way. Every handler that
    runs a model has this decorator, so it is also where ZeroGPU's ``spaces.GPU`` goes
    (``gpu_seconds``: the longest a call of this handler may hold the GPU).
    """
    if fn is None:
        return functools.partial(user_errors, gpu_seconds=gpu_seconds)
    fn = on_zero_gpu(fn, gpu_seconds)
    if inspect.isgeneratorfunction(fn):  # a streaming handler fails while it is iterated, not when called

        @functools.wraps(fn)
        def streaming(*args: P.args, **kwargs: P.kwargs):
            with _as_user_errors(fn.__name__):
                yield from fn(*args, **kwargs)

        return streaming

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with _as_user_errors(fn.__name__):
            return fn(*args, **kwargs)

    return wrapper


@contextlib.contextmanager
def _as_user_errors(where: str) -> Iterator[None]:
    """The translation ``user_errors`` applies: expected failures to their message, the rest to a short sentence."""
    try:
        yield
    except gr.Error:
        raise
    except (BadInput, models.WeightsUnavailable, models.ModelServerUnavailable, ValueError, KeyError) as error:
        raise gr.Error(str(error).strip("'\"")) from None
    except (torch.OutOfMemoryError, MemoryError):
        log.exception("out of memory in %s", where)
        models.cache().release_all()  # so the next request has room
        raise gr.Error(
            "The server ran out of memory on this request. It unloaded its models to recover: try again, "
            "or with a smaller image or a smaller model."
        ) from None
    except Exception as error:  # noqa: BLE001 - last line of defence for the web page
        log.exception("unexpected error in %s", where)
        raise gr.Error(f"The model failed on this input ({type(error).__name__}). Try another input or model.") from None


def load_model(name: str, progress: gr.Progress | None = None):
    """``models.get`` with the loading step shown in the page's progress bar."""
    on_load = (lambda message: progress(0, desc=message)) if progress is not None else None
    return models.get(name, on_load=on_load)


def image_key(image: Image.Image) -> str:
    """A content hash, so derived results (predictions) can be cached per image."""
    return f"{hashlib.blake2b(image.tobytes(), digest_size=16).hexdigest()}-{image.width}x{image.height}"


def save_output(result: Image.Image | dict | list, stem: str) -> str:
    """Write a result file users can download (an image as PNG, data as JSON); Gradio serves it from the temp folder."""
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    is_image = isinstance(result, Image.Image)
    handle = tempfile.NamedTemporaryFile(prefix=f"{stem}-", suffix=".png" if is_image else ".json", dir=OUTPUT_DIR, delete=False)
    with handle:
        if is_image:
            result.save(handle, format="PNG")
        else:
            handle.write(json.dumps(result, indent=1).encode())
    return handle.name


# ---------------------------------------------------------------- wiring a tab's main action


def clear_on_failure(event, outputs: list) -> None:
    """When ``event`` fails, empty ``outputs`` in the page (in the browser, no server round trip).

    Otherwise the error toast appears over the previous image's result, which then reads as the
    answer to the new, failed input.
    """
    event.failure(None, None, outputs, js=empty_outputs_js(outputs), api_visibility="private", show_progress="hidden")


def empty_outputs_js(outputs: list) -> str:
    """A browser-side function that empties ``outputs`` (no server round trip)."""
    values = [empty_value(component) for component in outputs]
    return f"() => {json.dumps(values[0] if len(values) == 1 else values)}"


def empty_value(component) -> object:
    """What ``component`` shows when it has no value, as its frontend expects it (a Label wants ``{}``, not null)."""
    value = component.postprocess(None)
    return value.model_dump() if hasattr(value, "model_dump") else value


def named_endpoint(fn: Callable[P, R], name: str) -> Callable[P, R]:
    """``fn`` under its endpoint's public name: MCP clients see a function's name as the tool's name.

    A generator stays a generator function, since that is how Gradio knows to stream its updates.
    """
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def endpoint(*args: P.args, **kwargs: P.kwargs):
            yield from fn(*args, **kwargs)

    else:

        @functools.wraps(fn)
        def endpoint(*args: P.args, **kwargs: P.kwargs) -> R:
            return fn(*args, **kwargs)

    endpoint.__name__ = endpoint.__qualname__ = name
    return endpoint


def on_new_input(
    fn: Callable, inputs: list, outputs: list, *, button, image, examples, api_name: str,
    new_scene=None, draw: Callable[[], str] | None = None,
) -> None:
    """Run a tab's main action on a click (its public endpoint), a fresh upload and a picked example.

    ``new_scene`` (a button, see ``demos.scenes``) puts the file ``draw()`` returns (a new unseen
    scene by default) into ``image`` and runs the action on it. Each path clears the outputs if it
    fails (``clear_on_failure``).
    """
    events = [button.click(named_endpoint(fn, api_name), inputs, outputs, api_name=api_name)]
    # A file that fails goes too, so the drop zone is back for the next one (a broken thumbnail
    # would otherwise stay, and a second file dropped on it is not an upload).
    clear_on_failure(image.upload(fn, inputs, outputs, api_visibility="private"), [*outputs, image])
    run_on_example(examples, fn, inputs, outputs)
    if new_scene is not None:
        drawn = new_scene.click(draw or scenes.new_scene_file, None, image, api_visibility="private", show_progress="hidden")
        events.append(drawn.then(fn, inputs, outputs, api_visibility="private"))
    for event in events:
        clear_on_failure(event, outputs)


def run_on_example(examples: gr.Examples, fn: Callable, inputs: list, outputs: list) -> None:
    """A picked example runs ``fn`` at once, as on every tab: an example that only fills a box looks broken.

    For any ``gr.Examples`` (images, prompts, questions): the inputs are filled, then ``fn`` runs,
    and a failure clears ``outputs`` (``clear_on_failure``).
    """
    clear_on_failure(examples.load_input_event.then(fn, inputs, outputs, api_visibility="private"), outputs)


# ---------------------------------------------------------------- housekeeping


def prune_old_files(folders: list[Path], age_seconds: float, keep: Callable[[], set[str]] = set) -> int:
    """Delete files older than ``age_seconds`` under ``folders`` (and the folders they leave empty); returns how many.

    Covers the app's own result files (``save_output``) and Gradio's upload cache. Gradio's own
    ``delete_cache`` sweep is not used: it iterates its file sets while request threads add to
    them, and under concurrent load it raises and stops for good (a soak left 158 MB behind).
    This sweep walks the folders instead. ``keep`` names files to spare (the examples); the app's
    example folder is always spared.
    """
    deadline, removed, spared = time.time() - age_seconds, 0, keep()
    examples = OUTPUT_DIR / "examples"
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):  # files before their folders
            if path.is_symlink() or examples in path.parents or path == examples or str(path) in spared:
                continue
            try:
                if path.is_file() and path.stat().st_mtime < deadline:
                    path.unlink()
                    removed += 1
                    if path.parent != folder and not any(path.parent.iterdir()):
                        path.parent.rmdir()  # Gradio's one-file folder per upload
                elif path.is_dir() and path.stat().st_mtime < deadline and not any(path.iterdir()):
                    path.rmdir()
            except OSError:  # a request or Gradio's own sweep took it first, or wrote into it meanwhile
                continue
    return removed


def prune_old_files_every(folders: list[Path], frequency_seconds: float, age_seconds: float, keep: Callable[[], set[str]] = set) -> threading.Thread:
    """Run ``prune_old_files`` in a daemon thread, every ``frequency_seconds``, for the life of the server."""

    def loop() -> None:
        while True:
            time.sleep(frequency_seconds)
            try:
                if removed := prune_old_files(folders, age_seconds, keep):
                    log.info("deleted %d uploads and result files older than %.0f s", removed, age_seconds)
            except OSError:
                log.exception("could not prune %s", folders)

    thread = threading.Thread(target=loop, name="prune-old-files", daemon=True)
    thread.start()
    return thread


# ---------------------------------------------------------------- settings


def int_slider(minimum: int, maximum: int, value: int, *, label: str, step: int = 1, **kwargs) -> gr.Slider:
    """A slider for a count (k, steps, beams, captions, detections, images): whole numbers in the page and the API.

    Gradio types a slider's API parameter ``integer``, and hands the handler an ``int``, only with
    ``precision=0``; without it a count reads ``float`` in ``/gradio_api/info`` and in every client.
    """
    return gr.Slider(minimum, maximum, value=value, step=step, precision=0, label=label, **kwargs)


# ---------------------------------------------------------------- model picker


def _picker_choices(task: str) -> list[tuple[str, str]]:
    return [(spec.label, spec.name) for spec in models.for_task(task)]


def second_choice(task: str) -> str:
    """A usable model other than the default, for side-by-side comparisons."""
    default = models.default_for(task).name
    usable = [s.name for s in models.for_task(task) if s.availability().usable and s.name != default]
    return usable[-1] if usable else default


def model_picker(task: str, label: str = "Model", value: str | None = None) -> gr.Dropdown:
    """A dropdown of the task's models showing tier and availability, set to ``value`` or the best usable one.

    The labels are refreshed on every page load, so a model downloaded since start-up shows as cached.
    """
    picker = gr.Dropdown(
        choices=_picker_choices(task),
        value=value or models.default_for(task).name,
        label=label,
        info="local = trained here on ShapesWorld, runs offline · pretrained = canonical public weights · "
        "the default is the best model that runs here (on a CPU, a fast one)",
    )
    # Not queued: a page load refreshes every picker at once, and this costs no model; queued, a
    # page's own refreshes would use up its share of the queue (hosting.fairness) before any request.
    gr.on(
        None, lambda: gr.update(choices=_picker_choices(task)), None, picker, api_visibility="private", show_progress="hidden",
        queue=False,
    )
    return picker


def no_autolink(text: str) -> str:
    """``text`` for Markdown with every "@" escaped: "mAP@0.5" or "PCK@0.1" is not an e-mail address to link."""
    return text.replace("@", "&#64;")


def missing_weights_note(name: str) -> str | None:
    """How to get ``name``'s weights when they are not here (the command, never this server's paths); None when they are."""
    availability = models.spec(name).availability()
    if availability.usable:
        return None
    if availability is models.Availability.MISSING:
        return f"Its weights are missing: train them with `python -m models train {name}`."
    return (
        f"Its weights are not on this machine and cannot be downloaded from here: on a connected machine run "
        f"`python -m models prefetch {name}` and copy the weights over. Until then, pick a local model."
    )


def model_card_markdown(name: str) -> str:
    """A short description of a model: tier, source, licence, size, metrics, and how to get weights that are not here."""
    spec = models.spec(name)
    metrics = no_autolink(", ".join(f"{k}: {v}" for k, v in spec.metrics.items() if v is not None) or "—")
    missing = missing_weights_note(name)
    return (
        f"**{spec.title}** · {spec.tier} · {spec.availability().value}  \n"
        f"{spec.params / 1e6:.2f} M parameters · licence: {spec.license}  \n"
        f"metrics: {metrics}  \n"
        f"code: {spec.about}" + (f"  \n⚠ {missing}" if missing else "")
    )


def model_picked(model_name: str) -> str:
    """The card of a newly picked model; if its weights are not here, one warning that says how to get them.

    Picking such a model must not fail: every control keeps working, and the redraw that follows
    the pick (``unusable_outputs``) stays quiet, so the page shows this one message, not one per handler.
    """
    note = missing_weights_note(model_name)
    if note:
        gr.Warning(f"{models.spec(model_name).title} cannot run here. {note.replace('`', '')}")  # a toast shows no Markdown
    return model_card_markdown(model_name)


def unusable_outputs(model_name: str, count: int) -> tuple | None:
    """A redraw's outputs when ``model_name``'s weights are not here: emptied, the second (a summary or note) saying why; None when they are.

    The redraws (a control moved, a model picked) are private: the card already says how to get the
    weights, so they clear the previous model's result instead of raising a second message.
    """
    if models.spec(model_name).availability().usable:
        return None
    summary = f"No result: the weights of {models.spec(model_name).title} are not on this machine (see the model card)."
    return (None, summary, *([None] * (count - 2)))


# ---------------------------------------------------------------- examples

SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")


@functools.cache
def example_images(shapes_count: int = 3) -> list[str]:
    """Example files: unseen ShapesWorld test scenes and the real photos shipped with scikit-image."""
    folder = examples_folder()
    test_start = shapesworld.SPLITS["test"].start
    paths = [scenes.scene_file(seed) for seed in range(test_start, test_start + shapes_count)]
    try:
        from skimage import data as skdata
    except ImportError:  # the photos are a nicety; ShapesWorld examples always work
        return paths
    for name in SKIMAGE_PHOTOS:
        path = folder / f"{name}.jpg"
        if not path.exists():
            Image.fromarray(getattr(skdata, name)()).convert("RGB").save(path, quality=92)
        paths.append(str(path))
    return paths
