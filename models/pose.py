"""Pose models: Keypoint R-CNN on both tiers, through the detectors' own wrapper.

A Keypoint R-CNN is a Faster R-CNN for one class (person) with one more RoI head that predicts
a heatmap per keypoint, so it runs through ``models.detection.Detector`` unchanged: the raw
candidates carry their keypoints, and the wrapper carries the keypoint names and skeleton
(COCO's 17 for the pretrained model, ShapesWorld's 14 from the local model's card), which its
spec's ``labels`` also gives before the weights are here.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torchvision.models import detection as tv_det
from torchvision.ops import box_iou

import shapesworld

from .detection import Detector, local_spec, pretrained_spec
from .spec import ModelSpec

TASK = "pose"


def specs() -> list[ModelSpec]:
    W = tv_det
    return [
        pretrained_spec(
            TASK, "keypointrcnn-resnet50", "Keypoint R-CNN ResNet-50 FPN", W.KeypointRCNN_ResNet50_FPN_Weights.DEFAULT, W.keypointrcnn_resnet50_fpn,
            "two-stage + keypoint head", fast_on_cpu=True,
        ),
        local_spec(
            TASK, "keypointrcnn-shapes", "Keypoint R-CNN (ShapesWorld)", "two-stage + keypoint head",
            {"ShapesWorld test PCK@0.1": "pck_0.1", "person box AP@0.5": "map_50"},
        ),
    ]


@torch.inference_mode()
def keypoint_heatmaps(detector: Detector, image: Image.Image, boxes: np.ndarray) -> np.ndarray:
    """Keypoint R-CNN's heatmap logits (N, K, 56, 56) for person ``boxes`` (image pixels), through its own RoI heads.

    The same steps as the network's forward pass for these boxes: resize and normalise, backbone
    and FPN, RoIAlign on the keypoint pooler, the keypoint head and its upsampling predictor. The
    keypoint is where a heatmap peaks, so showing one is showing where the model looked.
    """
    network = detector.network
    if not getattr(network.roi_heads, "has_keypoint", lambda: False)():
        raise ValueError("Heatmaps come from a Keypoint R-CNN; pick one.")
    images, _ = network.transform([detector.preprocess(image)])
    features = network.backbone(images.tensors)
    height, width = images.image_sizes[0]
    scale = torch.tensor([width / image.width, height / image.height] * 2)
    param = next(network.parameters())
    resized = (torch.from_numpy(boxes).float() * scale).to(param.device, param.dtype)
    heads = network.roi_heads
    pooled = heads.keypoint_roi_pool(features, [resized], images.image_sizes)
    return heads.keypoint_predictor(heads.keypoint_head(pooled)).float().cpu().numpy()


def pck(
    true_boxes: np.ndarray, true_keypoints: np.ndarray, pred_boxes: np.ndarray, pred_keypoints: np.ndarray, alpha: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
    """Per visible true keypoint: found (bool) and its keypoint index, for one image.

    Each true person is matched to the unused prediction with the highest box IoU (at least 0.5;
    predictions come best-score first); an unmatched person's keypoints all count as missed. A
    keypoint is found when it lies within ``alpha`` x the true box's longer side of the truth.
    """
    found, which = [], []
    ious = box_iou(torch.from_numpy(true_boxes).float(), torch.from_numpy(pred_boxes).float()).numpy() if len(pred_boxes) else None
    used: set[int] = set()
    for t, (box, keypoints) in enumerate(zip(true_boxes, true_keypoints)):
        visible = np.flatnonzero(keypoints[:, 2] == shapesworld.vocab.VISIBLE)
        match = None
        if ious is not None:
            for p in np.argsort(-ious[t], kind="stable"):
                if ious[t, p] >= 0.5 and int(p) not in used:
                    match = int(p)
                    break
        if match is None:
            found.extend([False] * len(visible))
        else:
            used.add(match)
            limit = alpha * max(box[2] - box[0], box[3] - box[1])
            distance = np.linalg.norm(pred_keypoints[match, visible, :2] - keypoints[visible, :2], axis=1)
            found.extend((distance <= limit).tolist())
        which.extend(visible.tolist())
    return np.array(found, bool), np.array(which, int)
