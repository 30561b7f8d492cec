"""Latency samples and their summary: the one place that decides what "p50" and "p95" mean.

Percentiles use linear interpolation between order statistics (numpy's default), so with few
samples p95 sits between the two slowest runs instead of jumping to the maximum.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np


@dataclass
class Samples:
    """Wall-clock durations in seconds of repeated runs of one operation (after any warm-up)."""

    seconds: list[float] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.seconds)

    def percentile(self, q: float) -> float | None:
        return float(np.percentile(self.seconds, q)) if self.seconds else None

    @property
    def p50(self) -> float | None:
        return self.percentile(50)

    @property
    def p95(self) -> float | None:
        return self.percentile(95)

    def summary(self) -> dict:
        """The numbers the report and the JSON file use, raw samples included."""
        return {"n": self.n, "p50_s": self.p50, "p95_s": self.p95, "samples_s": list(self.seconds)}


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    """Run ``fn`` once; its wall-clock duration (perf_counter) and its result."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def repeat(fn: Callable[[int], object], repeats: int, warmup: int = 0) -> Samples:
    """Time ``fn(i)`` ``repeats`` times after ``warmup`` untimed calls; ``i`` counts all calls.

    The index lets a caller vary the input per call (e.g. a fresh image per HTTP request, so
    a server-side cache cannot answer).
    """
    for i in range(warmup):
        fn(i)
    samples = Samples()
    for i in range(warmup, warmup + repeats):
        duration, _ = timed(lambda: fn(i))
        samples.seconds.append(duration)
    return samples


def seconds(fn) -> float:
    """Wall time of one call of ``fn``, with a GPU's queued work finished before and after."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start
