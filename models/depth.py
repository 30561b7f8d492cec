"""Monocular depth estimation: one wrapper for both tiers, and their registry entries.

``DepthEstimator`` takes a PIL image and returns a ``DepthMap`` at the image's size, saying what
its numbers are:

- the pretrained models (Depth Anything V2 Small, DPT-Large) run through transformers exactly as
  its documentation does it, ``AutoImageProcessor`` -> ``AutoModelForDepthEstimation`` ->
  ``post_process_depth_estimation(outputs, target_sizes=...)`` (what ``pipeline("depth-estimation")``
  returns as ``predicted_depth``). They were trained, MiDaS-style, on a loss that ignores scale and
  shift, so their output is *relative inverse depth* (disparity): larger is nearer, and only up to
  an unknown scale and shift;
- the local U-Net (``models/nets/unet.py`` with coordinate channels) regresses log-depth on
  ShapesWorld, so its output is depth in ShapesWorld's units (the ground runs from 10 to 2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from .depth_metrics import DEPTH, DISPARITY
from .nets.unet import UNet, UNetConfig
from .sources import HuggingFaceWeights, LocalWeights
from .spec import ModelSpec, local_spec

TASK = "depth"
DEPTH_ANYTHING_SMALL = "depth-anything/Depth-Anything-V2-Small-hf"
DPT_LARGE = "Intel/dpt-large"
MEAN = (0.485, 0.456, 0.406)  # the local U-Net's input normalisation (ImageNet's), also in its card
STD = (0.229, 0.224, 0.225)


@dataclass
class DepthMap:
    """A model's map at the input image's size, and what its numbers mean."""

    values: np.ndarray  # float32 HxW
    kind: str  # depth_metrics.DEPTH (larger = farther) or depth_metrics.DISPARITY (larger = nearer, relative)
    model: str = ""

    @property
    def range(self) -> tuple[float, float]:
        return float(self.values.min()), float(self.values.max())

    @property
    def nearer_is_larger(self) -> bool:
        return self.kind != DEPTH


class DepthEstimator(nn.Module):
    """A depth network plus its preprocessing and postprocessing: PIL image in, ``DepthMap`` out."""

    kind = DEPTH

    def __init__(self, network: nn.Module, name: str) -> None:
        super().__init__()
        self.network = network
        self.name = name
        self.eval()

    def forward(self, image: Image.Image) -> DepthMap:
        return self.forward_batch([image])[0]

    def forward_batch(self, images: list[Image.Image]) -> list[DepthMap]:
        return [DepthMap(self.predict(image.convert("RGB")), self.kind, self.name) for image in images]

    def predict(self, image: Image.Image) -> np.ndarray:
        raise NotImplementedError


class LocalDepth(DepthEstimator):
    """The local U-Net at its native size: the image is resized to it, and the depth back to the image's size.

    ShapesWorld's objects have a known size range and the ground's depth is tied to the image row,
    so the network sees every image at the scale it was trained on.
    """

    def __init__(self, network: UNet, name: str, size: int, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__(network, name)
        self.size = size
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 or [0, 1] float (B,3,H,W) at the native size -> the network's input (the trainer uses this too)."""
        images = images.float() / 255 if images.dtype == torch.uint8 else images
        return (images - self.mean) / self.std

    @torch.inference_mode()
    def predict(self, image: Image.Image) -> np.ndarray:
        param = next(self.network.parameters())
        x = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)[None].to(param.device)
        x = F.interpolate(x.float() / 255, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False)
        log_depth = self.network(self.normalise(x.clamp(0, 1)).to(param.dtype)).float()
        log_depth = F.interpolate(log_depth, size=(image.height, image.width), mode="bilinear", align_corners=False)
        return log_depth[0, 0].exp().cpu().numpy().astype(np.float32)


class HuggingFaceDepth(DepthEstimator):
    """A transformers depth model with its image processor, run as the library documents it."""

    kind = DISPARITY

    def __init__(self, network: nn.Module, processor, name: str) -> None:
        super().__init__(network, name)
        self.processor = processor

    @torch.inference_mode()
    def predict(self, image: Image.Image) -> np.ndarray:
        param = next(self.network.parameters())
        inputs = self.processor(images=image, return_tensors="pt").to(param.device)
        outputs = self.network(pixel_values=inputs["pixel_values"].to(param.dtype))
        outputs.predicted_depth = outputs.predicted_depth.float()
        post = self.processor.post_process_depth_estimation(outputs, target_sizes=[(image.height, image.width)])
        return post[0]["predicted_depth"].cpu().numpy().astype(np.float32)


def _load_local(spec: ModelSpec) -> LocalDepth:
    source: LocalWeights = spec.source  # type: ignore[assignment]
    state = source.state_dict()  # first: a missing file must say how to train it
    card = source.card()
    network = UNet(UNetConfig.from_dict(card["config"]))
    network.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    pre = card["preprocessing"]
    return LocalDepth(network, spec.name, pre["native_size"], tuple(pre["mean"]), tuple(pre["std"]))


def _load_hugging_face(spec: ModelSpec) -> HuggingFaceDepth:
    from transformers import AutoImageProcessor, AutoModelForDepthEstimation

    source: HuggingFaceWeights = spec.source  # type: ignore[assignment]
    network, processor = source.build(AutoModelForDepthEstimation, AutoImageProcessor)
    return HuggingFaceDepth(network, processor, spec.name)


def specs() -> list[ModelSpec]:
    """Depth models: DPT-Large (best, for a GPU), Depth Anything V2 Small (the CPU default), the local U-Net."""
    relative = "relative inverse depth (disparity): aligned by scale and shift before scoring"
    return [
        ModelSpec(
            name="dpt-large",
            task=TASK,
            tier="pretrained",
            title="DPT-Large (MiDaS 3.0)",
            source=HuggingFaceWeights(DPT_LARGE),
            license="Apache-2.0 (Intel/dpt-large); trained on MIX-6 (1.4 M images, 10 datasets)",
            params=343_030_465,
            load=_load_hugging_face,
            metrics={"output": relative, "zero-shot NYUv2 δ>1.25 error % (paper, aligned)": 8.46},
            about="`transformers.DPTForDepthEstimation` (ViT-L/16 at 384 px) · `post_process_depth_estimation`",
            input_size=384,
        ),
        ModelSpec(
            name="depth-anything-v2-small",
            task=TASK,
            tier="pretrained",
            title="Depth Anything V2 Small",
            source=HuggingFaceWeights(DEPTH_ANYTHING_SMALL),
            license="Apache-2.0 (depth-anything/Depth-Anything-V2-Small-hf); taught by a ViT-G teacher on 62 M pseudo-labelled images",
            params=24_785_089,
            load=_load_hugging_face,
            metrics={"output": relative, "zero-shot NYUv2 δ1 (paper, aligned)": 0.973, "abs rel": 0.053},
            about="`transformers.DepthAnythingForDepthEstimation` (DINOv2 ViT-S + DPT head, 518 px) · `post_process_depth_estimation`",
            fast_on_cpu=True,
            input_size=518,
        ),
        local_spec(
            TASK, "unet-depth-shapes", "Depth U-Net (ShapesWorld)", _load_local,
            {"ShapesWorld test δ1": "delta1", "ShapesWorld test abs rel": "abs_rel"},
            "`models/nets/unet.py` with coordinate channels, regressing log-depth; trained by `python -m models train unet-depth-shapes`",
        ),
    ]
