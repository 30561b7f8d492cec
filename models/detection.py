"""Object detection models: one wrapper for every detector, both tiers, and their registry entries.

``Detector`` runs a network once per image and keeps its *raw* candidates: every box above a
low score floor, before non-maximum suppression. ``select`` then applies the user's score
threshold, class filter, NMS IoU and maximum count, exactly as the library's own
post-processing would, so moving a slider re-filters cached candidates and never re-runs the
network. The pretrained torchvision detectors take their categories and input transform from
the weights' metadata; DETR takes them from its Hugging Face config and image processor; the
local detectors from their JSON card.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image
from torch import nn
from torchvision.models import detection as tv_det
from torchvision.ops import batched_nms
from torchvision.transforms._presets import ObjectDetection

from .batching import same_size_groups
from .nets.detection import DetectorConfig, build_detector, default_nms_iou
from .sources import HuggingFaceWeights, Labels, LocalWeights, TorchvisionWeights
from .spec import ModelSpec, local_spec as local_model_spec, torchvision_spec

SCORE_FLOOR = 0.05
"""Candidates below this score are dropped inside the network; the score slider starts here."""
RAW_LIMIT = 100_000
"""At most this many raw candidates are kept per image: in effect all of them. NMS may discard most
candidates, so a smaller cap before it changes what the library returns at a low score threshold and
a high maximum count (1000 capped Faster R-CNN's 2000 candidates: 621 detections instead of 1000)."""
RAW_LIMIT_PER_INSTANCE = 100
"""Fewer for Mask and Keypoint R-CNN, which paste a full-size mask or decode a heatmap per candidate."""

@dataclass
class RawDetections:
    """Every candidate of one image above SCORE_FLOOR, before NMS, in the image's pixel coordinates."""

    boxes: np.ndarray  # (N, 4) float32, x0 y0 x1 y1
    scores: np.ndarray  # (N,) float32
    labels: np.ndarray  # (N,) int64, indices into categories
    categories: list[str]
    image_size: tuple[int, int]  # (width, height)
    uses_nms: bool = True  # DETR predicts a set: no NMS
    default_nms_iou: float = 0.5  # the library's own default for this model
    masks: np.ndarray | None = None  # Mask R-CNN: (N, H, W) uint8, mask probability x 255 at the image's size
    keypoints: np.ndarray | None = None  # Keypoint R-CNN: (N, K, 2) x, y in pixels
    keypoint_scores: np.ndarray | None = None  # (N, K) the heatmap's peak logit per keypoint


@dataclass
class Detections:
    """The detections left after thresholds and NMS, best first; ``index`` points into the raw arrays."""

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    index: np.ndarray
    categories: list[str]
    masks: np.ndarray | None = None
    keypoints: np.ndarray | None = None
    keypoint_scores: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.scores)

    def records(self) -> list[dict]:
        """JSON-ready rows: label, score, box (x0, y0, x1, y1) in pixels."""
        return [
            {"label": self.categories[int(c)], "category_id": int(c), "score": round(float(s), 4), "box": [round(float(v), 1) for v in b]}
            for b, s, c in zip(self.boxes, self.scores, self.labels)
        ]


def select(
    raw: RawDetections,
    score_threshold: float = 0.5,
    nms_iou: float | None = None,
    classes: set[int] | None = None,
    max_detections: int = 100,
) -> Detections:
    """The library's post-processing, on cached candidates: score filter, per-class NMS, top-k.

    Scores must exceed the threshold strictly, as in torchvision and transformers. ``nms_iou``
    None means the model's own default; models that do not use NMS (DETR) ignore it.
    """
    keep = np.flatnonzero(raw.scores > score_threshold)
    if classes is not None:
        keep = keep[np.isin(raw.labels[keep], sorted(classes))]
    if raw.uses_nms and len(keep):
        iou = raw.default_nms_iou if nms_iou is None else nms_iou
        boxes = torch.from_numpy(raw.boxes[keep])
        kept = batched_nms(boxes, torch.from_numpy(raw.scores[keep]), torch.from_numpy(raw.labels[keep]), iou).numpy()
        keep = keep[kept]
    else:
        keep = keep[np.argsort(-raw.scores[keep], kind="stable")]
    keep = keep[: max(int(max_detections), 0)]
    pick = lambda values: None if values is None else values[keep]  # noqa: E731
    return Detections(
        raw.boxes[keep], raw.scores[keep], raw.labels[keep], keep, raw.categories, pick(raw.masks), pick(raw.keypoints), pick(raw.keypoint_scores)
    )


def open_postprocessing(network: nn.Module, limit: int = RAW_LIMIT) -> float:
    """Make a torchvision detector return every candidate above SCORE_FLOOR, un-suppressed.

    Returns the network's own NMS IoU threshold (the default the app starts from). NMS at IoU
    1.0 keeps every box: torchvision suppresses only boxes whose IoU *exceeds* the threshold.
    """
    head = network.roi_heads if hasattr(network, "roi_heads") else network
    if not hasattr(head, "library_nms_thresh"):  # idempotent: wrapping twice must not take 1.0 as the default
        head.library_nms_thresh = float(head.nms_thresh)
    default = head.library_nms_thresh
    head.score_thresh = SCORE_FLOOR
    head.nms_thresh = 1.0
    head.detections_per_img = limit
    return default


class Detector(nn.Module):
    """A torchvision detection network plus its input transform and categories: PIL image in, raw candidates out.

    The same wrapper serves Mask R-CNN (raw masks too) and Keypoint R-CNN (keypoints, their names
    and skeleton too).
    """

    uses_nms = True

    def __init__(
        self,
        network: nn.Module,
        categories: list[str],
        transform: nn.Module | None = None,
        keypoint_names: list[str] | None = None,
        skeleton: list[tuple[int, int]] | None = None,
    ) -> None:
        super().__init__()
        self.network = network
        self.categories = list(categories)
        self.transform = transform or ObjectDetection()
        self.keypoint_names = list(keypoint_names or [])
        self.skeleton = list(skeleton or [])
        heads = getattr(network, "roi_heads", None)
        per_instance = heads is not None and (heads.has_mask() or heads.has_keypoint())
        self.default_nms_iou = open_postprocessing(network, RAW_LIMIT_PER_INSTANCE if per_instance else RAW_LIMIT)

    @property
    def two_stage(self) -> bool:
        """Faster R-CNN and its kin: region proposals first, then a box head per proposal."""
        return hasattr(self.network, "rpn")

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        param = next(self.network.parameters())
        return self.transform(image).to(param.device, param.dtype)

    def forward(self, image: Image.Image) -> RawDetections:
        return self.forward_batch([image])[0]

    @torch.inference_mode()
    def forward_batch(self, images: list[Image.Image]) -> list[RawDetections]:
        """Several images, one network call per image size: a Serve replica's dynamic batch.

        torchvision's detectors pad a list of images to a common size, so only images of one size
        share a call (``same_size_groups``).
        """
        results: list[RawDetections | None] = [None] * len(images)
        for indices in same_size_groups(images):
            outputs = self.network([self.preprocess(images[i]) for i in indices])
            for output, i in zip(outputs, indices):
                results[i] = self._raw(output, images[i])
        return results  # type: ignore[return-value]

    def _raw(self, output: dict[str, torch.Tensor], image: Image.Image) -> RawDetections:
        masks = output.get("masks")
        keypoints = output.get("keypoints")
        keypoint_scores = output.get("keypoints_scores")
        return RawDetections(
            boxes=output["boxes"].float().cpu().numpy(),
            scores=output["scores"].float().cpu().numpy(),
            labels=output["labels"].cpu().numpy().astype(np.int64),
            categories=self.categories,
            image_size=image.size,
            default_nms_iou=self.default_nms_iou,
            masks=None if masks is None else (masks[:, 0].float() * 255).round().byte().cpu().numpy(),
            keypoints=None if keypoints is None else keypoints[..., :2].float().cpu().numpy(),
            keypoint_scores=None if keypoint_scores is None else keypoint_scores.float().cpu().numpy(),
        )


@dataclass
class ProposalStages:
    """A two-stage detector's region proposals: the RPN's top candidates before and after its NMS."""

    before_nms: np.ndarray  # (N, 4) boxes in image pixels, best objectness first
    before_scores: np.ndarray
    after_nms: np.ndarray
    after_scores: np.ndarray
    pre_nms_top_n: int = 0
    rpn_nms_iou: float = 0.7
    extra: dict = field(default_factory=dict)


@torch.inference_mode()
def rpn_proposals(detector: Detector, image: Image.Image, top_n: int = 50) -> ProposalStages:
    """What the region proposal network proposes for ``image``, through torchvision's own RPN code.

    Before NMS: the RPN's highest-objectness boxes (its own ``_get_top_n_idx`` per level).
    After NMS: what ``filter_proposals`` keeps, i.e. what the box head really receives.
    Both are mapped back from the network's resized input to the image's pixels.
    """
    network = detector.network
    if not detector.two_stage:
        raise ValueError("Region proposals exist only in two-stage detectors (Faster R-CNN); pick one.")
    rpn = network.rpn
    images, _ = network.transform([detector.preprocess(image)])
    features = list(network.backbone(images.tensors).values())
    objectness, deltas = rpn.head(features)
    anchors = rpn.anchor_generator(images, features)
    per_level = [o[0].numel() for o in objectness]
    objectness, deltas = tv_det.rpn.concat_box_prediction_layers(objectness, deltas)
    boxes = rpn.box_coder.decode(deltas.detach(), anchors).view(1, -1, 4)
    kept_boxes, kept_scores = rpn.filter_proposals(boxes, objectness, images.image_sizes, per_level)
    scores = objectness.view(1, -1)
    top = rpn._get_top_n_idx(scores, per_level)
    top_boxes = boxes[0, top[0]]
    top_scores = scores[0, top[0]].sigmoid()
    order = top_scores.argsort(descending=True)
    top_boxes, top_scores = top_boxes[order], top_scores[order]
    to_image = _to_image_pixels(images.image_sizes[0], image)
    return ProposalStages(
        before_nms=to_image(top_boxes[:top_n]),
        before_scores=top_scores[:top_n].float().cpu().numpy(),
        after_nms=to_image(kept_boxes[0][:top_n]),
        after_scores=kept_scores[0][:top_n].float().cpu().numpy(),
        pre_nms_top_n=int(top_scores.numel()),
        rpn_nms_iou=float(rpn.nms_thresh),
        extra={"after_nms_total": int(kept_boxes[0].shape[0])},
    )


def _to_image_pixels(resized: tuple[int, int], image: Image.Image):
    scale = torch.tensor([image.width / resized[1], image.height / resized[0]] * 2)

    def convert(boxes: torch.Tensor) -> np.ndarray:
        return (boxes.float().cpu() * scale).numpy()

    return convert


# ---------------------------------------------------------------- DETR (transformers)


class DetrDetector(nn.Module):
    """DETR through transformers: its image processor in, ``post_process_object_detection`` out."""

    uses_nms = False
    two_stage = False
    default_nms_iou = 1.0

    def __init__(self, network: nn.Module, processor) -> None:
        super().__init__()
        self.network = network
        self.processor = processor
        id2label = network.config.id2label
        self.categories = [id2label.get(i, "N/A") for i in range(network.config.num_labels)]

    @torch.inference_mode()
    def forward(self, image: Image.Image) -> RawDetections:
        param = next(self.network.parameters())
        inputs = self.processor(images=image, return_tensors="pt").to(param.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(param.dtype)
        outputs = self.network(**inputs)
        result = self.processor.post_process_object_detection(outputs, threshold=SCORE_FLOOR, target_sizes=[(image.height, image.width)])[0]
        return RawDetections(
            boxes=result["boxes"].float().cpu().numpy().reshape(-1, 4),
            scores=result["scores"].float().cpu().numpy(),
            labels=result["labels"].cpu().numpy().astype(np.int64),
            categories=self.categories,
            image_size=image.size,
            uses_nms=False,
            default_nms_iou=1.0,
        )


# ---------------------------------------------------------------- labels without the weights


DETR_COCO_CATEGORIES = ["N/A" if name == "__background__" else name for name in tv_det.FasterRCNN_ResNet50_FPN_Weights.DEFAULT.meta["categories"]]
"""What ``facebook/detr-resnet-50``'s config names its 91 classes: COCO's ids, "N/A" where COCO has no class."""


def _detr_labels(spec: ModelSpec) -> Labels:
    """DETR's categories from its config when it is here, else the ones its released config names."""
    source: HuggingFaceWeights = spec.source  # type: ignore[assignment]
    folder = source.explicit_path() or source.cached_snapshot()
    if folder is None:
        return Labels(list(DETR_COCO_CATEGORIES))
    id2label = json.loads((folder / "config.json").read_text())["id2label"]
    return Labels([id2label.get(str(i), "N/A") for i in range(len(id2label))])


# ---------------------------------------------------------------- loaders and registry entries


def _load_torchvision(spec: ModelSpec) -> Detector:
    source: TorchvisionWeights = spec.source  # type: ignore[assignment]
    labels = spec.labels
    return Detector(source.build(), labels.categories, source.weights.transforms(), keypoint_names=labels.keypoints, skeleton=labels.skeleton)


def _load_local(spec: ModelSpec) -> Detector:
    source: LocalWeights = spec.source  # type: ignore[assignment]
    state = source.state_dict()  # first: a missing file must say how to train it
    card = source.card()
    network = build_detector(DetectorConfig.from_dict(card["config"]))
    network.load_state_dict({k: v.float() for k, v in state.items()})
    labels = spec.labels
    return Detector(network, labels.categories, keypoint_names=labels.keypoints, skeleton=labels.skeleton)


def _load_detr(spec: ModelSpec) -> DetrDetector:
    source: HuggingFaceWeights = spec.source  # type: ignore[assignment]
    from transformers import DetrForObjectDetection, DetrImageProcessor

    network, processor = source.build(DetrForObjectDetection, DetrImageProcessor)
    return DetrDetector(network, processor)


COCO_VAL = "COCO-val2017"
_METRIC_NAMES = {"box_map": "box mAP", "mask_map": "mask mAP", "kp_map": "keypoint mAP"}


def pretrained_spec(
    task: str, name: str, title: str, weights, builder, about: str = "", fast_on_cpu: bool = False, *, input_size: int = 800, nms_iou: float = 0.5,
) -> ModelSpec:
    """A pretrained torchvision detector (boxes, masks or keypoints), with every COCO metric its weights report.

    ``input_size`` and ``nms_iou`` are what its builder sets (the R-CNNs' min_size 800 and
    box_nms_thresh 0.5 unless given), so the spec knows them before the weights are here.
    """
    reported = weights.meta["_metrics"][COCO_VAL]
    return torchvision_spec(
        task, name, title, weights, builder, load=_load_torchvision, trained_on="COCO train2017", benchmark=COCO_VAL,
        metrics={f"COCO val2017 {_METRIC_NAMES[key]}": key for key in reported}, about=about, fast_on_cpu=fast_on_cpu,
        input_size=input_size, default_nms_iou=nms_iou,
    )


def local_spec(task: str, name: str, title: str, about: str, metrics: dict[str, str]) -> ModelSpec:
    """A detector trained here; ``metrics`` maps what the picker shows to the card's metric keys."""
    about = f"`models/nets/detection.py` · {about} · trained by `python -m models train {name}`"
    family = LocalWeights(name).card()["config"]["family"]
    return local_model_spec(task, name, title, _load_local, metrics, about, default_nms_iou=default_nms_iou(family))


DETR_REPO = "facebook/detr-resnet-50"
LOCAL_METRICS = {"ShapesWorld test mAP@0.5": "map_50", "mAP@[.5:.95]": "map"}


def specs() -> list[ModelSpec]:
    """Detection models, most accurate first; on a CPU the one marked ``fast_on_cpu`` is the default."""
    W = tv_det
    tv = functools.partial(pretrained_spec, "detection")
    return [
        tv("fasterrcnn-resnet50-v2", "Faster R-CNN ResNet-50 FPN v2", W.FasterRCNN_ResNet50_FPN_V2_Weights.DEFAULT, W.fasterrcnn_resnet50_fpn_v2, "two-stage"),
        tv(
            "retinanet-resnet50-v2", "RetinaNet ResNet-50 FPN v2", W.RetinaNet_ResNet50_FPN_V2_Weights.DEFAULT, W.retinanet_resnet50_fpn_v2,
            "one-stage, anchors, focal loss",
        ),
        ModelSpec(
            name="detr-resnet50",
            task="detection",
            tier="pretrained",
            title="DETR ResNet-50",
            source=HuggingFaceWeights(DETR_REPO),
            license="Apache-2.0 (facebook/detr-resnet-50); trained on COCO train2017",
            params=41_524_768,
            load=_load_detr,
            metrics={"COCO val2017 box mAP": 42.0},
            about="`transformers.DetrForObjectDetection` (timm ResNet-50 backbone) · transformer, set prediction, no NMS",
            half_precision_ok=False,
            read_labels=_detr_labels,
            input_size=800,  # its image processor's shortest_edge; no NMS, so no default IoU
        ),
        tv("fcos-resnet50", "FCOS ResNet-50 FPN", W.FCOS_ResNet50_FPN_Weights.DEFAULT, W.fcos_resnet50_fpn, "one-stage, anchor-free", nms_iou=0.6),
        tv(
            "fasterrcnn-mobilenet", "Faster R-CNN MobileNetV3-Large FPN", W.FasterRCNN_MobileNet_V3_Large_FPN_Weights.DEFAULT,
            W.fasterrcnn_mobilenet_v3_large_fpn, "two-stage", fast_on_cpu=True,
        ),
        tv(
            "fasterrcnn-mobilenet-320", "Faster R-CNN MobileNetV3-Large 320 FPN", W.FasterRCNN_MobileNet_V3_Large_320_FPN_Weights.DEFAULT,
            W.fasterrcnn_mobilenet_v3_large_320_fpn, "two-stage, low resolution", input_size=320,
        ),
        tv("ssdlite-mobilenet", "SSDlite320 MobileNetV3-Large", W.SSDLite320_MobileNet_V3_Large_Weights.DEFAULT, W.ssdlite320_mobilenet_v3_large, "one-stage", input_size=320, nms_iou=0.55),
        local_spec("detection", "fasterrcnn-shapes", "Faster R-CNN (ShapesWorld)", "two-stage", LOCAL_METRICS),
        local_spec("detection", "fcos-shapes", "FCOS (ShapesWorld)", "one-stage, anchor-free", LOCAL_METRICS),
    ]
