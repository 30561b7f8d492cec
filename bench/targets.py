"""The issue's performance targets, checked against the measurements.

They are what keeps the app usable on the course's 2-core lab machines with the local U-Net:
a prediction that feels instant, an API that adds little on top, and a server that is up
quickly after ``make run``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .api import ApiRun
from .data import DataResult
from .inprocess import InProcessResult

LOCAL_MODEL = "unet-shapes"
UNET_PREDICT_P50_MS = 30.0
HTTP_OVERHEAD_MS = 100.0
APP_READY_S = 10.0
UNET_TRAIN_MIN = 30.0


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


def _check(value: float | None, limit: float, unit: str, why_missing: str) -> tuple[str, bool | None]:
    if value is None:
        return why_missing, None
    return f"{value:.1f} {unit}", value <= limit


def evaluate(inprocess: list[InProcessResult], api: ApiRun | None, data: DataResult | None = None) -> list[Target]:
    local = next((r for r in inprocess if r.name == LOCAL_MODEL), None)
    local_api = next((r for r in api.results if r.name == LOCAL_MODEL), None) if api else None

    predict_ms = local.predict.p50 * 1e3 if local and local.predict.p50 is not None else None
    missing_local = (local.error if local and local.error else "U-Net not benchmarked") if predict_ms is None else ""
    overhead_ms = None
    if predict_ms is not None and local_api and local_api.rest_round_trip.p50 is not None:
        overhead_ms = local_api.rest_round_trip.p50 * 1e3 - predict_ms
    missing_api = "HTTP part not run" if api is None else (api.error or (local_api.error if local_api else None) or missing_local)
    ready = api.ready_s if api else None

    targets = []
    measured, ok = _check(predict_ms, UNET_PREDICT_P50_MS, "ms", missing_local)
    targets.append(Target("local U-Net predict p50 at 128x128 (in-process)", f"<= {UNET_PREDICT_P50_MS:.0f} ms", measured, ok))
    measured, ok = _check(overhead_ms, HTTP_OVERHEAD_MS, "ms", missing_api or "not measured")
    targets.append(Target("HTTP (REST) round trip p50 minus predict p50 (U-Net)", f"<= {HTTP_OVERHEAD_MS:.0f} ms", measured, ok))
    measured, ok = _check(ready, APP_READY_S, "s", (api.error if api else None) or "HTTP part not run")
    targets.append(Target("app ready: Popen -> GET / answers 200", f"<= {APP_READY_S:.0f} s", measured, ok))
    if data is not None:
        projected = data.projected_train_s / 60 if data.projected_train_s else None
        measured, ok = _check(projected, UNET_TRAIN_MIN, "min", "not measured")
        targets.append(Target("U-Net retraining on 2 CPU cores (projected from s/step)", f"<= {UNET_TRAIN_MIN:.0f} min", measured, ok))
    return targets
