"""Memory readings and the machine's conditions, so every table says what it was measured on.

RSS is process-wide: whatever this process has loaded so far counts. That is why the report
gives the RSS *after* each model load (cumulative), the growth of that load, and the peak while
predicting. The per-phase peak uses Linux's resettable high-water mark (writing 5 to
/proc/self/clear_refs resets VmHWM); where that is not possible the process-lifetime peak
(``getrusage(...).ru_maxrss``) is all there is, and the report says which one it shows.
"""

from __future__ import annotations

import os
import platform
import resource
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil
import torch

MB = 2**20


def rss_bytes(pid: int | None = None) -> int:
    """Current resident set size of this process (or ``pid``)."""
    return psutil.Process(pid).memory_info().rss


def process_peak_bytes() -> int:
    """Peak RSS of this process over its whole life (Linux reports ru_maxrss in KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def reset_peak(pid: int | str = "self") -> bool:
    """Reset the RSS high-water mark of a process so the next reading covers one phase only."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_since_reset(pid: int | str = "self") -> int | None:
    """VmHWM (peak RSS since start or since the last ``reset_peak``), or None off Linux."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


@dataclass
class MachineConditions:
    cpus: int
    torch_threads: int
    nice: int  # scheduling niceness of this process and the app: higher than a busy neighbour's gets a sliver of a core
    torch_version: str
    device: str
    python: str
    platform: str
    load_average: tuple[float, float, float]
    memory_total_mb: int
    memory_available_mb: int
    busy_processes: list[str]  # other processes using noticeable CPU while the bench started

    def describe(self) -> str:
        busy = "; ".join(self.busy_processes) or "none seen"
        load = ", ".join(f"{x:.2f}" for x in self.load_average)
        return (
            f"{self.cpus} CPUs, torch {self.torch_version} on {self.device}, torch threads: {self.torch_threads}, "
            f"nice {self.nice}, Python {self.python}, {self.platform}; RAM {self.memory_available_mb} of {self.memory_total_mb} MB free; "
            f"load average {load}; other busy processes at start: {busy}"
        )

    def to_dict(self) -> dict:
        return asdict(self)


def busy_processes(sample_seconds: float = 1.0, threshold_percent: float = 20.0) -> list[str]:
    """Other processes that used more than ``threshold_percent`` of one core during a short sample.

    A benchmark on a shared 2-core machine is only meaningful if we know nothing else was running.
    """
    me = os.getpid()
    procs = [p for p in psutil.process_iter(["pid", "name", "cmdline"]) if p.info["pid"] != me]
    for p in procs:
        try:
            p.cpu_percent(None)
        except psutil.Error:
            pass
    time.sleep(sample_seconds)
    busy = []
    for p in procs:
        try:
            percent = p.cpu_percent(None)
        except psutil.Error:
            continue
        if percent >= threshold_percent:
            command = " ".join(p.info["cmdline"] or [p.info["name"] or "?"])[:90]
            busy.append(f"pid {p.info['pid']} at {percent:.0f}% CPU: {command}")
    return busy


def load_average() -> tuple[float, float, float]:
    return tuple(round(x, 2) for x in os.getloadavg())  # type: ignore[return-value]


def describe_now() -> str:
    """Load and other busy processes right now: said again at the end, since a run takes minutes."""
    busy = "; ".join(busy_processes()) or "none seen"
    return f"load average {', '.join(f'{x:.2f}' for x in load_average())}; other busy processes: {busy}"


def conditions(device: str) -> MachineConditions:
    memory = psutil.virtual_memory()
    return MachineConditions(
        cpus=os.cpu_count() or 0,
        torch_threads=torch.get_num_threads(),
        nice=os.nice(0),
        torch_version=torch.__version__,
        device=device,
        python=platform.python_version(),
        platform=platform.platform(terse=True),
        load_average=load_average(),
        memory_total_mb=memory.total // MB,
        memory_available_mb=memory.available // MB,
        busy_processes=busy_processes(),
    )
