"""The small detectors this project trains on ShapesWorld, built from torchvision's own classes.

The detection *heads* are torchvision's: ``FasterRCNN`` (two-stage: a region proposal network,
then RoIAlign and a box head) and ``FCOS`` (one-stage, anchor-free: every feature-map location
predicts a class and its distances to the four box sides). Only the backbone is ours: a plain
stack of 3x3 convolutions with batch norm that *trains* (the pretrained-backbone helpers freeze
it), topped by torchvision's feature pyramid. Both detectors share that backbone, so a student
who compares them compares the two families and nothing else.

Sizes are fitted to ShapesWorld at its native 128 px: objects are 10 to 75 px across, so the
pyramid has levels at strides 4, 8, 16 and 32, and the image is never upsampled (torchvision's
default of 800 px would make every step 20x slower for nothing).
"""

from __future__ import annotations

import inspect
from collections import OrderedDict
from dataclasses import asdict, dataclass

from torch import nn
from torchvision.models.detection import FCOS, FasterRCNN, KeypointRCNN, MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.keypoint_rcnn import KeypointRCNNHeads, KeypointRCNNPredictor
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class DetectorConfig:
    """Everything needed to rebuild a local detector; stored in its JSON card."""

    family: str  # "faster_rcnn" | "fcos" | "mask_rcnn" | "keypoint_rcnn"
    num_classes: int  # including background at index 0
    num_keypoints: int = 0  # keypoint_rcnn only
    widths: tuple[int, ...] = (16, 32, 64, 128)  # stem, then one stage per FPN input (strides 4, 8, 16)
    fpn_channels: int = 64
    image_size: int = 128  # min_size = max_size: scenes are processed at their native size
    box_head_width: int = 256  # Faster R-CNN's two-layer MLP after RoIAlign
    mask_roi_size: int = 14  # mask_rcnn only: the RoIAlign crop the mask head sees; masks are twice that

    def to_dict(self) -> dict:
        return {**asdict(self), "widths": list(self.widths)}

    @classmethod
    def from_dict(cls, d: dict) -> "DetectorConfig":
        return cls(**{**d, "widths": tuple(d["widths"])})


def conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ConvBackbone(nn.Sequential):
    """stem (stride 2) -> stage1 (4) -> stage2 (8) -> stage3 (16); each stage halves and widens.

    Named children, so torchvision's ``IntermediateLayerGetter`` can pick the stages for the FPN.
    """

    def __init__(self, widths: tuple[int, ...]) -> None:
        stem, *stages = widths
        layers: OrderedDict[str, nn.Module] = OrderedDict(stem=nn.Sequential(conv_bn(3, stem, 2), conv_bn(stem, stem)))
        previous = stem
        for i, width in enumerate(stages, start=1):
            layers[f"stage{i}"] = nn.Sequential(conv_bn(previous, width, 2), conv_bn(width, width), conv_bn(width, width))
            previous = width
        super().__init__(layers)


def backbone_with_fpn(config: DetectorConfig) -> BackboneWithFPN:
    stages = len(config.widths) - 1
    return BackboneWithFPN(
        ConvBackbone(config.widths),
        return_layers={f"stage{i}": str(i - 1) for i in range(1, stages + 1)},
        in_channels_list=list(config.widths[1:]),
        out_channels=config.fpn_channels,
        extra_blocks=LastLevelMaxPool(),  # one more level at stride 32 for the largest objects
    )


def pyramid_strides(config: DetectorConfig) -> tuple[int, ...]:
    """Stride of every FPN level: the stages (4, 8, 16, ...) plus the max-pooled extra level."""
    stages = len(config.widths) - 1
    return tuple(2 ** (i + 2) for i in range(stages + 1))


FAMILIES: dict[str, type[nn.Module]] = {"faster_rcnn": FasterRCNN, "mask_rcnn": MaskRCNN, "keypoint_rcnn": KeypointRCNN, "fcos": FCOS}
"""The torchvision class ``build_detector`` makes for each ``DetectorConfig.family``."""


def default_nms_iou(family: str) -> float:
    """The NMS IoU a detector of this family runs at: its class's default, which ``build_detector`` leaves as it is.

    Read from the constructor's signature, so a model picker knows it without building the network.
    """
    parameters = inspect.signature(FAMILIES[family]).parameters
    return float(parameters["box_nms_thresh" if "box_nms_thresh" in parameters else "nms_thresh"].default)


def build_detector(config: DetectorConfig) -> nn.Module:
    """A torchvision FasterRCNN or FCOS over the small backbone, sized for ShapesWorld."""
    backbone = backbone_with_fpn(config)
    strides = pyramid_strides(config)
    common = dict(
        min_size=config.image_size,
        max_size=config.image_size,
        image_mean=list(IMAGENET_MEAN),
        image_std=list(IMAGENET_STD),
    )
    if config.family in ("faster_rcnn", "mask_rcnn", "keypoint_rcnn"):
        return _two_stage(config, backbone, strides, common)
    if config.family == "fcos":
        # FCOS reads an anchor's size as its level's scale: level k regresses objects whose
        # farthest side lies 4x to 8x that size away, so sizes equal to the strides suit 10-75 px.
        anchors = AnchorGenerator(sizes=tuple((s,) for s in strides), aspect_ratios=((1.0,),) * len(strides))
        return FCOS(backbone, num_classes=config.num_classes, anchor_generator=anchors, **common)
    raise ValueError(f"unknown detector family {config.family!r}")


def _two_stage(config: DetectorConfig, backbone: BackboneWithFPN, strides: tuple[int, ...], common: dict) -> nn.Module:
    """Faster R-CNN, and its mask and keypoint variants: the same RPN and box head, plus one more RoI head."""
    # Anchors 3x the stride (12 px at stride 4 ... 96 px at stride 32), three aspect ratios:
    # that covers the 10-75 px shapes and the tall stick figures.
    anchors = AnchorGenerator(sizes=tuple((3 * s,) for s in strides), aspect_ratios=((0.5, 1.0, 2.0),) * len(strides))
    levels = [str(i) for i in range(len(strides) - 1)]
    channels = config.fpn_channels
    kwargs = dict(
        rpn_anchor_generator=anchors,
        box_roi_pool=MultiScaleRoIAlign(featmap_names=levels, output_size=7, sampling_ratio=2),
        box_head=TwoMLPHead(channels * 7 * 7, config.box_head_width),
        box_predictor=FastRCNNPredictor(config.box_head_width, config.num_classes),
        # Fewer proposals and sampled RoIs than the COCO defaults: a scene has at most 8 objects.
        rpn_pre_nms_top_n_train=600,
        rpn_post_nms_top_n_train=300,
        rpn_pre_nms_top_n_test=300,
        rpn_post_nms_top_n_test=100,
        rpn_batch_size_per_image=128,
        box_batch_size_per_image=128,
        **common,
    )
    if config.family == "faster_rcnn":
        return FasterRCNN(backbone, **kwargs)
    if config.family == "mask_rcnn":
        # Four 3x3 convolutions on a RoIAlign crop (14x14 as in the paper), then a transposed
        # convolution to a mask per class at twice that (28x28).
        return MaskRCNN(
            backbone,
            mask_roi_pool=MultiScaleRoIAlign(featmap_names=levels, output_size=config.mask_roi_size, sampling_ratio=2),
            mask_head=MaskRCNNHeads(channels, [channels] * 4, 1),
            mask_predictor=MaskRCNNPredictor(channels, channels, config.num_classes),
            **kwargs,
        )
    # Keypoint R-CNN: a 14x14 crop per person, convolutions, then one heatmap per keypoint (56x56).
    return KeypointRCNN(
        backbone,
        keypoint_roi_pool=MultiScaleRoIAlign(featmap_names=levels, output_size=14, sampling_ratio=2),
        keypoint_head=KeypointRCNNHeads(channels, [2 * channels] * 4),
        keypoint_predictor=KeypointRCNNPredictor(2 * channels, config.num_keypoints),
        **kwargs,
    )

