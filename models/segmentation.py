"""Semantic segmentation models: one wrapper for both tiers, and their registry entries.

``Segmenter`` carries the network, its preprocessing and its categories. The pretrained models
take theirs from torchvision's weights metadata (``weights.transforms()``, ``meta["categories"]``);
the local U-Net takes them from its JSON card. Both then run the same ``predict``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torchvision.models import segmentation as tv_seg
from torchvision.transforms._presets import SemanticSegmentation

from .batching import same_size_groups
from .nets.unet import UNet, UNetConfig
from .sources import LocalWeights, TorchvisionWeights
from .spec import ModelSpec, local_spec, torchvision_spec

@dataclass
class SegmentationOutput:
    labels: np.ndarray  # HxW uint8/int class index per pixel, at the input image's size
    confidence: np.ndarray  # HxW float32, the winning class's softmax probability
    categories: list[str]


class Segmenter(nn.Module):
    """A segmentation network plus its preprocessing: PIL image in, per-pixel classes out."""

    def __init__(self, network: nn.Module, categories: list[str], transform: nn.Module, size_multiple: int = 1) -> None:
        super().__init__()
        self.network = network
        self.categories = list(categories)
        self.transform = transform
        self.size_multiple = size_multiple

    def preprocess(self, image: Image.Image) -> tuple[torch.Tensor, tuple[int, int]]:
        """Normalised (1,3,H,W) tensor padded so H and W divide ``size_multiple``, and the size before padding."""
        x = self.transform(image).unsqueeze(0)
        size = (x.shape[-2], x.shape[-1])
        pad_h = -size[0] % self.size_multiple
        pad_w = -size[1] % self.size_multiple
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        param = next(self.network.parameters())
        return x.to(param.device, param.dtype), size

    def forward(self, image: Image.Image) -> SegmentationOutput:
        return self.forward_batch([image])[0]

    @torch.inference_mode()
    def forward_batch(self, images: list[Image.Image]) -> list[SegmentationOutput]:
        """Several images, one network call per image size (``same_size_groups``): a Serve replica's dynamic batch."""
        outputs: list[SegmentationOutput | None] = [None] * len(images)
        for indices in same_size_groups(images):
            prepared = [self.preprocess(images[i]) for i in indices]
            logits = self.network(torch.cat([x for x, _ in prepared]))
            if isinstance(logits, dict):  # torchvision's models return {"out": ..., "aux": ...}
                logits = logits["out"]
            for row, i in enumerate(indices):
                outputs[i] = self._postprocess(logits[row : row + 1], prepared[row][1], images[i])
        return outputs  # type: ignore[return-value]

    def _postprocess(self, logits: torch.Tensor, size: tuple[int, int], image: Image.Image) -> SegmentationOutput:
        """(1, C, h, w) logits -> classes and confidence at the image's size, padding dropped."""
        height, width = size
        logits = logits[..., :height, :width].float()
        logits = F.interpolate(logits, size=(image.height, image.width), mode="bilinear", align_corners=False)
        confidence, labels = logits.softmax(1)[0].max(0)
        return SegmentationOutput(labels.byte().cpu().numpy(), confidence.cpu().numpy(), self.categories)


def unet_segmenter(
    network: UNet, classes: list[str], mean: tuple[float, ...], std: tuple[float, ...], resize_to: int | None = None,
) -> Segmenter:
    """A U-Net at its native resolution, padded to a multiple of its downsampling.

    ``resize_to``: the shorter side is resized to this first (a U-Net trained in the page on 64-px
    scenes sees a 128-px scene's shapes at the size it learned them); the classes come back at the
    image's size.
    """
    transform = SemanticSegmentation(resize_size=resize_to, mean=tuple(mean), std=tuple(std))
    return Segmenter(network, classes, transform, size_multiple=network.downsampling)


def _load_unet(spec: ModelSpec) -> Segmenter:
    source: LocalWeights = spec.source  # type: ignore[assignment]
    state = source.state_dict()  # first: a missing file must say how to train it
    card = source.card()
    network = UNet(UNetConfig.from_dict(card["config"]))
    network.load_state_dict(state)
    preprocessing = card["preprocessing"]
    return unet_segmenter(network, spec.labels.categories, preprocessing["mean"], preprocessing["std"], preprocessing.get("resize_to"))


def _load_torchvision(spec: ModelSpec) -> Segmenter:
    source: TorchvisionWeights = spec.source  # type: ignore[assignment]
    return Segmenter(source.build(), spec.labels.categories, source.weights.transforms())


def _pretrained_spec(name: str, title: str, weights, builder, fast_on_cpu: bool = False) -> ModelSpec:
    return torchvision_spec(
        "segmentation", name, title, weights, builder, load=_load_torchvision, trained_on="COCO train2017, VOC's 20 classes",
        benchmark="COCO-val2017-VOC-labels", metrics={"COCO-val2017 (VOC labels) mIoU": "miou", "pixel acc": "pixel_acc"}, fast_on_cpu=fast_on_cpu,
    )


def trained_spec(name: str, title: str, directory: Path) -> ModelSpec:
    """A U-Net trained in the Train tab, its weights and card in ``directory``: the same loader as the shipped one."""
    return local_spec("segmentation", name, title, _load_unet, {"validation mIoU (50 scenes)": "mean_iou"}, "trained in the page (Train tab)", directory=directory)


def specs() -> list[ModelSpec]:
    """Segmentation models, best first: the picker defaults to the first one that can run here."""
    W = tv_seg
    return [
        _pretrained_spec("deeplabv3-resnet50", "DeepLabV3 ResNet-50", W.DeepLabV3_ResNet50_Weights.DEFAULT, W.deeplabv3_resnet50),
        _pretrained_spec("deeplabv3-resnet101", "DeepLabV3 ResNet-101", W.DeepLabV3_ResNet101_Weights.DEFAULT, W.deeplabv3_resnet101),
        _pretrained_spec(
            "deeplabv3-mobilenet", "DeepLabV3 MobileNetV3-Large", W.DeepLabV3_MobileNet_V3_Large_Weights.DEFAULT, W.deeplabv3_mobilenet_v3_large,
            fast_on_cpu=True,
        ),
        _pretrained_spec("fcn-resnet50", "FCN ResNet-50", W.FCN_ResNet50_Weights.DEFAULT, W.fcn_resnet50),
        _pretrained_spec("lraspp-mobilenet", "LR-ASPP MobileNetV3-Large", W.LRASPP_MobileNet_V3_Large_Weights.DEFAULT, W.lraspp_mobilenet_v3_large),
        local_spec(
            "segmentation", "unet-shapes", "U-Net (ShapesWorld)", _load_unet, {"ShapesWorld test mIoU": "mean_iou"},
            "`models/nets/unet.py`, trained by `python -m models train unet-shapes`",
        ),
    ]
