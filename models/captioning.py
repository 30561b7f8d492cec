"""Captioning and visual question answering: one wrapper per job for both tiers, and specs().

Every captioner decodes through transformers' own ``generate`` (greedy, beam search, nucleus
sampling; the settings in ``models/decoding.py``): BLIP's ``BlipForConditionalGeneration.generate`` for the pretrained and the tiny BLIP,
``GenerationMixin.generate`` for the CNN-LSTM. Every answerer is ``BlipForQuestionAnswering``.
Inputs go through the model's own processor and tokenizer, as transformers documents:

    inputs = processor(images=image, text=prefix, return_tensors="pt")
    ids = model.generate(**inputs)
    caption = processor.decode(ids[0], skip_special_tokens=True)

What a student looks inside comes from re-running the chosen text through the same modules with
the image: each step's next-token distribution (``explain``), and where the model looked for each
word (a Grad-CAM on the last cross-attention over the image patches, ``models/gradcam.py``, as BLIP's
own authors map their model: the attention weighted by how much the word's log-probability depends on it).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn
from transformers import LogitsProcessorList

import shapesworld
from shapesworld.language import named_objects

from .decoding import MAX_NEW_TOKENS, Decoding, Generated, StepObserver, seeded, stream
from .gradcam import gradcam, patch_grid
from .sources import HuggingFaceWeights, LocalWeights, WeightsUnavailable
from .spec import ModelSpec, local_spec

TOP_K_SHOWN = 5


@dataclass
class Step:
    """One decoding step of a chosen text: the token taken and the model's five most likely tokens."""

    token: str
    probability: float
    top: list[tuple[str, float]]


@dataclass
class Explanation:
    """A text re-read by the model: its steps, and a heatmap per step over the image (or None)."""

    steps: list[Step]
    heatmaps: np.ndarray | None  # (steps, grid_h, grid_w), each in [0, 1]

    def parted_ways(self) -> list[int]:
        """Steps where the text did not take the single most likely token (where greedy would differ)."""
        return [i for i, s in enumerate(self.steps) if s.top and s.token != s.top[0][0]]


class _ImageToText(nn.Module):
    """A network with its image processor and tokenizer: what captioners and answerers share."""

    def __init__(self, network: nn.Module, processor, tokenizer, name: str) -> None:
        super().__init__()
        self.network = network.eval()
        self.processor = processor
        self.tokenizer = tokenizer
        self.name = name

    @property
    def _device(self) -> torch.device:
        return next(self.network.parameters()).device

    @property
    def text_positions(self) -> int:
        """The longest text the network reads, special tokens included (BLIP's position embeddings: 20 for the tiny ones).

        ``generate`` does not stop there on its own: a caption that has not ended by then runs
        past the last position and fails, so every text this wrapper writes or reads is kept within it.
        """
        config = self.network.config
        return getattr(config, "text_config", config).max_position_embeddings

    def words(self, text: str) -> list[str]:
        """``text`` split into words as the tokenizer splits it before WordPiece (lower-cased; CJK characters apart)."""
        backend = self.tokenizer.backend_tokenizer
        normalised = backend.normalizer.normalize_str(text) if backend.normalizer else text
        return [word for word, _ in backend.pre_tokenizer.pre_tokenize_str(normalised)]

    def unknown_words(self, text: str) -> list[str]:
        """Words of ``text`` the tokenizer can only read as [UNK] (the local models' small vocabulary)."""
        unknown = self.tokenizer.unk_token_id
        return list(dict.fromkeys(w for w in self.words(text) if unknown in self.tokenizer(w, add_special_tokens=False).input_ids))

    def pixel_values(self, images: Sequence[Image.Image]) -> torch.Tensor:
        pixels = self.processor(images=list(images), return_tensors="pt").pixel_values
        return pixels.to(self._device, next(self.network.parameters()).dtype)

    def decode(self, ids: torch.LongTensor) -> list[str]:
        return [t.strip() for t in self.tokenizer.batch_decode(ids, skip_special_tokens=True)]


class Captioner(_ImageToText):
    """A captioning network with its processor and tokenizer: BLIP (either tier) or the CNN-LSTM."""

    @property
    def is_blip(self) -> bool:
        return hasattr(self.network, "vision_model")

    def prompt_ids(self, count: int, prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
        """[CLS] + prefix + [SEP], as the processor tokenises a conditional caption's text, for each image.

        ``generate`` drops the [SEP], so a prefix cut to ``text_positions`` tokens with it leaves room for one new token.
        """
        encoded = self.tokenizer([prefix.strip()] * count, truncation=True, max_length=self.text_positions, return_tensors="pt")
        return encoded.input_ids.to(self._device), encoded.attention_mask.to(self._device)

    def max_new_tokens(self, prefix: str = "") -> int:
        """The longest caption this model can write after ``prefix`` (the start token and the prefix take positions too)."""
        return min(MAX_NEW_TOKENS, self.text_positions - (self.prompt_ids(1, prefix)[0].shape[1] - 1))

    def _prefix_notices(self, prefix: str, decoding: Decoding) -> tuple[Decoding, list[str]]:
        """``decoding`` bounded by what fits after ``prefix``, and what the user should know about how the prefix was read.

        Asking for more than the model ever writes is named; the room a prefix takes is named only
        if a caption runs into it (``_cut_notices``), since most captions end well before.
        """
        notices = []
        unknown = self.unknown_words(prefix)
        if unknown:
            notices.append(f"Words this model cannot read: {', '.join(unknown)}.")
        tokens = len(self.tokenizer(prefix.strip()).input_ids)
        if tokens > self.text_positions:
            notices.append(f"The start is {tokens - 2} tokens long; this model reads only its first {self.text_positions - 2}.")
        reason = f"this model reads at most {self.text_positions} tokens, its start included"
        _, lowered = decoding.within(self.max_new_tokens(), reason)
        decoding, _ = decoding.within(self.max_new_tokens(prefix), reason)
        return decoding, notices + lowered

    def _cut_notices(self, rows: list[list[int]]) -> list[str]:
        """A notice when a caption filled every position without ending: it stops there, mid-sentence."""
        cut = sum(len(row) >= self.text_positions and row[-1] != self.tokenizer.sep_token_id for row in rows)
        if not cut:
            return []
        return [f"{cut} caption(s) had not ended by this model's last position ({self.text_positions} tokens, the start included): cut there."]

    @torch.no_grad()
    def generate(self, images: Sequence[Image.Image], decoding: Decoding, prefix: str = "", on_step=None) -> Generated:
        """``decoding.sequences`` captions per image, each starting with ``prefix`` (conditional captioning)."""
        decoding.check()
        started = time.perf_counter()
        decoding, notices = self._prefix_notices(prefix, decoding)
        pixels = self.pixel_values(images)
        kwargs = decoding.generate_kwargs()
        if on_step is not None:
            kwargs["logits_processor"] = LogitsProcessorList([StepObserver(on_step)])
        ids, mask = self.prompt_ids(len(images), prefix)
        with seeded(decoding):
            if self.is_blip:
                # BLIP's generate swaps [CLS] for its [DEC] token and drops the trailing [SEP] itself.
                out = self.network.generate(pixel_values=pixels, input_ids=ids, attention_mask=mask, **kwargs)
            else:
                features = self.network.encode(pixels)
                out = self.network.generate(input_ids=ids[:, :-1], image_features=features, use_cache=False, **kwargs)
        if decoding.method == "greedy" and decoding.count > 1:
            notices.append("Greedy decoding has one answer: pick beam search or nucleus sampling for several.")
        rows = _without_padding(out, self.tokenizer.pad_token_id)
        return Generated(self.decode(out), rows, notices + self._cut_notices(rows), time.perf_counter() - started)

    def stream(self, image: Image.Image, decoding: Decoding, prefix: str = "") -> Iterator[list[str] | Generated]:
        """Partial captions after every decoding step (live beams for beam search), then the Generated."""
        decoding.check()  # before the thread starts, so a bad request fails in the caller
        return stream(lambda on_step: self.generate([image], decoding, prefix, on_step), self.decode)

    def explain(self, image: Image.Image, ids: Sequence[int]) -> Explanation:
        """Re-read caption ``ids`` (as generated) with the image: each step's top tokens and heatmap."""
        pixels = self.pixel_values([image])
        ids_tensor = torch.tensor([list(ids)[: self.text_positions]], device=self._device)
        if self.is_blip:
            return self._explain_blip(pixels, ids_tensor)
        with torch.no_grad():
            logits = self.network(input_ids=ids_tensor, pixel_values=pixels).logits
        return Explanation(self._steps(logits[0], ids_tensor[0]), None)

    def _explain_blip(self, pixels: torch.Tensor, ids: torch.Tensor) -> Explanation:
        ids = ids.clone()
        ids[:, 0] = self.network.config.text_config.bos_token_id
        with torch.no_grad():
            image_embeds = self.network.vision_model(pixel_values=pixels)[0]
        with torch.enable_grad():
            # The cache freezes the weights, so the gradient flows from the image side instead.
            image_embeds = image_embeds.detach().requires_grad_(True)
            out = self.network.text_decoder(
                input_ids=ids, encoder_hidden_states=image_embeds, output_attentions=True, return_dict=True
            )
            attention = out.cross_attentions[-1]  # last layer: (1, heads, tokens, 1 + patches)
            log_probs = out.logits[0, :-1].float().log_softmax(-1)
            target = log_probs.gather(1, ids[0, 1:, None]).sum()
            (gradients,) = torch.autograd.grad(target, attention)
        grid = patch_grid(self.network.config.vision_config)
        heatmaps = gradcam(attention[0].detach(), gradients[0], grid)[:-1]  # query t predicts token t + 1
        return Explanation(self._steps(out.logits[0].detach(), ids[0]), heatmaps)

    def _steps(self, logits: torch.Tensor, ids: torch.Tensor) -> list[Step]:
        """Position t's distribution predicts token t + 1; one Step per token after the first."""
        probabilities = logits[:-1].float().softmax(-1)
        top = probabilities.topk(TOP_K_SHOWN, dim=-1)
        steps = []
        for t, token_id in enumerate(ids[1:].tolist()):
            names = self.tokenizer.convert_ids_to_tokens(top.indices[t].tolist())
            shown = [(name, float(p)) for name, p in zip(names, top.values[t].tolist())]
            steps.append(Step(self.tokenizer.convert_ids_to_tokens(token_id), float(probabilities[t, token_id]), shown))
        return steps


class Answerer(_ImageToText):
    """``BlipForQuestionAnswering`` (either tier) with its processor and tokenizer."""

    def questions(self, questions: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """The questions tokenised and padded, each cut to the ``text_positions`` tokens the question encoder reads."""
        encoded = self.tokenizer(list(questions), padding=True, truncation=True, max_length=self.text_positions, return_tensors="pt")
        return encoded.input_ids.to(self._device), encoded.attention_mask.to(self._device)

    def answer_ids(self, answers: Sequence[str]) -> torch.Tensor:
        """[CLS] answer [SEP] per answer, padded, each cut to the ``text_positions`` tokens the answer decoder reads."""
        encoded = self.tokenizer(list(answers), padding=True, truncation=True, max_length=self.text_positions, return_tensors="pt")
        return encoded.input_ids.to(self._device)

    @torch.no_grad()
    def generate(self, images: Sequence[Image.Image], questions: Sequence[str], decoding: Decoding, on_step=None) -> Generated:
        """``decoding.sequences`` answers per (image, question) pair, through BLIP's own ``generate``."""
        decoding.check()
        started = time.perf_counter()
        # The answer decoder starts from its [BOS] token: the rest of its positions are the answer's.
        decoding, notices = decoding.within(self.text_positions - 1, f"this model's answers are at most {self.text_positions - 1} tokens long")
        ids, mask = self.questions(questions)
        kwargs = decoding.generate_kwargs()
        if on_step is not None:
            kwargs["logits_processor"] = LogitsProcessorList([StepObserver(on_step)])
        with seeded(decoding):
            out = self.network.generate(input_ids=ids, pixel_values=self.pixel_values(images), attention_mask=mask, **kwargs)
        return Generated(self.decode(out), _without_padding(out, self.tokenizer.pad_token_id), notices, time.perf_counter() - started)

    def stream(self, image: Image.Image, question: str, decoding: Decoding) -> Iterator[list[str] | Generated]:
        decoding.check()
        return stream(lambda on_step: self.generate([image], [question], decoding, on_step), self.decode)

    def _question_embeds(self, pixels: torch.Tensor, question: str, output_attentions: bool = False):
        ids, mask = self.questions([question])
        with torch.no_grad():
            image_embeds = self.network.vision_model(pixel_values=pixels)[0]
        if output_attentions:  # a Grad-CAM follows: the gradient flows from the image side (weights are frozen)
            image_embeds = image_embeds.detach().requires_grad_(True)
        return self.network.text_encoder(
            input_ids=ids, attention_mask=mask, encoder_hidden_states=image_embeds, output_attentions=output_attentions, return_dict=True
        )

    def _answer_log_probs(self, question_embeds: torch.Tensor, answers: torch.Tensor) -> torch.Tensor:
        """log p(answer | question, image) for each row of ``answers`` ([BOS] answer [SEP], padded)."""
        answers = answers.clone()
        answers[:, 0] = self.network.decoder_start_token_id
        embeds = question_embeds.expand(len(answers), -1, -1)
        logits = self.network.text_decoder(input_ids=answers, encoder_hidden_states=embeds, return_dict=True).logits
        log_probs = logits[:, :-1].float().log_softmax(-1).gather(2, answers[:, 1:, None])[..., 0]
        keep = answers[:, 1:] != self.tokenizer.pad_token_id
        return (log_probs * keep).sum(1)

    @torch.no_grad()
    def top_answers(self, image: Image.Image, question: str, k: int = TOP_K_SHOWN) -> list[tuple[str, float]]:
        """The ``k`` answers beam search finds, each with the model's probability of that whole answer."""
        found = self.generate([image], [question], Decoding("beam search", beams=k, count=k, max_tokens=10))
        unique = list(dict.fromkeys(t for t in found.texts if t))
        if not unique:
            return []
        answers = self.answer_ids(unique)
        embeds = self._question_embeds(self.pixel_values([image]), question).last_hidden_state
        probabilities = self._answer_log_probs(embeds, answers).exp().tolist()
        return sorted(zip(unique, probabilities), key=lambda pair: -pair[1])

    def explain(self, image: Image.Image, question: str, answer: str) -> np.ndarray:
        """Where the model looked to answer: Grad-CAM of log p(answer) on the question's last cross-attention.

        The answer decoder only reads the question's encoding, and the question encoder is what
        reads the image; so the map is its cross-attention (all question tokens together).
        """
        with torch.enable_grad():
            encoded = self._question_embeds(self.pixel_values([image]), question, output_attentions=True)
            attention = encoded.cross_attentions[-1]  # (1, heads, question tokens, 1 + patches)
            answers = self.answer_ids([answer])
            target = self._answer_log_probs(encoded.last_hidden_state, answers).sum()
            (gradients,) = torch.autograd.grad(target, attention)
        maps = gradcam(attention[0].detach(), gradients[0], patch_grid(self.network.config.vision_config))
        combined = maps.sum(0)
        return combined / max(float(combined.max()), 1e-12)


def _without_padding(ids: torch.Tensor, pad: int) -> list[list[int]]:
    """Each sequence's ids without the padding ``generate`` adds after a sequence that ended early."""
    rows = []
    for row in ids.tolist():
        while row and row[-1] == pad:
            row.pop()
        rows.append(row)
    return rows


def names_only_what_is_there(caption: str, objects: list) -> bool:
    """Whether every object the caption names is in the scene with that colour and shape, and it names as many as the grammar does.

    The grammar describes the two largest objects, but in about a quarter of the scenes the second
    and third largest differ by under 10% of their area, so *which* two is often a coin toss; this
    metric asks whether what the caption says is true. ``caption_reference_objects`` asks for the
    reference's two.
    """
    named = Counter(named_objects(caption))
    present = Counter(("", o.kind) if o.kind == shapesworld.PERSON else (o.colour, o.kind) for o in objects)
    expected = min(len(objects), 2)
    if expected == 0:
        return caption.strip() == "an empty scene"
    return sum(named.values()) == expected and all(present[key] >= count for key, count in named.items())


CAPTION_REPO = "Salesforce/blip-image-captioning-base"
VQA_REPO = "Salesforce/blip-vqa-base"
BLIP_LICENSE = "BSD-3-Clause (Salesforce BLIP); pretrained on 129 M web image-text pairs, fine-tuned on COCO / VQA v2"


def _load_blip(spec: ModelSpec) -> Captioner | Answerer:
    from transformers import BlipForConditionalGeneration, BlipForQuestionAnswering, BlipProcessor

    source: HuggingFaceWeights = spec.source  # type: ignore[assignment]
    network_class, wrapper = (BlipForConditionalGeneration, Captioner) if spec.task == "captioning" else (BlipForQuestionAnswering, Answerer)
    network, processor = source.build(network_class, BlipProcessor)
    return wrapper(network, processor.image_processor, processor.tokenizer, spec.name)


def _load_local(spec: ModelSpec) -> Captioner | Answerer:
    from .nets.captioning import image_processor, load_network, shapes_tokenizer

    source: LocalWeights = spec.source  # type: ignore[assignment]
    state = source.state_dict()  # first: a missing file must say how to train it
    card = source.card()
    wrapper = Captioner if spec.task == "captioning" else Answerer
    return wrapper(load_network(card, state), image_processor(card["image_size"]), shapes_tokenizer(tuple(card["vocabulary"])), spec.name)


def longest_caption(spec: ModelSpec) -> int:
    """The most tokens captioner ``spec`` writes with no prefix (``Captioner.max_new_tokens("")``), read from its config alone.

    The page bounds its length slider with it whenever a model is picked, without loading weights;
    MAX_NEW_TOKENS when the config is not on this machine (the request then says how to get it).
    """
    from transformers import BlipConfig

    from .nets.captioning import MAX_TEXT_TOKENS

    try:
        if isinstance(spec.source, LocalWeights):
            config = spec.source.card().get("config", {})
            positions = config.get("text_config", config).get("max_position_embeddings", MAX_TEXT_TOKENS)
        else:
            (config,) = spec.source.build(BlipConfig)
            positions = config.text_config.max_position_embeddings
    except WeightsUnavailable:
        return MAX_NEW_TOKENS
    return min(MAX_NEW_TOKENS, positions - 1)  # the start token takes the first position


def _pretrained_spec(task: str, name: str, title: str, repo: str, params: int, metrics: dict, about: str) -> ModelSpec:
    return ModelSpec(
        name=name, task=task, tier="pretrained", title=title, source=HuggingFaceWeights(repo), license=BLIP_LICENSE,
        params=params, load=_load_blip, metrics=metrics, about=about,
        input_size=384,  # both BLIP base checkpoints: ViT-B/16 at 384x384; their tokenizer's word pieces are not listed (empty vocabulary)
    )


CAPTION_METRICS = {"ShapesWorld test: captions naming only real objects, right colour and shape": "caption_all_attributes", "CIDEr": "cider"}


def specs() -> list[ModelSpec]:
    """Captioners (task "captioning") and answerers (task "answer"): BLIP base first, then the local ones."""
    return [
        _pretrained_spec(
            "captioning", "blip-caption-base", "BLIP base captioning", CAPTION_REPO, 223_971_644,
            {"COCO Karpathy test CIDEr (BLIP paper, ViT-B, CapFilt-L)": 133.3},
            "`transformers.BlipForConditionalGeneration` · ViT-B/16 at 384x384, BERT-base decoder with cross-attention; a text prefix steers the caption",
        ),
        local_spec(
            "captioning", "blip-caption-shapes", "Tiny BLIP captioner (ShapesWorld)", _load_local, CAPTION_METRICS,
            "the same `BlipForConditionalGeneration` with a tiny config (`models/nets/captioning.py`); trained by `python -m models train blip-caption-shapes`",
        ),
        local_spec(
            "captioning", "lstm-caption-shapes", "CNN-LSTM captioner (ShapesWorld)", _load_local, CAPTION_METRICS,
            "a CNN's image vector starts an LSTM that writes the caption (`models/nets/captioning.py`); trained by `python -m models train lstm-caption-shapes`",
        ),
        _pretrained_spec(
            "answer", "blip-vqa-base", "BLIP base VQA", VQA_REPO, 361_230_140,
            {"VQA v2 test-dev accuracy (BLIP paper, ViT-B; 77.5 to 78.3 by pre-training set)": 77.5},
            "`transformers.BlipForQuestionAnswering` · ViT-B/16 at 384x384, a question encoder that reads the image, an answer decoder",
        ),
        local_spec(
            "answer", "blip-vqa-shapes", "Tiny BLIP VQA (ShapesWorld)", _load_local, {"ShapesWorld test VQA accuracy": "vqa_accuracy"},
            "the same `BlipForQuestionAnswering` with a tiny config (`models/nets/captioning.py`); trained by `python -m models train blip-vqa-shapes`",
        ),
    ]
