"""ModelSpec: everything the app needs to know about one model, found by name in the registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

from torch import nn
from torchvision.models import WeightsEnum

from .sources import WEIGHTS_DIR, Availability, HuggingFaceWeights, Labels, LocalWeights, OpenClipWeights, PipelineWeights, TorchvisionWeights

Tier = Literal["pretrained", "local"]


@dataclass(frozen=True)
class ModelSpec:
    """One model: what it is, where its weights come from, and how to build the ready-to-run object.

    ``load`` returns an ``nn.Module`` wrapper that carries its own preprocessing and labels (e.g. a
    Segmenter), so callers never guess a mean, a size or a category list; ``labels``, ``input_size``
    and ``default_nms_iou`` say the same before the weights are here, so a page can show them (and
    set its controls) for a model it cannot run.
    """

    name: str
    task: str
    tier: Tier
    title: str
    source: LocalWeights | TorchvisionWeights | HuggingFaceWeights | PipelineWeights | OpenClipWeights
    license: str
    params: int
    load: Callable[["ModelSpec"], nn.Module]
    metrics: dict = field(default_factory=dict)
    about: str = ""
    half_precision_ok: bool = True
    fast_on_cpu: bool = False  # the task's default on a CPU (the most accurate one is too slow there)
    read_labels: Callable[["ModelSpec"], Labels] | None = None
    input_size: int | None = None  # the image side the network was trained at / resizes to; None where not known cheaply
    default_nms_iou: float | None = None  # the NMS IoU its builder sets (the app's slider starts there); None: no NMS

    def availability(self) -> Availability:
        return self.source.availability()

    @property
    def labels(self) -> Labels:
        """The names of what the model outputs (classes; keypoints and skeleton for pose), read without loading its weights.

        A page lists them as soon as a model is picked, also when its weights are not on this machine (yet).
        """
        return self.read_labels(self) if self.read_labels else Labels()

    @property
    def label(self) -> str:
        """How the model picker shows it: title, tier and whether it can run here."""
        fast = " · fast on CPU" if self.fast_on_cpu else ""
        return f"{self.title} · {self.tier}{fast} · {self.availability().value}"


def local_spec(
    task: str, name: str, title: str, load: Callable[[ModelSpec], nn.Module], metrics: dict[str, str], about: str, default_nms_iou: float | None = None,
    directory: Path = WEIGHTS_DIR,
) -> ModelSpec:
    """A model trained here and shipped in ``weights/``: parameters, metrics and input size come from its JSON card.

    ``metrics`` maps what the model picker shows to the card's metric keys. ``directory``: where
    else the files are (a model trained in the page lives in a temporary folder, never ``weights/``).
    """
    source = LocalWeights(name, directory)
    card = source.card()
    measured = card.get("metrics", {})
    return ModelSpec(
        name=name,
        task=task,
        tier="local",
        title=title,
        source=source,
        license="MIT (this project)",
        params=card.get("parameters", 0),
        load=load,
        metrics={label: measured.get(key) for label, key in metrics.items()},
        about=about,
        read_labels=source_labels,
        input_size=source.input_size(),
        default_nms_iou=default_nms_iou,
    )


def source_labels(spec: ModelSpec) -> Labels:
    """The labels the weights' own metadata lists: a local card, or torchvision's ``weights.meta``."""
    return spec.source.labels()


def torchvision_spec(
    task: str, name: str, title: str, weights: WeightsEnum, builder: Callable[..., nn.Module], *,
    load: Callable[[ModelSpec], nn.Module], trained_on: str, metrics: dict[str, str], benchmark: str, about: str = "", fast_on_cpu: bool = False,
    input_size: int | None = None, default_nms_iou: float | None = None,
) -> ModelSpec:
    """A pretrained torchvision model: size, labels and ``metrics`` (shown name -> key in ``meta["_metrics"][benchmark]``) from its weights' metadata.

    ``input_size`` defaults to the side its weights' ``transforms()`` crops or resizes to; a
    detector's transform resizes inside the network (its builder's min_size), so it passes its own.
    """
    measured = weights.meta["_metrics"][benchmark]
    preset = getattr(weights.transforms, "keywords", {})  # a functools.partial: read without building the transform
    size = input_size or preset.get("crop_size") or preset.get("resize_size")
    package = builder.__module__.rpartition(".")[0]  # torchvision.models.detection.faster_rcnn -> torchvision.models.detection
    return ModelSpec(
        name=name,
        task=task,
        tier="pretrained",
        title=title,
        source=TorchvisionWeights(weights, builder),
        license=f"BSD-3-Clause (torchvision); trained on {trained_on}",
        params=weights.meta["num_params"],
        load=load,
        metrics={shown: measured[key] for shown, key in metrics.items()},
        about=f"`{package}.{builder.__name__}`" + (f" · {about}" if about else ""),
        fast_on_cpu=fast_on_cpu,
        read_labels=source_labels,
        input_size=size,
        default_nms_iou=default_nms_iou,
    )
