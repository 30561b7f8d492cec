"""CLIP zero-shot classification: one wrapper for both tiers, the open_clip weight source, specs().

Every model here is an open_clip ``CLIP`` made by ``open_clip.create_model``: the pretrained
ones from their tag (``pretrained="laion2b_s34b_b79k"``), which open_clip resolves to a Hugging
Face repo and reads through huggingface_hub's cache; the local one from the small config in its
JSON card (``models/nets/clip.py``). ``ZeroShotClassifier`` carries the network, open_clip's
preprocessing for it and its tokenizer; ``zero_shot`` is open_clip's documented recipe:

    text  = mean over templates of normalise(encode_text(tokenizer(template.format(label)))), normalised
    image = normalise(encode_image(preprocess(image)))
    probabilities = softmax(logit_scale * image @ text.T)

(``open_clip.build_zero_shot_classifier`` does the text part the same way.) A label set's text
embeddings are computed once per model and kept in the model cache's derived state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from .cache import Memo
from .nets.clip import WordTokenizer, register
from .sources import Availability, LocalWeights, OpenClipWeights
from .spec import ModelSpec, local_spec

DEFAULT_TEMPLATES = ("a photo of a {}.",)
# Labels x templates: each is one text-encoder pass, so their product bounds a request's time and memory.
# 1,000 labels x 24 templates (24,000 prompts in one batch) took 8.3 s and +2.26 GB on ViT-B/32; at most
# 2,000 prompts, in batches of TEXT_BATCH, keep a request to a twelfth of that time and its activations to
# one batch's worth (+116 MB RSS for 2,000 prompts on ViT-B/32, +48 MB on the local mini-CLIP).
MAX_PROMPTS = 2_000
TEXT_BATCH = 256
TEXT_SETS_KEPT = 16
"""Label sets whose text embeddings a model keeps: at most MAX_PROMPTS x 512 float32 (4 MB) each for ViT-B/32."""
OPEN_CLIP_LICENSE = "MIT (open_clip code and these LAION checkpoints); trained on LAION-2B (English)"


class ZeroShotClassifier(nn.Module):
    """An open_clip CLIP with its preprocessing and tokenizer: images and texts in, unit embeddings out."""

    def __init__(
        self, model: nn.Module, preprocess: Callable[[Image.Image], torch.Tensor], tokenizer: Callable, name: str
    ) -> None:
        super().__init__()
        self.model = model
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.name = name
        self._text_sets = Memo(TEXT_SETS_KEPT)  # kept with these weights: evicting the model drops them too
        self.eval()  # an inference wrapper: batch norms (the local ResNet tower) use their running statistics

    @property
    def logit_scale(self) -> float:
        """The learned inverse temperature, exp(logit_scale): 100 for the released CLIPs."""
        return float(self.model.logit_scale.detach().exp())

    @property
    def embed_dim(self) -> int:
        return int(self.model.visual.output_dim)

    @property
    def image_size(self) -> int:
        size = self.model.visual.image_size
        return int(size[0] if isinstance(size, (tuple, list)) else size)

    def unknown_words(self, texts: Sequence[str]) -> list[str]:
        """Words this model's tokenizer cannot read (the local model knows only ShapesWorld's words)."""
        if not isinstance(self.tokenizer, WordTokenizer):
            return []
        return list(dict.fromkeys(w for t in texts for w in self.tokenizer.unknown_words(t)))

    def cut_texts(self, texts: Sequence[str]) -> list[str]:
        """The texts longer than the text encoder reads (77 tokens for CLIP): their ends are ignored."""
        room = self.model.context_length - 2  # <start_of_text> and <end_of_text> take two places
        return [t for t in texts if len(self.tokenizer.encode(t)) > room]

    def _device_dtype(self) -> tuple[torch.device, torch.dtype]:
        p = next(self.model.parameters())
        return p.device, p.dtype

    @torch.inference_mode()
    def encode_images(self, images: Sequence[Image.Image], batch_size: int = 64) -> torch.Tensor:
        """(N, D) float32 unit vectors, one per image."""
        device, dtype = self._device_dtype()
        out = []
        for start in range(0, len(images), batch_size):
            x = torch.stack([self.preprocess(im) for im in images[start : start + batch_size]]).to(device, dtype)
            out.append(F.normalize(self.model.encode_image(x).float(), dim=-1).cpu())
        return torch.cat(out) if out else torch.zeros(0, self.embed_dim)

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str], batch_size: int = TEXT_BATCH) -> torch.Tensor:
        """(M, D) float32 unit vectors, one per text, encoded ``batch_size`` at a time (bounded activations)."""
        device, _ = self._device_dtype()
        texts = list(texts)
        out = []
        for start in range(0, len(texts), batch_size):
            tokens = self.tokenizer(texts[start : start + batch_size]).to(device)
            out.append(F.normalize(self.model.encode_text(tokens).float(), dim=-1).cpu())
        return torch.cat(out) if out else torch.zeros(0, self.embed_dim)

    def class_embeddings(self, labels: Sequence[str], templates: Sequence[str], cache: bool = True) -> torch.Tensor:
        """(M, D) unit vectors: per label, the re-normalised mean of its templates' text embeddings.

        Kept per (labels, templates) with this model, so re-running a label set on new images costs
        only the image encoder.
        """
        labels, templates = tuple(labels), tuple(templates)
        check_prompt_count(len(labels), len(templates))

        def compute() -> torch.Tensor:
            texts = [t.format(label) for label in labels for t in templates]
            per_text = self.encode_texts(texts).reshape(len(labels), len(templates), -1)
            return F.normalize(per_text.mean(dim=1), dim=-1)

        return self._text_sets.get((labels, templates), compute) if cache else compute()


class TooManyPrompts(ValueError):
    """More labels x templates than MAX_PROMPTS; the message says the limit."""


def check_prompt_count(labels: int, templates: int) -> None:
    """Refuse more than MAX_PROMPTS texts (labels x templates) in one request, saying the limit."""
    if labels * templates > MAX_PROMPTS:
        raise TooManyPrompts(
            f"{labels:,} labels × {templates:,} templates make {labels * templates:,} prompts; at most {MAX_PROMPTS:,} "
            "are encoded per request. Use fewer labels or fewer templates."
        )


@dataclass
class ZeroShotResult:
    probabilities: np.ndarray  # (N, M) float32, softmax over the labels per image
    similarities: np.ndarray  # (N, M) float32 cosine similarities, in [-1, 1]
    labels: list[str]
    templates: list[str]
    scale: float  # what the similarities were multiplied by before the softmax (1 / temperature)
    image_features: np.ndarray  # (N, D) unit vectors: where the images sit in the shared space
    text_features: np.ndarray  # (M, D) unit vectors: each label's (template-averaged) text embedding


def zero_shot(
    classifier: ZeroShotClassifier,
    images: Sequence[Image.Image],
    labels: Sequence[str],
    templates: Sequence[str] = DEFAULT_TEMPLATES,
    temperature: float | None = None,
    image_features: np.ndarray | None = None,
) -> ZeroShotResult:
    """Classify ``images`` among ``labels`` with no training: the closest label text wins.

    ``templates`` are format strings with one ``{}`` for the label ("a photo of a {}."); several
    are averaged (template ensembling). ``temperature`` None uses the model's learned scale.
    ``image_features``: the images' embeddings from an earlier result, so scoring them against
    other labels or templates does not run the image encoder again.
    """
    labels, templates = list(labels), list(templates)
    if not images:
        raise ValueError("give at least one image")
    if not labels or any(not str(label).strip() for label in labels):
        raise ValueError("give at least one label, and no empty ones")
    if not templates or any("{}" not in t for t in templates):
        raise ValueError('every template needs a "{}" where the label goes, e.g. "a photo of a {}."')
    if temperature is not None and temperature <= 0:
        raise ValueError("temperature must be positive")
    check_prompt_count(len(labels), len(templates))  # before the image encoder runs
    image_features = classifier.encode_images(list(images)) if image_features is None else torch.from_numpy(image_features)
    text_features = classifier.class_embeddings(labels, templates)
    similarities = image_features @ text_features.T
    scale = classifier.logit_scale if temperature is None else 1.0 / temperature
    probabilities = (scale * similarities).softmax(dim=-1)
    return ZeroShotResult(
        probabilities.numpy(), similarities.numpy(), labels, templates, scale, image_features.numpy(), text_features.numpy()
    )


def local_classifier(model: nn.Module, card: dict, name: str) -> ZeroShotClassifier:
    """The local CLIP with the preprocessing and tokenizer its card describes (open_clip's own transform)."""
    pre = card["preprocessing"]
    preprocess = open_clip.image_transform(
        pre["image_size"], is_train=False, mean=tuple(pre["mean"]), std=tuple(pre["std"]),
        resize_mode=pre["resize_mode"], interpolation=pre["interpolation"],
    )
    return ZeroShotClassifier(model, preprocess, WordTokenizer.from_dict(card["tokenizer"]), name)


def _load_local(spec: ModelSpec) -> ZeroShotClassifier:
    source: LocalWeights = spec.source  # type: ignore[assignment]
    if source.availability() is not Availability.LOCAL:
        source.state_dict()  # raises the error that says how to train it
    card = source.card()
    register(spec.name, card["config"])
    model = open_clip.create_model(spec.name, pretrained=str(source.path))  # open_clip's own checkpoint loader
    return local_classifier(model, card, spec.name)


def _load_open_clip(spec: ModelSpec) -> ZeroShotClassifier:
    source: OpenClipWeights = spec.source  # type: ignore[assignment]
    model, preprocess = source.build()
    return ZeroShotClassifier(model, preprocess, open_clip.get_tokenizer(source.model_name), spec.name)


def _open_clip_spec(
    name: str, title: str, model_name: str, tag: str, params: int, imagenet: float, fast_on_cpu: bool = False
) -> ModelSpec:
    return ModelSpec(
        name=name,
        task="clip",
        tier="pretrained",
        title=title,
        source=OpenClipWeights(model_name, tag),
        license=OPEN_CLIP_LICENSE,
        params=params,
        load=_load_open_clip,
        metrics={"ImageNet-1k zero-shot top-1": imagenet},
        about=f"`open_clip.create_model_and_transforms('{model_name}', pretrained='{tag}')`",
        fast_on_cpu=fast_on_cpu,
    )


def _local_spec() -> ModelSpec:
    metrics = {
        "ShapesWorld zero-shot accuracy (30 colour-shape labels)": "zero_shot_accuracy",
        "accuracy on colour-shape pairs never trained on": "held_out_accuracy",
    }
    about = "open_clip's `CLIP` with the small config of `models/nets/clip.py`, trained by `python -m models train clip-shapes`"
    return local_spec("clip", "clip-shapes", "Mini-CLIP (ShapesWorld)", _load_local, metrics, about)


def suggested_templates(name: str) -> list[str]:
    """Prompt templates to ensemble for model ``name``: words it can read.

    Pretrained: "a photo of a {}." and open_clip's short ImageNet set (the seven templates its
    authors picked from CLIP's eighty). Local: templates from its own training captions, since every
    other word is unknown to its ShapesWorld vocabulary.
    """
    from open_clip.zero_shot_metadata import SIMPLE_IMAGENET_TEMPLATES

    spec = next(s for s in specs() if s.name == name)
    if spec.tier == "local":
        return list(spec.source.card().get("caption_templates", DEFAULT_TEMPLATES))[:6]
    return [DEFAULT_TEMPLATES[0], *(template("{}") for template in SIMPLE_IMAGENET_TEMPLATES)]


def specs() -> list[ModelSpec]:
    """Zero-shot models, best first (ImageNet zero-shot top-1 from open_clip's results table)."""
    return [
        _open_clip_spec("clip-vit-b-16", "OpenCLIP ViT-B/16 (LAION-2B)", "ViT-B-16", "laion2b_s34b_b88k", 149_620_737, 0.7023),
        _open_clip_spec(
            "clip-vit-b-32", "OpenCLIP ViT-B/32 (LAION-2B)", "ViT-B-32", "laion2b_s34b_b79k", 151_277_313, 0.6656,
            fast_on_cpu=True,
        ),
        _local_spec(),
    ]
