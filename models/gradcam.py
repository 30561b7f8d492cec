"""Grad-CAM on a transformer's cross-attention over image patches: where a text model looked in the image.

BLIP's own authors map their model this way: the last cross-attention weighted by how much the
text's log-probability depends on it, averaged over heads.
"""

from __future__ import annotations

import numpy as np
import torch


def gradcam(attentions: torch.Tensor, gradients: torch.Tensor, grid: tuple[int, int]) -> np.ndarray:
    """Grad-CAM on a cross-attention map: (heads, queries, 1 + patches) -> (queries, grid_h, grid_w).

    Each query's map is the heads' mean of attention x positive gradient, the ViT's [CLS] slot
    dropped, scaled to [0, 1] (an all-zero map stays zero).
    """
    weighted = (attentions * gradients.clamp(min=0)).mean(0)[:, 1:]
    maps = weighted.reshape(-1, *grid).float()
    peak = maps.flatten(1).amax(1).clamp(min=1e-12)[:, None, None]
    return (maps / peak).cpu().numpy()


def patch_grid(vision_config) -> tuple[int, int]:
    """The ViT's grid of patches (rows, columns), which a map over its patch tokens is reshaped to."""
    side = vision_config.image_size // vision_config.patch_size
    return side, side
