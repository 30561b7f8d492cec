"""ModelSpec: everything the app needs to know about one model, found by name in the registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal

from torch import nn

from .sources import Availability, HuggingFaceWeights, LocalWeights, OpenClipWeights, PipelineWeights, TorchvisionWeights

Tier = Literal["pretrained", "local"]


@dataclass(frozen=True)
class ModelSpec:
    """One model: what it is, where its weights come from, and how to build the ready-to-run object.

    ``load`` returns an ``nn.Module`` wrapper that carries its own preprocessing and labels (e.g. a
    Segmenter), so callers never guess a mean, a size or a category list.
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

    def availability(self) -> Availability:
        return self.source.availability()

    @property
    def label(self) -> str:
        """How the model picker shows it: title, tier and whether it can run here."""
        fast = " · fast on CPU" if self.fast_on_cpu else ""
        return f"{self.title} · {self.tier}{fast} · {self.availability().value}"


def local_spec(task: str, name: str, title: str, load: Callable[[ModelSpec], nn.Module], metrics: dict[str, str], about: str) -> ModelSpec:
    """A model trained here and shipped in ``weights/``: parameters and metrics come from its JSON card.

    ``metrics`` maps what the model picker shows to the card's metric keys.
    """
    source = LocalWeights(name)
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
    )
