"""The issues' performance targets, checked against the measurements.

They are what keeps the app usable on the course's 2-core lab machines with the local models:
a prediction that feels instant, a slider that answers at once, an API that adds little on
top, and a server that is up quickly after ``make run``. The latency limits hold for every
local model of a task (trained weights, 128x128 scenes: the numbers a student gets offline);
the pretrained models run on planted random weights here, so their candidate counts, and with
them the cost of drawing, mean nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import models

from .api import ApiResult, ApiRun
from .data import DataResult
from .inprocess import InProcessResult
from .tasks import Task


@dataclass(frozen=True)
class LocalLimits:
    """A task's limits for each of its local models, in milliseconds (None: no target)."""

    predict_p50_ms: float  # in process, at the model's native 128x128
    rest_adds_ms: float  # REST round-trip p50 minus in-process predict p50
    rerender_p50_ms: float | None = None  # the tab's function again with other controls, on the cached prediction


LIMITS: dict[str, LocalLimits] = {
    "segmentation": LocalLimits(predict_p50_ms=30.0, rest_adds_ms=100.0),
    "detection": LocalLimits(predict_p50_ms=100.0, rest_adds_ms=60.0, rerender_p50_ms=20.0),
    "instances": LocalLimits(predict_p50_ms=150.0, rest_adds_ms=60.0, rerender_p50_ms=20.0),
    "pose": LocalLimits(predict_p50_ms=150.0, rest_adds_ms=60.0, rerender_p50_ms=20.0),
}
APP_READY_S = 10.0
RESTORATION_PREDICT_MS = 50.0  # the local restorer's predict p50 at 128x128 (its own section: bench/restoration.py)
UNET_TRAIN_MIN = 30.0
GAN_SPEEDUP_MIN = 20.0  # a GAN sample (one forward pass) against a 10-step guided diffusion sample (20 passes)


@dataclass
class Target:
    what: str
    limit: str
    measured: str
    passed: bool | None  # None: not measured in this run

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "FAIL", None: "n/a"}[self.passed]

    def to_dict(self) -> dict:
        return {**asdict(self), "verdict": self.verdict}


def _check(what: str, value: float | None, limit: float, unit: str, why_missing: str) -> Target:
    if value is None:
        return Target(what, f"<= {limit:g} {unit}", why_missing, None)
    return Target(what, f"<= {limit:g} {unit}", f"{value:.1f} {unit}", value <= limit)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1e3


def _local_targets(task: Task, name: str, local: InProcessResult | None, api: ApiRun | None) -> list[Target]:
    """Predict, re-render (where the task has a limit for it) and HTTP overhead of one local model."""
    limits = LIMITS[task.name]
    predict_ms = _ms(local.predict.p50) if local else None
    missing = (local.error if local and local.error else f"{name} not benchmarked") if predict_ms is None else "not measured"
    targets = [_check(f"{name}: predict p50 at 128x128 (in process)", predict_ms, limits.predict_p50_ms, "ms", missing)]
    if limits.rerender_p50_ms is not None:
        what = f"{name}: new {task.control} on the cached prediction, p50 (`{task.rerender_name}` again)"
        targets.append(_check(what, _ms(local.rerender.p50) if local else None, limits.rerender_p50_ms, "ms", missing))
    remote: ApiResult | None = next((r for r in api.results if r.name == name), None) if api else None
    rest_ms = _ms(remote.rest_round_trip.p50) if remote else None
    adds_ms = rest_ms - predict_ms if rest_ms is not None and predict_ms is not None else None
    missing_api = "HTTP part not run" if api is None else (api.error or (remote.error if remote else None) or missing)
    what = f"{name}: HTTP (REST) round trip p50 minus predict p50 (`/{task.endpoint}`)"
    targets.append(_check(what, adds_ms, limits.rest_adds_ms, "ms", missing_api))
    return targets


def evaluate(tasks: list[Task], inprocess: list[InProcessResult], api: ApiRun | None, data: DataResult | None = None) -> list[Target]:
    """Every target of the tasks run: per local model of each task, then the app's start-up, then training."""
    measured = {r.name: r for r in inprocess}
    targets = [
        target
        for task in tasks
        for spec in models.for_task(task.name)
        if spec.tier == "local"
        for target in _local_targets(task, spec.name, measured.get(spec.name), api)
    ]
    ready, why = (api.ready_s, api.error or "not measured") if api else (None, "HTTP part not run")
    targets.append(_check("app ready: Popen -> GET / answers 200", ready, APP_READY_S, "s", why))
    if data is not None:
        projected = data.projected_train_s / 60 if data.projected_train_s else None
        targets.append(_check("U-Net retraining on 2 CPU cores (projected from s/step)", projected, UNET_TRAIN_MIN, "min", "not measured"))
    return targets
