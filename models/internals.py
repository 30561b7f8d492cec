"""What a network computes on the way to its answer, for the teaching panels that show it.

A panel draws a model's internals (a two-stage detector's feature pyramid and the RoI pooler that
crops it); the network's own transform and backbone run here, in the model layer, so a panel only
does arithmetic on the plain tensors it gets back.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from PIL import Image
from torchvision.ops import MultiScaleRoIAlign

__all__ = ["PoolerInputs", "box_pooler", "pooler_inputs"]


@dataclass
class PoolerInputs:
    """What a two-stage detector's box RoI pooler receives for one image, and how the pooler is set."""

    features: dict[str, torch.Tensor]  # the pooled FPN levels in the pooler's order (finest first), each (C, H, W) float
    scales: list[float] | None  # the pooler's spatial scales (1 / stride), None until it has run once
    input_size: tuple[int, int]  # (height, width) of the network input after resizing, before batch padding
    output_size: tuple[int, int]
    sampling_ratio: int
    canonical_scale: int  # of the pooler's LevelMapper (FPN paper, Eqn. 1)
    canonical_level: int


def box_pooler(detector) -> MultiScaleRoIAlign:
    """The detector's box RoI pooler, or a clear ValueError for a model without one."""
    network = getattr(detector, "network", None)
    pooler = getattr(getattr(network, "roi_heads", None), "box_roi_pool", None)
    if not isinstance(pooler, MultiScaleRoIAlign):
        raise ValueError(
            "This model has no RoI pooler: one-stage detectors (FCOS, RetinaNet, SSD) and DETR predict from the whole "
            "feature map. Pick a two-stage model (Faster or Mask R-CNN)."
        )
    return pooler


@torch.inference_mode()
def pooler_inputs(detector, image: Image.Image) -> PoolerInputs:
    """``image`` through ``detector``'s own transform and backbone: the feature levels its box pooler reads."""
    pooler = box_pooler(detector)
    network = detector.network
    images, _ = network.transform([detector.preprocess(image)])
    height, width = (int(v) for v in images.image_sizes[0])
    features = network.backbone(images.tensors)
    return PoolerInputs(
        features={name: features[name][0].float() for name in features if name in pooler.featmap_names},
        scales=list(pooler.scales) if pooler.scales else None,
        input_size=(height, width),
        output_size=tuple(int(v) for v in pooler.output_size),
        sampling_ratio=int(pooler.sampling_ratio),
        canonical_scale=int(pooler.canonical_scale),
        canonical_level=int(pooler.canonical_level),
    )
