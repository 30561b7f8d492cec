"""Train and evaluate the local captioners (tiny BLIP, CNN-LSTM) and the tiny BLIP VQA model.

    python -m models train blip-caption-shapes --threads 2     # each within 30 min on 2 CPU cores
    python -m models train lstm-caption-shapes --threads 2
    python -m models train blip-vqa-shapes --threads 2
    python -m models evaluate blip-vqa-shapes --seed 2000000 --count 500 --json

Data: ShapesWorld scenes (128x128, the default generator) rendered once into a pool, put through
the model's own image processor (BLIP's, at 96x96) and kept in memory; captions and
question-answer pairs come with each scene. Every step draws a batch of scenes (captioning) or of
question-answer pairs (VQA) from the pool. Each scene also keeps a label for every patch of the
image encoder (``patch_labels``), the target of the training-only auxiliary loss (``PatchProbe``).

Metrics (``--json`` keys):
- ``caption_all_attributes``: share of scenes whose greedy caption names as many objects as the
  grammar does (two, or one, or "an empty scene") and every one of them is in the scene with the
  colour and shape it says (``names_only_what_is_there``; a person counts as "person").
  ``caption_reference_objects``: the caption names exactly the reference's objects (the two
  largest, often a near tie). ``caption_exact``: the caption is one of the grammar's captions for
  the scene, relation and sizes included.
- ``bleu4`` and ``cider``: the COCO caption evaluation's own scorers (``pycocoevalcap``), against
  both orders of the reference ("a star left of a ring" = "a ring right of a star").
- ``vqa_accuracy``: exact match of the greedy answer, over every question of every scene, and
  ``vqa_accuracy_by_type`` (colour, shape, count, existence, relation).
"""

from __future__ import annotations

import os
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from transformers import BlipForConditionalGeneration, BlipForQuestionAnswering

import shapesworld
from models.captioning import Answerer, Captioner, names_only_what_is_there
from models.decoding import Decoding
from models.nets.captioning import (
    IMAGE_SIZE,
    PATCH_SIZE,
    VOCABULARY,
    LstmCaptioner,
    LstmCaptionerConfig,
    image_processor,
    load_network,
    shapes_tokenizer,
    tiny_blip_config,
)
from models.sources import LocalWeights
from shapesworld import COLOURS, PERSON, SHAPES
from shapesworld.language import captions_for, named_objects

from .common import WEIGHTS_DIR, TrainLog, bf16_autocast_pays, save_checkpoint, seed_everything

RUNS_DIR = WEIGHTS_DIR.parent / "runs"
TEST_SEED = shapesworld.SPLITS["test"].start
VAL_SEED = shapesworld.SPLITS["val"].start


@dataclass(frozen=True)
class Recipe:
    job: str  # "caption" | "answer"
    network: str  # "blip" | "lstm"
    steps: int
    lr: float
    scenes: int = 40_000
    batch: int = 64
    init_from: str | None = None  # a shipped captioner whose image encoder and text side start this model
    patch_loss: float = 0.0  # weight of the auxiliary per-patch colour-and-shape loss on the image encoder (0: none)
    image_size: int = IMAGE_SIZE
    patch_size: int = PATCH_SIZE


RECIPES = {
    # The per-patch loss (``PatchProbe``) at weight 3: after 1,200 steps on 200 validation scenes it
    # lifted ``caption_all_attributes`` from 0.33 (none) to 0.525 (weight 1) and 0.575 (weight 3).
    "blip-caption-shapes": Recipe("caption", "blip", steps=5000, lr=1e-3, patch_loss=3.0),
    "lstm-caption-shapes": Recipe("caption", "lstm", steps=1500, lr=1e-3),
    # As BLIP's own VQA model is fine-tuned from pre-trained BLIP: from scratch, the answer's single
    # token is too thin a signal for the ViT to learn to see in 30 minutes; a caption's dozen tokens are not.
    "blip-vqa-shapes": Recipe("answer", "blip", steps=3800, lr=5e-4, init_from="blip-caption-shapes", patch_loss=3.0),
}


@dataclass
class Pool:
    """Rendered scenes as the processor prepares them, with their captions and questions."""

    pixels: torch.Tensor  # (N, 3, S, S) float16
    captions: list[str]
    qa: list[tuple[int, str, str]]  # (scene index, question, answer)
    patch_labels: torch.Tensor  # (N, G, G) uint8: what each image-encoder patch mostly shows (see ``patch_labels``)


def render_pool(first_seed: int, count: int, processor, grid: int, chunk: int = 500, workers: int | None = None) -> Pool:
    """Render ``count`` scenes from ``first_seed`` on, in chunks spread over ``workers`` processes (default: one per core).

    ``grid`` is the image encoder's patch grid side, for the patch labels.
    """
    starts = range(first_seed, first_seed + count, chunk)
    jobs = [(start, min(chunk, first_seed + count - start), processor, grid) for start in starts]
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        parts = list(pool.map(_render_chunk, jobs))
    pixels, captions, qa, labels = [], [], [], []
    for chunk_pixels, chunk_captions, chunk_qa, chunk_labels in parts:
        qa.extend((len(captions) + scene, question, answer) for scene, question, answer in chunk_qa)
        captions.extend(chunk_captions)
        pixels.append(chunk_pixels)
        labels.append(chunk_labels)
    return Pool(torch.cat(pixels), captions, qa, torch.cat(labels))


def _render_chunk(job: tuple) -> tuple[torch.Tensor, list[str], list[tuple[int, str, str]], torch.Tensor]:
    start, count, processor, grid = job
    torch.set_num_threads(1)  # one process per core already
    scenes = [shapesworld.generate(seed) for seed in range(start, start + count)]
    pixels = processor(images=[s.image for s in scenes], return_tensors="pt").pixel_values.half()
    qa = [(i, pair.question, pair.answer) for i, scene in enumerate(scenes) for pair in scene.qa]
    return pixels, [s.caption for s in scenes], qa, torch.stack([patch_labels(s, grid) for s in scenes])


PATCH_LABELS: tuple[str, ...] = ("background", PERSON, *(f"{c} {s}" for c in COLOURS for s in SHAPES))
"""The auxiliary loss's classes: what a patch of the image mostly shows."""


def patch_labels(scene: shapesworld.Scene, grid: int, background_weight: float = 0.25) -> torch.Tensor:
    """A (grid, grid) map of ``PATCH_LABELS`` indices: the class covering most of each patch.

    Background counts a quarter, so a patch a small shape only partly fills is labelled with the
    shape: those are the patches where the caption's shape words are won or lost.
    """
    names = ["background", *(PERSON if o.kind == PERSON else f"{o.colour} {o.kind}" for o in scene.objects)]
    classes = sorted({PATCH_LABELS.index(n) for n in names})
    per_instance = torch.tensor([classes.index(PATCH_LABELS.index(n)) for n in names])  # instance id -> row of ``classes``
    local = per_instance[torch.from_numpy(scene.instance_map).long()]
    shares = torch.nn.functional.adaptive_avg_pool2d(torch.nn.functional.one_hot(local, len(classes)).permute(2, 0, 1).float(), grid)
    shares[0] *= background_weight
    return torch.tensor(classes, dtype=torch.uint8)[shares.argmax(0)]


def build_network(recipe: Recipe) -> torch.nn.Module:
    if recipe.network == "lstm":
        return LstmCaptioner(LstmCaptionerConfig())
    if recipe.init_from:
        return vqa_from_captioner(LocalWeights(recipe.init_from))
    cls = BlipForConditionalGeneration if recipe.job == "caption" else BlipForQuestionAnswering
    return cls(tiny_blip_config(image_size=recipe.image_size, patch_size=recipe.patch_size))


def vqa_from_captioner(source: LocalWeights) -> BlipForQuestionAnswering:
    """A VQA model started from a trained captioner, the way BLIP fine-tunes VQA from its pre-trained model.

    The image encoder is copied; the question encoder and the answer decoder both start from the
    caption decoder (the same ``BlipTextModel`` layers, cross-attention to the image included; the
    question encoder reads bidirectionally, so it only inherits a starting point).
    """
    captioner = load_network(source.card(), source.state_dict())
    network = BlipForQuestionAnswering(captioner.config)
    network.vision_model.load_state_dict(captioner.vision_model.state_dict())
    network.text_decoder.load_state_dict(captioner.text_decoder.state_dict())
    network.text_encoder.load_state_dict(captioner.text_decoder.bert.state_dict())
    return network


def scenes_of(recipe: Recipe, pool: Pool, pick: torch.Tensor) -> torch.Tensor:
    """The pool's scene index of each picked item (a scene when captioning, a question-answer pair otherwise)."""
    if recipe.job == "caption":
        return pick
    return torch.tensor([pool.qa[i][0] for i in pick.tolist()])


class PatchProbe:
    """An auxiliary loss: a linear layer must read each patch's colour and shape off the image encoder's output.

    The caption's few shape words are a thin signal for a ViT learning to see from scratch; a
    label for each of its 144 patches (from ShapesWorld's masks) is a dense one, as token labelling
    is for ViTs on ImageNet. The probe is training-only: the shipped model is the plain BLIP.
    """

    def __init__(self, network: torch.nn.Module) -> None:
        self.head = torch.nn.Linear(network.config.vision_config.hidden_size, len(PATCH_LABELS))
        self.features: torch.Tensor | None = None
        network.vision_model.register_forward_hook(self._keep)

    def _keep(self, _module: torch.nn.Module, _inputs: tuple, outputs: tuple) -> None:
        self.features = outputs[0][:, 1:]  # the patch tokens after the final layer norm ([CLS] dropped)

    def loss(self, labels: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.features.float())
        return torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten().long())


def batch_loss(network: torch.nn.Module, recipe: Recipe, pool: Pool, pick: torch.Tensor, scenes: torch.Tensor, tokenizer) -> torch.Tensor:
    """The library's own training loss: BLIP's shifted LM loss on captions or answers, or the LSTM's.

    ``scenes`` is ``scenes_of(recipe, pool, pick)``; the text goes where the pool's pixels are.
    """
    pixels = pool.pixels[scenes].float()
    if recipe.job == "caption":
        text = tokenizer([pool.captions[i] for i in pick.tolist()], padding=True, return_tensors="pt").to(pixels.device)
        labels = text.input_ids.masked_fill(text.attention_mask == 0, -100)
        if recipe.network == "lstm":
            return network(input_ids=text.input_ids, pixel_values=pixels, labels=labels).loss
        return network(pixel_values=pixels, input_ids=text.input_ids, attention_mask=text.attention_mask, labels=labels).loss
    rows = [pool.qa[i] for i in pick.tolist()]
    questions = tokenizer([q for _, q, _ in rows], padding=True, return_tensors="pt").to(pixels.device)
    answers = tokenizer([a for _, _, a in rows], padding=True, return_tensors="pt").input_ids.to(pixels.device)  # [CLS] word [SEP]
    return network(pixel_values=pixels, input_ids=questions.input_ids, attention_mask=questions.attention_mask, labels=answers).loss


def wrap(network: torch.nn.Module, recipe: Recipe, name: str) -> Captioner | Answerer:
    cls = Captioner if recipe.job == "caption" else Answerer
    return cls(network.eval(), image_processor(_image_size(network)), shapes_tokenizer(), name)


def train(
    name: str,
    seed: int = 0,
    steps: int | None = None,
    out: Path = WEIGHTS_DIR,
    eval_count: int = 500,
    val_every: int = 2000,
    device: str = "cpu",
) -> dict:
    recipe = RECIPES[name]
    steps = steps or recipe.steps
    seed_everything(seed)
    log = TrainLog()
    tokenizer = shapes_tokenizer()
    first = shapesworld.SPLITS["train"].start + seed * 100_000
    pool = render_pool(first, recipe.scenes, image_processor(recipe.image_size), recipe.image_size // recipe.patch_size)
    pool_seconds = log.elapsed
    print(f"[{pool_seconds:7.1f}s] rendered {len(pool.captions)} scenes ({len(pool.qa)} questions) from seed {first}", flush=True)
    pool = _on(pool, device)  # once: the whole pool lives where the network does
    network = build_network(recipe).to(device)
    probe = PatchProbe(network) if recipe.patch_loss else None
    parameters = [*network.parameters(), *(probe.head.to(device).parameters() if probe else ())]
    opt = torch.optim.AdamW(parameters, lr=recipe.lr, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.lr, total_steps=steps, pct_start=max(0.05, 2 / steps))
    bf16 = device == "cpu" and bf16_autocast_pays()
    generator = torch.Generator().manual_seed(seed)
    items = len(pool.captions) if recipe.job == "caption" else len(pool.qa)
    for step in range(1, steps + 1):
        network.train()
        pick = torch.randint(items, (recipe.batch,), generator=generator)
        scenes = scenes_of(recipe, pool, pick)
        with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16, enabled=bf16 or device.startswith("cuda")):
            loss = batch_loss(network, recipe, pool, pick, scenes, tokenizer)
            extra = {}
            if probe:
                extra["patch_loss"] = probe.loss(pool.patch_labels[scenes])
                loss = loss + recipe.patch_loss * extra["patch_loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        opt.step()
        sched.step()
        log.step(step, steps, loss=loss.item(), lr=sched.get_last_lr()[0], **{k: v.item() for k, v in extra.items()})
        if step % val_every == 0 and step != steps:
            quick = evaluate(wrap(network, recipe, name), seed=VAL_SEED, count=100)
            print(f"  val {quick}", flush=True)
            save_checkpoint(network, name, _card_base(network) | {"step": step}, RUNS_DIR / name, half=True)
    train_seconds = log.elapsed
    network.load_state_dict({k: v.half().float() if v.is_floating_point() else v for k, v in network.state_dict().items()})
    metrics = evaluate(wrap(network, recipe, name), count=eval_count)  # scored as shipped: float16
    print(f"test {metrics}", flush=True)
    card = {
        **_card_base(network),
        "seed": seed,
        "train": {
            "job": recipe.job, "steps": steps, "batch": recipe.batch, "lr": recipe.lr,
            "optimizer": "AdamW (weight decay 0.05), one-cycle schedule, grad-norm clip 1",
            "pool_scenes": recipe.scenes, "pool_seeds": f"{first}..{first + recipe.scenes - 1}",
            "initialised_from": _initialised_from(recipe),
            "auxiliary_loss": f"per-patch colour and shape (PatchProbe), weight {recipe.patch_loss}" if recipe.patch_loss else "none",
            "autocast": "bfloat16" if bf16 else "none",
        },
        "pool_seconds": round(pool_seconds, 1),
        "train_seconds": round(train_seconds, 1),
        "metrics": metrics,
        "trained_at": time.strftime("%Y-%m-%d"),
    }
    save_checkpoint(network, name, card, out, half=True)
    return card


def _initialised_from(recipe: Recipe) -> str:
    if not recipe.init_from:
        return "random"
    card = LocalWeights(recipe.init_from).card()
    return f"{recipe.init_from} (trained {card.get('trained_at')}, {card.get('file_bytes')} bytes)"


def _on(pool: Pool, device: str) -> Pool:
    return pool if device == "cpu" else Pool(pool.pixels.to(device), pool.captions, pool.qa, pool.patch_labels.to(device))


def _card_base(network: torch.nn.Module) -> dict:
    """What the loader needs to rebuild the network, tokenizer and processor: config, vocabulary, image size."""
    return {
        "architecture": type(network).__name__,
        "config": network.config.to_dict(),
        "vocabulary": list(VOCABULARY),
        "image_size": _image_size(network),
    }


def _image_size(network: torch.nn.Module) -> int:
    config = network.config
    return config.image_size if isinstance(config, LstmCaptionerConfig) else config.vision_config.image_size


def evaluate(model: Captioner | Answerer, seed: int = TEST_SEED, count: int = 500) -> dict:
    """Score a captioner or an answerer on ``count`` scenes from ``seed`` on (see the module docstring)."""
    scenes = [shapesworld.generate(s) for s in range(seed, seed + count)]
    if isinstance(model, Captioner):
        return evaluate_captions(model, scenes)
    return evaluate_answers(model, scenes)


def evaluate_captions(model: Captioner, scenes: list, batch: int = 50) -> dict:
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider

    generated: list[str] = []
    for start in range(0, len(scenes), batch):
        images = [Image.fromarray(s.image) for s in scenes[start : start + batch]]
        generated += model.generate(images, Decoding("greedy", max_tokens=20)).texts
    references = [captions_for(s.objects) for s in scenes]
    all_attributes = [names_only_what_is_there(g, s.objects) for g, s in zip(generated, scenes)]
    same_objects = [named_objects(g) == named_objects(refs[0]) for g, refs in zip(generated, references)]
    exact = [g in refs for g, refs in zip(generated, references)]
    gts = {i: refs for i, refs in enumerate(references)}
    res = {i: [g or "<empty>"] for i, g in enumerate(generated)}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    cider, _ = Cider().compute_score(gts, res)
    return {
        "caption_all_attributes": round(sum(all_attributes) / len(scenes), 4),
        "caption_reference_objects": round(sum(same_objects) / len(scenes), 4),
        "caption_exact": round(sum(exact) / len(scenes), 4),
        "bleu4": round(float(bleu[3]), 4),
        "cider": round(float(cider), 4),
        "scenes": len(scenes),
        "examples": [{"reference": refs[0], "generated": g} for g, refs in list(zip(generated, references))[:5]],
    }


def evaluate_answers(model: Answerer, scenes: list, batch: int = 64) -> dict:
    """Greedy answers, batched by question length so that no question is padded (as in the app)."""
    rows = [(i, qa) for i, scene in enumerate(scenes) for qa in scene.qa]
    by_length: dict[int, list] = defaultdict(list)
    for row in rows:
        by_length[len(model.tokenizer(row[1].question).input_ids)].append(row)
    right: dict[str, list[bool]] = defaultdict(list)
    for group in by_length.values():
        for start in range(0, len(group), batch):
            chunk = group[start : start + batch]
            images = [Image.fromarray(scenes[i].image) for i, _ in chunk]
            answers = model.generate(images, [qa.question for _, qa in chunk], Decoding("greedy", max_tokens=5)).texts
            for (_, qa), answer in zip(chunk, answers):
                right[qa.kind].append(answer == qa.answer)
    total = [r for kind in right.values() for r in kind]
    return {
        "vqa_accuracy": round(sum(total) / len(total), 4),
        "vqa_accuracy_by_type": {kind: round(sum(right[kind]) / len(right[kind]), 4) for kind in shapesworld.QUESTION_TYPES if right[kind]},
        "questions": len(total),
        "scenes": len(scenes),
    }
