"""Plant random-init weights of a real pretrained architecture where its library looks first.

No network is reachable on the development and CI machines, yet the download-and-load code
must stay real. So tests and benchmarks write a checkpoint of the *real architecture* with
random weights into a (temporary) TORCH_HOME, then call the very loader the app calls. The
weights are random, so the outputs are meaningless, but shapes, categories, preprocessing,
latency and memory are exactly those of the real model.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .sources import TorchvisionWeights
from .spec import ModelSpec


def plant_random_weights(spec: ModelSpec, torch_home: Path, seed: int = 0) -> Path:
    """Write random-init weights for ``spec`` into ``torch_home/hub/checkpoints``; returns the file.

    ``torch_home`` must be what TORCH_HOME points to when the model is loaded.
    """
    source = spec.source
    if not isinstance(source, TorchvisionWeights):
        raise TypeError(f"{spec.name} is not a torchvision model; nothing to plant")
    torch.manual_seed(seed)
    model = source.untrained(aux_loss=True)  # torchvision's released segmentation checkpoints carry the aux head
    path = torch_home / "hub" / "checkpoints" / source.filename
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return path
