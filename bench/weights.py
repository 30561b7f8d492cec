"""Where the benchmarked pretrained models get their weights: a temporary, planted TORCH_HOME.

No network here, yet the benchmark must load pretrained models through the app's real
download-and-load code. So, like the test suite, it plants random-init checkpoints of the real
architectures (``models.planting``) into a temporary TORCH_HOME and points the environment at
it *before* anything loads. Latency and memory of a real architecture do not depend on the
values of its weights. With ``--torch-home`` an existing cache (real weights) is used instead.
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
from models.sources import TorchvisionWeights


@dataclass
class WeightsSetup:
    torch_home: Path
    existing: bool  # True: a cache the user named (e.g. real weights); False: planted here
    planted: dict[str, float] = field(default_factory=dict)  # model name -> seconds to plant it

    @property
    def kind(self) -> str:
        if self.existing:
            return "the weights already in this TORCH_HOME"
        return "planted random-init weights of the real architectures" if self.planted else "none in this run"


@contextlib.contextmanager
def torch_home_for(names: list[str], existing: Path | None = None) -> Iterator[WeightsSetup]:
    """Set TORCH_HOME (and offline mode) for this process and its children; undo it afterwards.

    Without ``existing``, plants every torchvision model in ``names`` into a temporary folder
    that is deleted on exit.
    """
    saved = {key: os.environ.get(key) for key in ("TORCH_HOME", "DVL_OFFLINE", "HF_HUB_OFFLINE")}
    with contextlib.ExitStack() as stack:
        if existing is not None:
            setup = WeightsSetup(existing.resolve(), existing=True)
        else:
            home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dvl-bench-torch-home-")))
            setup = WeightsSetup(home, existing=False)
            for name in names:
                spec = models.spec(name)
                if isinstance(spec.source, TorchvisionWeights):
                    start = time.perf_counter()
                    plant_random_weights(spec, home)
                    setup.planted[name] = time.perf_counter() - start
        os.environ["TORCH_HOME"] = str(setup.torch_home)
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
