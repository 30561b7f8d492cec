"""Where the benchmarked pretrained models get their weights: a temporary, planted TORCH_HOME and HF_HOME.

No network here, yet the benchmark must load pretrained models through the app's real
download-and-load code. So, like the test suite, it plants random-init weights of the real
architectures (``models.planting``) where their library looks first: a checkpoint in a temporary
TORCH_HOME for torchvision, a snapshot in a temporary HF_HOME for Hugging Face repos (DETR), and
points the environment at both *before* anything loads. Latency and memory of a real
architecture do not depend on the values of its weights. With ``--torch-home`` / ``--hf-home``
an existing cache (real weights) is used instead.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import models
from models.planting import plant_random_weights
from models.sources import HuggingFaceWeights, OpenClipWeights, TorchvisionWeights

# Set for this process and the app subprocess, restored afterwards. HF_HUB_CACHE would take
# precedence over HF_HOME, so it is pointed at HF_HOME's hub folder too.
ENVIRONMENT = ("TORCH_HOME", "HF_HOME", "HF_HUB_CACHE", "DVL_OFFLINE", "HF_HUB_OFFLINE")


@dataclass
class WeightsSetup:
    torch_home: Path
    hf_home: Path
    existing: dict[str, Path] = field(default_factory=dict)  # variable -> a cache of the user's own (e.g. real weights)
    planted: dict[str, float] = field(default_factory=dict)  # model name -> seconds to plant it

    def describe(self) -> str:
        """One sentence for the report: where the pretrained weights came from."""
        parts = [f"the weights already in {var}={path}" for var, path in self.existing.items()]
        if self.planted:
            took = ", ".join(f"{n} {s:.1f} s" for n, s in self.planted.items())
            parts.append(f"random-init weights of the real architectures planted in a temporary cache (deleted afterwards) in {took}")
        return "Pretrained models: " + ("; ".join(parts) or "none in this run") + "."


@contextlib.contextmanager
def weights_for(names: list[str], torch_home: Path | None = None, hf_home: Path | None = None) -> Iterator[WeightsSetup]:
    """Set TORCH_HOME, HF_HOME and offline mode for this process and its children; undo it afterwards.

    Each cache not given is a temporary folder, deleted on exit, into which every model of
    ``names`` whose weights live there is planted.
    """
    saved = {key: os.environ.get(key) for key in ENVIRONMENT}
    planted_here = {TorchvisionWeights: torch_home is None, HuggingFaceWeights: hf_home is None, OpenClipWeights: hf_home is None}
    with contextlib.ExitStack() as stack:

        def temporary(variable: str) -> Path:
            return Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"dvl-bench-{variable.lower()}-")))

        given = {"TORCH_HOME": torch_home, "HF_HOME": hf_home}
        homes = {var: path.expanduser().resolve() if path else temporary(var) for var, path in given.items()}
        existing = {var: homes[var] for var, path in given.items() if path}
        setup = WeightsSetup(homes["TORCH_HOME"], homes["HF_HOME"], existing)
        for name in names:
            spec = models.spec(name)
            if planted_here.get(type(spec.source), False):
                start = time.perf_counter()
                plant_random_weights(spec, setup.torch_home, hf_home=setup.hf_home)
                setup.planted[name] = time.perf_counter() - start
        os.environ["TORCH_HOME"] = str(setup.torch_home)
        os.environ["HF_HOME"] = str(setup.hf_home)
        os.environ["HF_HUB_CACHE"] = str(setup.hf_home / "hub")
        os.environ["DVL_OFFLINE"] = "1"  # never download, never probe: the numbers must not include a network
        os.environ["HF_HUB_OFFLINE"] = "1"
        try:
            yield setup
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
