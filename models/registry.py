"""The registry: every model the app knows, by name, and the process-wide model cache."""

from __future__ import annotations

import functools

import settings

from .cache import ModelCache
from .spec import ModelSpec
from .tasks import TASKS


@functools.cache
def all_specs() -> dict[str, ModelSpec]:
    """Every model of every declared task (models/tasks.py), in each task's preference order."""
    return {spec.name: spec for task in TASKS for spec in task.specs()}


def spec(name: str) -> ModelSpec:
    try:
        return all_specs()[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(all_specs())}") from None


def for_task(task: str) -> list[ModelSpec]:
    return [s for s in all_specs().values() if s.task == task]


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
