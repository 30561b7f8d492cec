"""Train and evaluate the self-supervised local encoders on ShapesWorld objects, without their labels.

    python -m models train rotation-shapes --threads 1     # pretext: which way is up?
    python -m models train simclr-shapes --threads 1       # pretext: two views of one image, told apart from the rest
    python -m models evaluate simclr-shapes --json

Data: 64x64 single-object images from the train split (``shapesworld.single_object``), rendered
once into a pool. The labels (colour and shape: 30 classes) are never used in training, only to
score the frozen features afterwards.

Rotation (Gidaris et al., 2018): each image is turned by 0, 90, 180 or 270 degrees and the network
names the turn. It must find the object and its orientation; it never needs the colour.

Every ShapesWorld object is drawn at a random angle, so the object itself never says which way
is up; only the background's stripes do. The rotation network learns the stripes (a shortcut:
nothing about the object), and its features score *below* random ones on the probe. That is the
lesson it is shipped for: a pretext task teaches what solves it, not what you hoped.

SimCLR-style contrastive learning (Chen et al., 2020): two views of every object in a batch;
each view must pick out its twin among all the other objects' views (InfoNCE, as open_clip's
``ClipLoss`` computes it between the two sets of views, temperature 0.1). The augmentations
decide what the features ignore, and each one here closes a shortcut a trial run found:
- the two views are the same object over two different backgrounds
  (``single_object(seed, background_seed=...)``: the renderer gives exactly what crops of one
  photo approximate); with one shared background the views match on texture alone and the
  features learn the background, as the rotation task does;
- each view is turned by any angle, randomly cropped (scale 0.5 to 1), flipped and noised, so
  the object's angle, size and place do not identify it;
- each view's colour is jittered a little (brightness, contrast and saturation by up to 20%, hue
  by up to 0.02, well inside the gap between red and orange). Every object has its own exact
  tint (the renderer jitters each colour by up to 18 per channel), and without this the views
  matched on that tint and never needed the shape: shape probe 0.49, colour 0.98. SimCLR's
  strong colour jitter on photos would erase the colour category, which is half of an object;
- one second view in ten is grey, which a view can only match by shape.
In 300-step trials the 30-class probe rose from 0.74 (angle, crop and grey only) to 0.94.

Metrics on unseen images, from scikit-learn: ``linear_probe_accuracy`` (a logistic regression on
frozen, standardised features, fitted on 3000 validation-split images, scored on 1000 test-split
images, 30 colour-shape classes); ``random_init_probe_accuracy`` (the same probe on the same
architecture with random weights: what the architecture gives for free); ``recall_at_1`` (a
test image's nearest neighbour by cosine similarity among the 3000 probe images has its class).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from torchvision.transforms import v2

import shapesworld
from models.nets.encoder import Encoder, EncoderConfig

from ..retrieval import LABELS, MEAN, STD, features_of, label_of, normalise, probe_scores
from .common import WEIGHTS_DIR, TrainLog, save_checkpoint, seed_everything

IMAGE_SIZE = 64
PROBE_SEED = shapesworld.SPLITS["val"].start
TEST_SEED = shapesworld.SPLITS["test"].start
def render(first_seed: int, count: int, background_seed: int | None = None) -> tuple[torch.Tensor, np.ndarray]:
    """(count, 3, 64, 64) uint8 images from seeds ``first_seed...`` and their class indices into LABELS."""
    images, labels = [], []
    for seed in range(first_seed, first_seed + count):
        image, prompt = shapesworld.single_object(seed, IMAGE_SIZE, background_seed)
        images.append(torch.from_numpy(image).permute(2, 0, 1))
        labels.append(LABELS.index(label_of(prompt)))
    return torch.stack(images), np.array(labels)


def evaluate_encoder(encoder: Encoder, probe_count: int = 3000, test_count: int = 1000, seed: int = TEST_SEED) -> dict:
    probe_images, probe_labels = render(PROBE_SEED, probe_count)
    test_images, test_labels = render(seed, test_count)
    accuracy, recall = probe_scores(features_of(encoder, probe_images), probe_labels, features_of(encoder, test_images), test_labels)
    torch.manual_seed(0)
    random_init = Encoder(EncoderConfig(widths=encoder.config.widths))
    random_accuracy, random_recall = probe_scores(
        features_of(random_init, probe_images), probe_labels, features_of(random_init, test_images), test_labels
    )
    return {
        "linear_probe_accuracy": round(accuracy, 4),
        "random_init_probe_accuracy": round(random_accuracy, 4),
        "probe_gain": round(accuracy - random_accuracy, 4),
        "recall_at_1": round(recall, 4),
        "random_init_recall_at_1": round(random_recall, 4),
        "classes": len(LABELS),
        "probe_seeds": f"{PROBE_SEED}..{PROBE_SEED + probe_count - 1}",
        "eval_seeds": f"{seed}..{seed + test_count - 1}",
        "eval_count": test_count,
    }


def evaluate(embedder, seed: int = TEST_SEED, count: int = 1000) -> dict:
    """``python -m models evaluate``: the shipped encoder through the app's loader."""
    return evaluate_encoder(embedder.network, test_count=count, seed=seed)


def quarter_turns(images: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Each image turned by a random multiple of 90 degrees, and that multiple (the rotation task's label)."""
    turns = torch.randint(0, 4, (len(images),), generator=generator)
    turned = torch.stack([torch.rot90(image, int(k), (1, 2)) for image, k in zip(images, turns)])
    return turned, turns


class Views:
    """SimCLR's augmentations for ShapesWorld objects (see the module docstring for the choice)."""

    def __init__(self, generator: torch.Generator) -> None:
        self.crop = v2.RandomResizedCrop(IMAGE_SIZE, scale=(0.5, 1.0), antialias=True)
        self.spin = v2.RandomRotation(180, interpolation=v2.InterpolationMode.BILINEAR, fill=140)
        self.tint = v2.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02)
        self.generator = generator

    def __call__(self, images: torch.Tensor, grey: float = 0.0) -> torch.Tensor:
        """Augmented copies of ``images``; a ``grey`` share of them lose their colour (one channel mix)."""
        views = torch.stack([self.tint(self.crop(self.spin(image))) for image in images])
        greyed = torch.rand(len(views), generator=self.generator) < grey
        views[greyed] = views[greyed].float().mean(1, keepdim=True).round().to(torch.uint8).expand(-1, 3, -1, -1)
        flip = torch.rand(len(views), generator=self.generator) < 0.5
        views[flip] = views[flip].flip(3)
        noise = torch.randn(views.shape, generator=self.generator) * 6
        return (views.float() + noise).clamp(0, 255).to(torch.uint8)


def train(
    name: str,
    steps: int | None = None,
    batch: int = 128,
    lr: float = 2e-3,
    pool: int = 20_000,
    seed: int = 0,
    out: Path = WEIGHTS_DIR,
    eval_count: int = 1000,
    device: str = "cpu",
    grey: float = 0.1,
) -> dict:
    """Train ``rotation-shapes`` or ``simclr-shapes`` from scratch, with no labels, and save it with its card."""
    task = {"rotation-shapes": "rotation", "simclr-shapes": "projection"}[name]
    steps = steps or 1500
    seed_everything(seed)
    generator = torch.Generator().manual_seed(seed)
    log = TrainLog()
    first = shapesworld.SPLITS["train"].start + seed * pool
    images, _ = render(first, pool)  # the labels are not used
    if task == "projection":  # each object again over a second background: the positive pairs
        images = torch.stack([images, render(first, pool, background_seed=1)[0]], dim=1)
    pool_seconds = log.elapsed
    print(f"[{pool_seconds:7.1f}s] rendered {pool} training images from seeds {first}..{first + pool - 1}", flush=True)
    config = EncoderConfig(head=task)
    encoder = Encoder(config).to(device)
    opt = torch.optim.AdamW(encoder.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    contrastive = open_clip.ClipLoss()
    scale = torch.tensor(10.0, device=device)  # 1 / temperature 0.1
    views = Views(generator)
    for step in range(1, steps + 1):
        encoder.train()
        picked = images[torch.randint(0, pool, (batch,), generator=generator)]
        if task == "rotation":
            turned, turns = quarter_turns(picked, generator)
            loss = F.cross_entropy(encoder(normalise(turned.to(device))), turns.to(device))
        else:
            a, b = (F.normalize(encoder(normalise(views(picked[:, k], grey * k).to(device))), dim=-1) for k in range(2))
            loss = contrastive(a, b, scale)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        log.step(step, steps, loss=loss.item())
    train_seconds = log.elapsed
    encoder.eval()
    encoder.load_state_dict({k: v.half().to(v.dtype) if v.is_floating_point() else v for k, v in encoder.state_dict().items()})
    metrics = evaluate_encoder(encoder, test_count=eval_count)
    print("test " + " ".join(f"{k} {v}" for k, v in metrics.items()), flush=True)
    card = {
        "architecture": "models.nets.encoder.Encoder (the detectors' ConvBackbone + global average pooling)",
        "config": config.to_dict(),
        "preprocessing": {"image_size": IMAGE_SIZE, "mean": list(MEAN), "std": list(STD)},
        "labels": list(LABELS),
        "pretext": "rotation: name the quarter turn (4 classes)" if task == "rotation" else
        "SimCLR-style InfoNCE between two views (open_clip.ClipLoss, temperature 0.1); views: the object over two "
        "different backgrounds, each turned by any angle, random resized crop (scale 0.5-1), colour jitter (brightness, "
        "contrast, saturation 0.2, hue 0.02), flip, Gaussian noise (sigma 6/255); "
        f"the second view grey with probability {grey}",
        "seed": seed,
        "train": {"steps": steps, "batch": batch, "lr": lr, "pool_images": pool, "pool_seeds": f"{first}..{first + pool - 1}", "labels_used": False},
        "pool_seconds": round(pool_seconds, 1),
        "train_seconds": round(train_seconds, 1),
        "metrics": metrics,
        "trained_at": time.strftime("%Y-%m-%d"),
    }
    save_checkpoint(encoder, name, card, out, half=True)
    return card
