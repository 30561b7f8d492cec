"""Image embeddings for retrieval: one wrapper for every encoder, and specs() of the retrieval tab.

``Embedder.embed(images)`` gives one unit vector per image, the representation a nearest-neighbour
search compares by cosine similarity. Each model's features are its library's documented ones:

- DINOv2 small (self-supervised, transformers): ``Dinov2Model(**processor(images)).pooler_output``,
  the layer-normed [CLS] token, as the model card's feature extraction gives it;
- ResNet-50 (supervised on ImageNet labels, torchvision): the 2048-d average-pooled features,
  ``weights.transforms()`` then the network with its classifier replaced by ``Identity``;
- the local encoders (``models/nets/encoder.py``): pooled backbone features of a 64x64 image.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torchvision.models import ResNet50_Weights, resnet50
from torchvision.transforms import v2

import shapesworld

from .nets.encoder import Encoder, EncoderConfig
from .sources import HuggingFaceWeights, LocalWeights, TorchvisionWeights
from .spec import ModelSpec, local_spec, torchvision_spec

DINOV2_REPO = "facebook/dinov2-small"
TASK = "retrieval"
MEAN = (0.485, 0.456, 0.406)  # the local encoders' input normalisation (ImageNet's), also written to their cards
STD = (0.229, 0.224, 0.225)
LABELS = tuple(f"{colour} {shape}" for shape in shapesworld.SHAPES for colour in shapesworld.COLOURS)
"""The 30 colour-shape classes a probe scores frozen features on; the encoders never see them in training."""


def label_of(prompt: str) -> str:
    """"red star" from "a large red star"."""
    return " ".join(prompt.split()[-2:])


class Embedder(nn.Module):
    """A network and the preprocessing its features were defined with: PIL images in, (N, D) unit vectors out."""

    def __init__(self, network: nn.Module, preprocess: Callable[[Sequence[Image.Image]], torch.Tensor], features: Callable, name: str) -> None:
        super().__init__()
        self.network = network
        self.preprocess = preprocess  # list of PIL images -> a batch tensor
        self.features = features  # (network, batch) -> (N, D) raw features
        self.name = name
        self.eval()

    @torch.inference_mode()
    def raw_features(self, images: Sequence[Image.Image], batch_size: int = 64) -> torch.Tensor:
        """The library's documented features, before normalisation, float32 on the CPU."""
        param = next(self.network.parameters())
        out = []
        for start in range(0, len(images), batch_size):
            batch = self.preprocess(list(images[start : start + batch_size])).to(param.device, param.dtype)
            out.append(self.features(self.network, batch).float().cpu())
        return torch.cat(out)

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        """(N, D) float32 unit vectors: cosine similarity is then a dot product."""
        if not images:
            raise ValueError("give at least one image")
        return F.normalize(self.raw_features(images), dim=-1).numpy()


def _local_preprocess(size: int, mean: Sequence[float], std: Sequence[float]) -> Callable:
    """Shorter side to ``size``, centre crop, ImageNet normalisation: a 64x64 ShapesWorld object is passed through."""
    transform = v2.Compose(
        [v2.PILToTensor(), v2.Resize(size, antialias=True), v2.CenterCrop(size), v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)]
    )
    return lambda images: torch.stack([transform(image.convert("RGB")) for image in images])


def _load_local(spec: ModelSpec) -> Embedder:
    source: LocalWeights = spec.source  # type: ignore[assignment]
    state = source.state_dict()  # raises the error that says how to train it
    card = source.card()
    network = Encoder(EncoderConfig.from_dict(card["config"]))
    network.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    pre = card["preprocessing"]
    return Embedder(network, _local_preprocess(pre["image_size"], pre["mean"], pre["std"]), lambda net, x: net.features(x), spec.name)


def _load_resnet50(spec: ModelSpec) -> Embedder:
    source: TorchvisionWeights = spec.source  # type: ignore[assignment]
    network = source.build()
    network.fc = nn.Identity()  # the 2048-d pooled features instead of 1000 ImageNet logits
    transform = source.weights.transforms()
    return Embedder(network, lambda images: torch.stack([transform(image.convert("RGB")) for image in images]), lambda net, x: net(x), spec.name)


def _load_dinov2(spec: ModelSpec) -> Embedder:
    source: HuggingFaceWeights = spec.source  # type: ignore[assignment]
    from transformers import AutoImageProcessor, Dinov2Model

    network, processor = source.build(Dinov2Model, AutoImageProcessor)
    return Embedder(
        network,
        lambda images: processor(images=[image.convert("RGB") for image in images], return_tensors="pt")["pixel_values"],
        lambda net, x: net(pixel_values=x).pooler_output,
        spec.name,
    )


def normalise(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B,3,H,W) -> ImageNet-normalised float, as the app's preprocessing does."""
    mean = torch.tensor(MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=images.device).view(1, 3, 1, 1)
    return (images.float() / 255 - mean) / std


@torch.inference_mode()
def features_of(encoder: Encoder, images: torch.Tensor, batch: int = 500) -> np.ndarray:
    """A local encoder's pooled features of uint8 (B,3,64,64) images, as the trainer scores them."""
    device = next(encoder.parameters()).device
    encoder.eval()
    return torch.cat([encoder.features(normalise(images[i : i + batch].to(device))).float().cpu() for i in range(0, len(images), batch)]).numpy()


def random_init_features(images: torch.Tensor) -> np.ndarray:
    """The baseline a probe must beat: the local encoders' architecture with random weights (seed 0), as the trainer scores it."""
    torch.manual_seed(0)
    return features_of(Encoder(EncoderConfig()), images)


def probe_scores(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray) -> tuple[float, float]:
    """(linear-probe accuracy, recall@1) of frozen features, both from scikit-learn."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000)).fit(train_x, train_y)
    nearest = KNeighborsClassifier(n_neighbors=1, metric="cosine").fit(train_x, train_y)
    return float(probe.score(test_x, test_y)), float(nearest.score(test_x, test_y))


PROBE_METRICS = {
    "ShapesWorld linear probe (30 classes)": "linear_probe_accuracy",
    "same probe, random-init features": "random_init_probe_accuracy",
    "recall@1": "recall_at_1",
}


def specs() -> list[ModelSpec]:
    """Retrieval encoders: self-supervised DINOv2, supervised ResNet-50, then the two local self-supervised ones."""
    return [
        ModelSpec(
            name="dinov2-small",
            task=TASK,
            tier="pretrained",
            title="DINOv2 ViT-S/14 (self-supervised)",
            source=HuggingFaceWeights(DINOV2_REPO),
            license="Apache-2.0 (facebook/dinov2-small); trained without labels on LVD-142M",
            params=22_056_576,
            load=_load_dinov2,
            metrics={"ImageNet-1k linear probe top-1 (paper)": 81.1},
            about="`transformers.Dinov2Model` · `pooler_output` (the [CLS] token)",
            fast_on_cpu=True,
        ),
        torchvision_spec(
            TASK, "resnet50-supervised", "ResNet-50 (supervised, ImageNet labels)", ResNet50_Weights.IMAGENET1K_V2, resnet50,
            load=_load_resnet50, trained_on="ImageNet-1k", benchmark="ImageNet-1K", metrics={"ImageNet-1k top-1": "acc@1"},
            about="the pooled 2048-d features (`fc` replaced by `Identity`)",
        ),
        local_spec(
            TASK, "simclr-shapes", "Contrastive encoder (ShapesWorld, SimCLR-style)", _load_local, PROBE_METRICS,
            "the detectors' ConvBackbone + pooling, trained by `python -m models train simclr-shapes` without labels",
        ),
        local_spec(
            TASK, "rotation-shapes", "Rotation encoder (ShapesWorld)", _load_local, PROBE_METRICS,
            "the same backbone, trained by `python -m models train rotation-shapes` to name an image's quarter turn",
        ),
    ]
