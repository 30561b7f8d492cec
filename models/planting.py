"""Plant random-init weights of a real pretrained architecture where its library looks first.

No network is reachable on the development and CI machines, yet the download-and-load code
must stay real. So tests and benchmarks write a checkpoint of the *real architecture* with
random weights into a (temporary) TORCH_HOME, or a snapshot into a (temporary) Hugging Face
cache under the real repo id, then call the very loader the app calls. The weights are random,
so the outputs are meaningless, but shapes, categories, preprocessing, latency and memory are
exactly those of the real model.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

import torch

from .sources import HuggingFaceWeights, TorchvisionWeights
from .spec import ModelSpec


def plant_random_weights(spec: ModelSpec, torch_home: Path | None = None, seed: int = 0, hf_home: Path | None = None) -> Path:
    """Write random-init weights for ``spec`` where its library looks; returns the file or snapshot folder.

    torchvision models go to ``torch_home/hub/checkpoints`` (``torch_home`` must be what TORCH_HOME
    points to when the model is loaded); Hugging Face repos to ``hf_home/hub`` (HF_HOME's layout).
    """
    source = spec.source
    if isinstance(source, HuggingFaceWeights):
        if hf_home is None:
            raise ValueError(f"{spec.name} is a Hugging Face model: give hf_home")
        return plant_hugging_face_snapshot(source, hf_home / "hub", seed)
    if not isinstance(source, TorchvisionWeights) or torch_home is None:
        raise TypeError(f"{spec.name}: nothing to plant in a TORCH_HOME")
    torch.manual_seed(seed)
    model = source.untrained(aux_loss=True)  # torchvision's released segmentation checkpoints carry the aux head
    path = torch_home / "hub" / "checkpoints" / source.filename
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return path


def _detr_resnet50() -> list:
    """DETR as ``facebook/detr-resnet-50`` publishes it: the legacy timm-backbone config, COCO's 91 ids."""
    from torchvision.models.detection import FasterRCNN_ResNet50_FPN_Weights
    from transformers import DetrConfig, DetrForObjectDetection, DetrImageProcessor

    coco = ["N/A" if name == "__background__" else name for name in FasterRCNN_ResNet50_FPN_Weights.DEFAULT.meta["categories"]]
    config = DetrConfig(
        use_timm_backbone=True,
        backbone="resnet50",
        use_pretrained_backbone=True,
        id2label=dict(enumerate(coco)),
        label2id={name: i for i, name in enumerate(coco)},
    )
    return [DetrForObjectDetection(config), DetrImageProcessor()]  # processor: 800/1333 resize, ImageNet mean/std


PUBLISHED: dict[str, Callable[[], list]] = {"facebook/detr-resnet-50": _detr_resnet50}
"""Repo id -> random-init objects (model, processor, ...) with the published configuration."""


def plant_hugging_face_snapshot(source: HuggingFaceWeights, hub_cache: Path, seed: int = 0) -> Path:
    """A snapshot of ``source.repo_id`` in Hugging Face's cache layout, as a download would leave it.

    ``hub_cache/models--org--name/snapshots/<commit>/`` holds what ``save_pretrained`` writes, and
    ``refs/<revision>`` names the commit, which is where ``from_pretrained`` looks offline.
    """
    torch.manual_seed(seed)
    repo = hub_cache / f"models--{source.repo_id.replace('/', '--')}"
    commit = hashlib.sha1(f"{source.repo_id}@{source.revision}:{seed}".encode()).hexdigest()
    snapshot = repo / "snapshots" / commit
    for part in PUBLISHED[source.repo_id]():
        part.save_pretrained(snapshot)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / source.revision).write_text(commit)
    return snapshot
