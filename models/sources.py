"""Where a model's weights come from, and whether they are here.

Resolution order for pretrained weights: an explicit file (or ``save_pretrained`` folder) in
DVL_WEIGHTS_DIR -> the library's own cache (TORCH_HOME for torchvision, HF_HOME for Hugging
Face) -> a download, unless offline -> a clear error that says how to get them. Local weights
ship in weights/ as safetensors with a JSON card.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Callable, TypeVar
from urllib.parse import urlparse

import torch
from safetensors.torch import load_file
from torch import nn
from torchvision.models import WeightsEnum

import settings

T = TypeVar("T")
log = logging.getLogger(__name__)
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"


class Availability(str, Enum):
    LOCAL = "shipped ✓"
    CACHED = "cached ✓"
    DOWNLOADABLE = "downloadable"
    UNAVAILABLE = "unavailable offline"
    MISSING = "missing (train it)"

    @property
    def usable(self) -> bool:
        return self in (Availability.LOCAL, Availability.CACHED, Availability.DOWNLOADABLE)


COCO_PERSON_SKELETON = [
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7),
    (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
]
"""COCO's person skeleton (its annotation file's ``skeleton``, made 0-based), over torchvision's ``keypoint_names``."""


@dataclass(frozen=True)
class Labels:
    """What a model's outputs are called: its classes, for pose its keypoints and the limbs joining them, for a text model its words.

    ``vocabulary`` is the local captioners' whole word list (token id = index); empty where the
    tokenizer is a pretrained one's tens of thousands of word pieces, which no page lists.
    """

    categories: list[str] = field(default_factory=list)
    keypoints: list[str] = field(default_factory=list)
    skeleton: list[tuple[int, int]] = field(default_factory=list)
    vocabulary: list[str] = field(default_factory=list)


class WeightsUnavailable(RuntimeError):
    """The weights are not on this machine and cannot be downloaded; the message says what to do."""


def how_to_get(weights: str) -> str:
    """What to do about missing pretrained weights: commands only.

    The message reaches web pages, so it names no folder of this server (its cache paths would
    tell a visitor the user it runs as); ``python -m models prefetch`` prints where it put them.
    """
    return (
        f"The weights of {weights} are not on this machine and cannot be downloaded from here. On a connected machine, "
        "`python -m models prefetch` downloads them into the library's cache (it prints where), to copy here; or start "
        "the app with --weights-dir naming a folder that holds them. Until then, pick a local model."
    )


def download(action: Callable[[], T], weights: str) -> T:
    """Run a downloading ``action`` unless offline; any failure becomes a WeightsUnavailable that says what to do.

    The library's own error (a URL, a cache path) goes to the server's log, not into the message.
    """
    if settings.offline():
        raise WeightsUnavailable(how_to_get(weights))
    try:
        return action()
    except (OSError, RuntimeError, ValueError) as error:  # no route, DNS, refused, missing repo, truncated, hash mismatch
        log.warning("downloading %s failed: %s", weights, error)
        raise WeightsUnavailable(f"Downloading {weights} failed. {how_to_get(weights)}") from error


@dataclass(frozen=True)
class LocalWeights:
    """Weights this project trained and ships: ``weights/<name>.safetensors`` + ``<name>.json``."""

    name: str
    directory: Path = WEIGHTS_DIR

    @property
    def path(self) -> Path:
        return self.directory / f"{self.name}.safetensors"

    def availability(self) -> Availability:
        return Availability.LOCAL if self.path.exists() else Availability.MISSING

    def card(self) -> dict:
        card_path = self.path.with_suffix(".json")
        return json.loads(card_path.read_text()) if card_path.exists() else {}

    def labels(self) -> Labels:
        """The classes, keypoints, skeleton and vocabulary the card lists (none for a model that names no classes)."""
        card = self.card()
        skeleton = [tuple(limb) for limb in card.get("skeleton", [])]
        return Labels(list(card.get("classes", [])), list(card.get("keypoints", [])), skeleton, list(card.get("vocabulary", [])))

    def input_size(self) -> int | None:
        """The image side the network was trained at, as the card records it (None where the card names none).

        A detector's ``config.image_size`` (its min_size) comes before ``preprocessing.native_size``:
        Mask R-CNN resizes 128-pixel scenes to 192. A diffusion U-Net's is its ``sample_size``.
        """
        card = self.card()
        config, preprocessing = card.get("config", {}), card.get("preprocessing", {})
        sizes = (card.get("image_size"), config.get("image_size"), preprocessing.get("image_size"), preprocessing.get("native_size"), config.get("sample_size"))
        return next((int(size) for size in sizes if size), None)

    def state_dict(self) -> dict[str, torch.Tensor]:
        if not self.path.exists():
            raise WeightsUnavailable(
                f"{self.path.name} is missing. Train it with `python -m models train {self.name}`."
            )
        return load_file(str(self.path))

    def fetch(self) -> str:
        self.state_dict()
        return f"{self.name}: shipped in {self.path}"


@dataclass(frozen=True)
class TorchvisionWeights:
    """A torchvision weights enum member, loaded by torchvision's own builder and cache."""

    weights: WeightsEnum
    builder: Callable[..., nn.Module]

    @property
    def filename(self) -> str:
        return Path(urlparse(self.weights.url).path).name

    @property
    def cache_path(self) -> Path:
        return Path(torch.hub.get_dir()) / "checkpoints" / self.filename

    def explicit_path(self) -> Path | None:
        folder = settings.weights_dir()
        return folder / self.filename if folder and (folder / self.filename).exists() else None

    def labels(self) -> Labels:
        """The categories (and keypoint names, which are COCO's) in the weights' metadata."""
        meta = self.weights.meta
        keypoints = list(meta.get("keypoint_names", []))
        return Labels(list(meta.get("categories", [])), keypoints, list(COCO_PERSON_SKELETON) if keypoints else [])

    def availability(self) -> Availability:
        if self.explicit_path() or self.cache_path.exists():
            return Availability.CACHED
        return Availability.UNAVAILABLE if settings.offline() else Availability.DOWNLOADABLE

    def fetch(self) -> str:
        if not self.cache_path.exists():
            download(lambda: self.weights.get_state_dict(progress=True, check_hash=True), self.filename)
        return f"{self.filename}: in {self.cache_path.parent}"

    def build(self) -> nn.Module:
        """The network with these weights, through torchvision's builder wherever possible."""
        explicit = self.explicit_path()
        if explicit:
            return self._build_from_file(explicit)
        if self.cache_path.exists():
            return self.builder(weights=self.weights)  # torchvision's own loader reads TORCH_HOME's cache
        return download(lambda: self.builder(weights=self.weights), self.filename)  # the same loader downloads first

    def untrained(self, aux_loss: bool = True) -> nn.Module:
        """The architecture without weights, shaped like the released checkpoint (classes, aux head)."""
        kwargs: dict = {"weights": None}
        if "categories" in self.weights.meta:  # optical flow's RAFT names no classes
            kwargs["num_classes"] = len(self.weights.meta["categories"])
        parameters = inspect.signature(self.builder).parameters
        if "weights_backbone" in parameters:
            kwargs["weights_backbone"] = None
        if "aux_loss" in parameters:
            kwargs["aux_loss"] = aux_loss
        return self.builder(**kwargs)

    def _build_from_file(self, path: Path) -> nn.Module:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model = self.untrained(aux_loss=any(k.startswith("aux_classifier.") for k in state))
        model.load_state_dict(state)
        return model


@dataclass(frozen=True)
class HuggingFaceWeights:
    """A Hugging Face Hub repo, loaded by the library's own ``from_pretrained`` and its cache (HF_HOME)."""

    repo_id: str
    revision: str = "main"

    @property
    def filename(self) -> str:
        return self.repo_id

    def explicit_path(self) -> Path | None:
        folder = settings.weights_dir()
        path = folder / self.repo_id if folder else None
        return path if path and (path / "config.json").exists() else None

    def cached_snapshot(self) -> Path | None:
        """The snapshot folder in the Hugging Face cache, if this repo is there."""
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError

        try:
            return Path(snapshot_download(self.repo_id, revision=self.revision, cache_dir=settings.hf_cache_dir(), local_files_only=True))
        except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
            return None

    def availability(self) -> Availability:
        if self.explicit_path() or self.cached_snapshot():
            return Availability.CACHED
        return Availability.UNAVAILABLE if settings.offline() else Availability.DOWNLOADABLE

    def fetch(self) -> str:
        from huggingface_hub import snapshot_download

        path = self.cached_snapshot() or download(
            lambda: snapshot_download(self.repo_id, revision=self.revision, cache_dir=settings.hf_cache_dir()), self.repo_id
        )
        return f"{self.repo_id}: in {path}"

    def build(self, *classes, **extra) -> tuple:
        """``cls.from_pretrained(...)`` for each class (model, processor, ...), from one resolved location.

        ``extra`` goes to every ``from_pretrained`` call (a pipeline's components given from elsewhere).
        """
        explicit = self.explicit_path()
        if explicit:
            where, kwargs = str(explicit), {"local_files_only": True}
        elif self.cached_snapshot():
            where, kwargs = self.repo_id, {"revision": self.revision, "cache_dir": settings.hf_cache_dir(), "local_files_only": True}
        elif settings.offline():
            raise WeightsUnavailable(how_to_get(self.repo_id))
        else:
            where, kwargs = self.repo_id, {"revision": self.revision, "cache_dir": settings.hf_cache_dir()}
        load = lambda: tuple(cls.from_pretrained(where, **kwargs, **extra) for cls in classes)  # noqa: E731
        return load() if kwargs.get("local_files_only") else download(load, self.repo_id)


@dataclass(frozen=True)
class PipelineWeights:
    """Several Hugging Face repos one model needs (SD-Turbo and its safety checker): here, fetched and planted together."""

    parts: tuple[HuggingFaceWeights, ...]

    @property
    def filename(self) -> str:
        return " + ".join(part.repo_id for part in self.parts)

    def availability(self) -> Availability:
        states = [part.availability() for part in self.parts]
        for worst in (Availability.UNAVAILABLE, Availability.DOWNLOADABLE):
            if worst in states:
                return worst
        return Availability.CACHED

    def fetch(self) -> str:
        return "\n".join(part.fetch() for part in self.parts)


@dataclass(frozen=True)
class OpenClipWeights:
    """An open_clip pretrained tag: open_clip's factory resolves it to a Hugging Face repo and file.

    Resolution order: DVL_WEIGHTS_DIR/<repo_id>/<file> -> the Hugging Face cache (HF_HOME) -> a
    download by open_clip itself, unless offline -> a clear WeightsUnavailable. ``build`` always
    goes through ``open_clip.create_model_and_transforms``, so open_clip's own checkpoint loading,
    preprocessing config and tokenizer choice are used.
    """

    model_name: str  # an open_clip architecture, e.g. "ViT-B-32"
    tag: str  # an open_clip pretrained tag, e.g. "laion2b_s34b_b79k"

    @property
    def pretrained_cfg(self) -> dict:
        import open_clip

        cfg = open_clip.get_pretrained_cfg(self.model_name, self.tag)
        if not cfg.get("hf_hub"):
            raise ValueError(f"open_clip has no Hugging Face hub entry for {self.model_name} / {self.tag}")
        return cfg

    @property
    def _hub_entry(self) -> tuple[str, str]:
        """(repo id, file name or "") split as open_clip's ``download_pretrained`` splits the tag's ``hf_hub``."""
        repo_id, file = os.path.split(self.pretrained_cfg["hf_hub"])
        return repo_id, file

    @property
    def repo_id(self) -> str:
        """The Hugging Face repo open_clip downloads from, e.g. ``laion/CLIP-ViT-B-32-laion2B-s34B-b79K``."""
        return self._hub_entry[0]

    @property
    def weight_files(self) -> tuple[str, ...]:
        """The files open_clip asks the hub for, in its order: the safetensors alternative first."""
        from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

        name = self._hub_entry[1] or HF_WEIGHTS_NAME
        if name == HF_WEIGHTS_NAME:
            return (HF_SAFE_WEIGHTS_NAME, name)
        return (name[:-4] + ".safetensors", name) if name.endswith((".bin", ".pth")) else (name,)

    @property
    def filename(self) -> str:
        return self.repo_id

    def preprocess_cfg(self) -> dict:
        """The tag's preprocessing (mean, std, interpolation, resize mode), as open_clip merges it."""
        return {k: v for k, v in self.pretrained_cfg.items() if k in ("mean", "std", "interpolation", "resize_mode")}

    def explicit_path(self) -> Path | None:
        folder = settings.weights_dir()
        if not folder:
            return None
        return next((folder / self.repo_id / f for f in self.weight_files if (folder / self.repo_id / f).is_file()), None)

    def cached_file(self) -> Path | None:
        """The checkpoint in the Hugging Face cache, if a download (or a planting) left it there."""
        from huggingface_hub import try_to_load_from_cache

        for name in self.weight_files:
            found = try_to_load_from_cache(self.repo_id, name, cache_dir=settings.hf_cache_dir())
            if isinstance(found, str):
                return Path(found)
        return None

    def availability(self) -> Availability:
        if self.explicit_path() or self.cached_file():
            return Availability.CACHED
        return Availability.UNAVAILABLE if settings.offline() else Availability.DOWNLOADABLE

    @property
    def weights_name(self) -> str:
        return f"open_clip {self.model_name} / {self.tag} ({self.repo_id})"

    def fetch(self) -> str:
        import open_clip

        path = self.explicit_path() or self.cached_file() or download(
            lambda: open_clip.download_pretrained(self.pretrained_cfg, cache_dir=str(settings.hf_cache_dir())), self.weights_name
        )
        return f"{self.model_name} {self.tag} ({self.repo_id}): in {Path(path).parent}"

    def build(self) -> tuple[nn.Module, Callable]:
        """``(model, preprocess)`` from open_clip's factory, with these weights loaded."""
        from huggingface_hub import constants as hub

        explicit = self.explicit_path()
        cached = self.cached_file()
        if explicit or (cached and settings.offline() and not hub.HF_HUB_OFFLINE):
            # A file open_clip cannot find by tag (DVL_WEIGHTS_DIR), or a cached one when offline but
            # huggingface_hub was not told so at import (it would try the network first): give open_clip
            # the file itself, with the tag's preprocessing.
            pre = self.preprocess_cfg()
            return self._create(
                str(explicit or cached), image_mean=pre["mean"], image_std=pre["std"],
                image_interpolation=pre["interpolation"], image_resize_mode=pre["resize_mode"],
            )
        if cached:
            return self._create(self.tag)  # open_clip's own path: tag -> repo -> hf_hub_download -> the cache
        return download(lambda: self._create(self.tag), self.weights_name)

    def _create(self, pretrained: str, **kwargs) -> tuple[nn.Module, Callable]:
        import open_clip

        model, _, preprocess = open_clip.create_model_and_transforms(
            self.model_name, pretrained=pretrained, cache_dir=str(settings.hf_cache_dir()), **kwargs
        )
        return model, preprocess
