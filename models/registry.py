"""The registry: every model the app knows, by name, and the process-wide model cache."""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict

import settings

from .cache import ModelCache
from .spec import ModelSpec


@functools.cache
def all_specs() -> dict[str, ModelSpec]:
    """Every model of every declared task (models/tasks.py), in each task's preference order.

    The tasks are imported here, on first use, not with the registry: a process that needs one
    network and its trainer (a Train-tab run) then does not import every task's libraries.
    """
    from .tasks import TASKS

    return {spec.name: spec for task in TASKS for spec in task.specs()}


TRAINED_KEPT = 64
"""Models trained in the page kept listed, across all sessions: the oldest is forgotten first."""
_trained: OrderedDict[str, tuple[str, ModelSpec]] = OrderedDict()  # name -> (owner, spec), oldest first
_trained_lock = threading.Lock()


def add_trained(model: ModelSpec, owner: str) -> None:
    """List ``model``, trained in the page, for ``owner`` (a page session) beside the declared models of its task.

    Only ``owner``'s pickers list it (``for_task(task, owner)``); ``spec`` finds it by name for
    anyone who has the name, as a download link is found. Never written to ``weights/``.
    """
    with _trained_lock:
        _trained[model.name] = (owner, model)
        while len(_trained) > TRAINED_KEPT:
            _trained.popitem(last=False)


def spec(name: str) -> ModelSpec:
    declared = all_specs()
    if name in declared:
        return declared[name]
    with _trained_lock:
        if name in _trained:
            return _trained[name][1]
    raise KeyError(f"unknown model {name!r}; known: {', '.join(declared)}")


def for_task(task: str, owner: str | None = None) -> list[ModelSpec]:
    """The declared models of ``task``, best first, then those ``owner`` trained in the page, newest first."""
    with _trained_lock:
        mine = [model for who, model in reversed(_trained.values()) if owner is not None and who == owner and model.task == task]
    return [s for s in all_specs().values() if s.task == task] + mine


def default_for(task: str) -> ModelSpec:
    """The best model of ``task`` that can run here (downloadable counts), else the first.

    "Best" depends on the device: the most accurate model on a GPU; on a CPU the one marked
    ``fast_on_cpu`` comes first, because a two-second answer is a worse demo than a good one in 0.2 s.
    """
    candidates = for_task(task)
    if cache().device.type == "cpu":
        candidates = sorted(candidates, key=lambda s: not s.fast_on_cpu)
    return next((s for s in candidates if s.availability().usable), candidates[0])


@functools.cache
def cache() -> ModelCache:
    """The process's model cache; with ``DVL_BACKEND=ray`` its models run in Ray Serve (models/serving.py)."""
    if settings.backend() == "ray":
        from .serving import RemoteModelCache  # imports Ray, an optional requirement

        return RemoteModelCache(spec, settings.ray_address())
    return ModelCache(spec)


def get(name: str, on_load=None):
    """The ready model ``name`` from the shared cache (loaded on first use)."""
    return cache().get(name, on_load)
