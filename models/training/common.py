"""Pieces every trainer shares: seeding, timing, saving weights with their JSON card."""

from __future__ import annotations

import json
import platform
import random
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from models.sources import WEIGHTS_DIR


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class TrainLog:
    """Prints progress to stdout (and so to a log file) with elapsed time, at most every ``every`` s."""

    every: float = 15.0
    start: float = field(default_factory=time.perf_counter)
    _last: float = 0.0

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def step(self, step: int, total: int, **values: float) -> None:
        if self.elapsed - self._last < self.every and step != total:
            return
        self._last = self.elapsed
        shown = " ".join(f"{k}={v:.4f}" for k, v in values.items())
        print(f"[{self.elapsed:7.1f}s] step {step}/{total} {shown}", flush=True)


def trained_on(model: torch.nn.Module) -> str:
    """Where the run happened, for the card: a GPU's name, or the CPU thread count it was given."""
    device = next(model.parameters()).device
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} CPU threads"
    return f"{platform.machine()}, {where}, torch {torch.__version__}"


def save_checkpoint(model: torch.nn.Module, name: str, card: dict, directory: Path = WEIGHTS_DIR, half: bool = False) -> Path:
    """Write ``<name>.safetensors`` and its card ``<name>.json`` (command, seed, time, params, metrics).

    ``half`` stores floating-point tensors as float16 (loaders convert back to float32).
    """
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    path = directory / f"{name}.safetensors"
    save_file(state, str(path))
    full_card = {
        "name": name,
        "command": "python -m models " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "parameters": sum(p.numel() for p in model.parameters()),
        "file_bytes": path.stat().st_size,
        "file_dtype": "float16" if half else "float32",
        "trained_on": trained_on(model),
        **card,
    }
    (directory / f"{name}.json").write_text(json.dumps(full_card, indent=2) + "\n")
    return path


def bf16_autocast_pays() -> bool:
    """bf16 autocast pays on CPUs with native bf16 instructions (AVX512-BF16 or AMX), and costs elsewhere."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags
