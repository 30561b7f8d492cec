"""Train and evaluate the local text-to-image model on ShapesWorld's single-object prompts.

    python -m models train diffusion-shapes --threads 2     # within 45 min on 2 CPU cores
    python -m models evaluate diffusion-shapes --seed 2000000 --count 200 --json

Data: ``shapesworld.single_object(seed, 64)`` gives a 64x64 image of one shape and its prompt
("a large red star"); it is rendered once into a pool, downsampled to 32x32 (area averaging, so a
small star keeps its points as grey levels), and kept in memory. Each step draws a batch from the
pool with a random quarter turn and flip (the prompt does not change when the shape turns).

Recipe (what mattered in trials, see the diffusion issue): v-prediction (the network predicts
``v = sqrt(a) * noise - sqrt(1 - a) * x0``) with "trailing" timestep spacing, so the first sampling
step starts from pure noise; condition dropout for classifier-free guidance (each attribute
replaced by "unspecified" with probability 0.1, all three with 0.1); an exponential moving average
of the weights (diffusers' ``EMAModel``), which is what is shipped and sampled; bf16 autocast on
CPUs that support it (about 2x here). Training length is given in steps, not minutes.

Min-SNR-gamma loss weighting (Hang et al. 2023; diffusers' ``compute_snr``): each sample's loss is
weighted by ``min(SNR, gamma) / (SNR + 1)``, which for v-prediction turns down the nearly clean
timesteps. Those steps only teach the background's texture and pixel noise; the shape is decided at
middle and high noise, which is where the bar's misses (triangles and stars drawn as blobs) were.
The forward pass is ``torch.compile``d for training (0.50 -> 0.38 s a step here, batch 64).

Judge (``models/judging.py``, shared with the VAE and the GAN): the bar counts a generation right
when the project's mini-CLIP (``clip-shapes``, trained on real renders only) picks the asked colour
and shape among all 30 colour-shape labels. The generated 32x32 image is upsampled to the judge's
64x64, as the judge's own accuracy on real renders that went through the same 64 -> 32 -> 64 round
trip (``judge_accuracy_on_renders``) checks.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler
from diffusers.training_utils import EMAModel, compute_snr
from PIL import Image

import shapesworld
from models.diffusion import ShapesTextToImage
from models.judging import DIFFUSION_SAMPLING as SAMPLING
from models.judging import JUDGE, eval_prompts, judge
from models.nets.diffusion import ATTRIBUTES, ShapesDiffusion, parse_prompt, unet_config
from models.text_to_image import Request, run

from .common import WEIGHTS_DIR, TrainLog, bf16_autocast_pays, save_checkpoint, seed_everything

RUNS_DIR = WEIGHTS_DIR.parent / "runs"
TEST_SEED = shapesworld.SPLITS["test"].start
VAL_SEED = shapesworld.SPLITS["val"].start
IMAGE_SIZE = 32
RENDER_SIZE = 64
SCHEDULER = {
    "num_train_timesteps": 1000,
    "beta_schedule": "linear",
    "prediction_type": "v_prediction",
    "timestep_spacing": "trailing",
}


def render_pool(first_seed: int, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` training images (N,3,32,32) in [-1, 1] and their prompt rows (N,3)."""
    images, rows = [], []
    for seed in range(first_seed, first_seed + count):
        image, prompt = shapesworld.single_object(seed, RENDER_SIZE)
        images.append(torch.from_numpy(image).permute(2, 0, 1))
        rows.append(parse_prompt(prompt).rows())
    return shrink(torch.stack(images).float() / 127.5 - 1), torch.tensor(rows)


def shrink(images: torch.Tensor) -> torch.Tensor:
    """(N,3,64,64) renders -> (N,3,32,32) by area averaging: what the model learns from and the judge is checked on."""
    return F.avg_pool2d(images, RENDER_SIZE // IMAGE_SIZE)


def drop_conditions(rows: torch.Tensor, generator: torch.Generator, p_each: float, p_all: float) -> torch.Tensor:
    """Classifier-free guidance's condition dropout: attributes replaced by their "unspecified" row."""
    unspecified = torch.tensor([len(words) for words in ATTRIBUTES.values()])
    drop = torch.rand(rows.shape, generator=generator) < p_each
    drop |= torch.rand(len(rows), 1, generator=generator) < p_all
    return torch.where(drop, unspecified.expand_as(rows), rows)


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A random quarter turn and flip per image."""
    turns = torch.randint(4, (len(x),), generator=generator)
    flips = torch.rand(len(x), generator=generator) < 0.5
    out = torch.empty_like(x)
    for i in range(len(x)):
        image = torch.rot90(x[i], int(turns[i]), (1, 2))
        out[i] = image.flip(2) if flips[i] else image
    return out


def judge_on_renders(seed: int, count: int) -> float:
    """The judge's accuracy on real renders taken through the generator's 64 -> 32 -> 64 round trip."""
    images, truths = [], []
    for s in range(seed, seed + count):
        image, prompt = shapesworld.single_object(s, RENDER_SIZE)
        small = shrink(torch.from_numpy(image).permute(2, 0, 1)[None].float())
        images.append(Image.fromarray(small[0].round().byte().permute(1, 2, 0).numpy()))
        truths.append(tuple(prompt.split()[2:]))
    return float(np.mean([seen == truth for seen, truth in zip(judge(images), truths)]))


def verdict_grid(images: list[Image.Image], right: list[bool], columns: int = 20, scale: int = 2) -> Image.Image:
    """The generations in prompt order, each framed green (judged right) or red: to check the judge by eye."""
    side = images[0].width * scale + 4
    grid = Image.new("RGB", (columns * side, -(-len(images) // columns) * side), (255, 255, 255))
    for i, (image, ok) in enumerate(zip(images, right)):
        tile = Image.new("RGB", (side, side), (40, 160, 60) if ok else (200, 40, 40))
        tile.paste(image.resize((side - 4, side - 4), Image.Resampling.NEAREST), (2, 2))
        grid.paste(tile, ((i % columns) * side, (i // columns) * side))
    return grid


def evaluate(model: ShapesTextToImage, seed: int = TEST_SEED, count: int = 200, batch: int = 50) -> dict:
    """Generation accuracy: of ``count`` generations (seeds ``seed``..), the share the judge reads right.

    Also writes ``runs/<name>-grid.png``, every generation framed by the judge's verdict.
    """
    prompts = eval_prompts(count)
    images = []
    for start in range(0, count, batch):
        chunk = prompts[start : start + batch]
        for offset, prompt in enumerate(chunk):  # one seed per generation, so any one can be replayed in the app
            request = Request(prompt, seed=seed + start + offset, count=1, **SAMPLING)
            images.extend(run(model, request).images)
    seen = judge(images)
    asked = [tuple(p.split()[2:]) for p in prompts]
    right = np.array([s == a for s, a in zip(seen, asked)])
    RUNS_DIR.mkdir(exist_ok=True)
    verdict_grid(images, right.tolist()).save(RUNS_DIR / f"{model.name}-grid.png")
    colour_right = np.array([s[0] == a[0] for s, a in zip(seen, asked)])
    shape_right = np.array([s[1] == a[1] for s, a in zip(seen, asked)])
    per = lambda index, values: {  # noqa: E731
        v: round(float(right[[a[index] == v for a in asked]].mean()), 4) for v in values
    }
    return {
        "generation_accuracy": round(float(right.mean()), 4),
        "colour_accuracy": round(float(colour_right.mean()), 4),
        "shape_accuracy": round(float(shape_right.mean()), 4),
        "per_shape": per(1, shapesworld.SHAPES),
        "per_colour": per(0, shapesworld.COLOURS),
        "judge": JUDGE,
        "judge_accuracy_on_renders": round(judge_on_renders(seed, count), 4),
        "sampling": SAMPLING,
        "eval_seeds": f"{seed}..{seed + count - 1}",
        "eval_count": count,
    }


def train(
    name: str = "diffusion-shapes",
    steps: int = 4800,
    batch: int = 64,
    lr: float = 1e-3,
    snr_gamma: float = 5.0,
    pool: int = 30_000,
    ema_decay: float = 0.999,
    widths: tuple[int, ...] = (32, 64, 64),
    seed: int = 0,
    out: Path = WEIGHTS_DIR,
    eval_count: int = 200,
    val_every: int = 800,
    device: str = "cpu",
    compile: bool = True,
) -> dict:
    seed_everything(seed)
    log = TrainLog()
    first = shapesworld.SPLITS["train"].start + seed * 100_000
    images, rows = render_pool(first, pool)
    pool_seconds = log.elapsed
    print(f"[{pool_seconds:7.1f}s] rendered {len(images)} training images from seeds {first}..{first + pool - 1}", flush=True)
    config = unet_config(IMAGE_SIZE, tuple(widths))
    network = ShapesDiffusion(config).to(device)
    ema = EMAModel(network.parameters(), decay=ema_decay, use_ema_warmup=True)
    noise_scheduler = DDPMScheduler(**SCHEDULER)
    opt = torch.optim.AdamW(network.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=max(0.05, 2 / steps))
    bf16 = device == "cpu" and torch.backends.mkldnn.is_available() and bf16_autocast_pays()
    generator = torch.Generator().manual_seed(seed)
    forward = torch.compile(network) if compile else network  # shares the parameters that EMA and the card read
    card_base = {"config": config, "scheduler": dict(noise_scheduler.config)}
    for step in range(1, steps + 1):
        network.train()
        pick = torch.randint(len(images), (batch,), generator=generator)
        x0 = augment(images[pick], generator).to(device)
        cond = drop_conditions(rows[pick], generator, 0.1, 0.1).to(device)
        noise = torch.randn(x0.shape, generator=generator).to(device)
        t = torch.randint(0, noise_scheduler.config.num_train_timesteps, (batch,), generator=generator).to(device)
        noisy = noise_scheduler.add_noise(x0, noise, t)
        target = noise_scheduler.get_velocity(x0, noise, t)
        with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16, enabled=bf16 or device.startswith("cuda")):
            predicted = forward(noisy, t, cond)
        per_sample = F.mse_loss(predicted.float(), target, reduction="none").mean(dim=(1, 2, 3))
        snr = compute_snr(noise_scheduler, t)
        loss = (per_sample * snr.clamp(max=snr_gamma) / (snr + 1)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(network.parameters(), 1.0)
        opt.step()
        sched.step()
        ema.step(network.parameters())
        log.step(step, steps, loss=loss.item(), lr=sched.get_last_lr()[0])
        if step % val_every == 0 and step != steps:
            quick = evaluate(_ema_model(network, ema, card_base, name), seed=VAL_SEED, count=60)
            print(f"  val generation_accuracy {quick['generation_accuracy']:.3f} per shape {quick['per_shape']}", flush=True)
            save_checkpoint(_ema_model(network, ema, card_base, name).network, name, card_base | {"step": step}, RUNS_DIR / name, half=True)
    train_seconds = log.elapsed
    model = _ema_model(network, ema, card_base, name)
    shipped = {k: v.half().float() for k, v in model.network.state_dict().items()}
    model.network.load_state_dict(shipped)  # scored as shipped: float16
    metrics = evaluate(model, count=eval_count)
    print(f"test generation_accuracy {metrics['generation_accuracy']} {metrics}", flush=True)
    card = {
        "architecture": "diffusers.UNet2DModel (class_embed_type=identity) + models.nets.diffusion.PromptEncoder",
        **card_base,
        "seed": seed,
        "train": {
            "steps": steps, "batch": batch, "lr": lr, "optimizer": "AdamW, one-cycle schedule, grad-norm clip 1",
            "ema_decay": ema_decay, "loss": f"v-MSE, Min-SNR weighting (gamma {snr_gamma})",
            "compiled": compile, "pool_images": pool, "pool_seeds": f"{first}..{first + pool - 1}",
            "image_size": IMAGE_SIZE, "rendered_at": RENDER_SIZE, "condition_dropout": "0.1 per attribute, 0.1 all",
            "augmentation": "random quarter turn and horizontal flip", "autocast": "bfloat16" if bf16 else "none",
        },
        "pool_seconds": round(pool_seconds, 1),
        "train_seconds": round(train_seconds, 1),
        "metrics": metrics,
        "trained_at": time.strftime("%Y-%m-%d"),
    }
    save_checkpoint(model.network, name, card, out, half=True)
    return card


def _ema_model(network: ShapesDiffusion, ema: EMAModel, card_base: dict, name: str) -> ShapesTextToImage:
    """A copy of the network with the moving-average weights, ready to sample."""
    averaged = copy.deepcopy(network)
    ema.copy_to(averaged.parameters())
    return ShapesTextToImage(averaged.eval(), card_base["scheduler"], name)
