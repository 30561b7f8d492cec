"""Train and evaluate the local VAE and GAN on the local diffusion model's data, judged by its judge.

    python -m models train vae-shapes --threads 1     # about 15 min on one CPU thread
    python -m models train gan-shapes --threads 1
    python -m models evaluate gan-shapes --seed 2000000 --count 500 --json

Data: the diffusion trainer's pool (``shapesworld.single_object`` rendered at 64, area-averaged to
32x32, random quarter turns and flips) and prompt rows; attributes are dropped to "unspecified" as
there (0.05 each; for the GAN also 0.1 all three, so an unknown prompt still draws something).

VAE: never trained without a prompt, so its latent need not carry what the prompt says (a first run
dropped all three one time in ten: the latent then carried shape and colour as well, and samples of
the prior ignored the prompt, 0.32 judged right). Gaussian likelihood with a fixed pixel deviation
(``sigma``: the reconstruction term is the summed squared error over 2 sigma^2) plus the KL to N(0,
I), its weight warmed up from 0 over the first tenth of training. The two latent dimensions with the
largest mean KL on the pool become the axes of the tab's latent map (``map_dims`` in the card).

GAN: hinge loss; the discriminator is spectral-normalised with a projection term, and its attribute
heads are trained on real pictures and asked of fakes (AC-GAN), to push the generator towards the
asked colour and shape (2,500 steps get the colour right and many shapes still as blobs); Adam (0.0,
0.9), 2e-4 for the generator and 4e-4 for the discriminator (TTUR); an exponential moving average of the generator is shipped, its batch-norm
statistics measured afresh at the end. A grid of fixed prompts and noise is kept at a few steps
(``weights/gan-shapes-snapshots.png``).

Evaluation: ``models.judging.score`` on the diffusion bar's prompts and seeds (``eval_prompts``,
generation ``i`` from seed ``seed + i``), with the diversity of the judge's features within each
prompt; for the VAE, also the PSNR of unseen objects' reconstructions (seeds ``seed``..).
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

import shapesworld
from models.generative import LocalGenerator, ShapesGAN, ShapesVAE
from models.judging import eval_prompts, real_diversity, score
from models.nets.diffusion import ATTRIBUTES, parse_prompt
from models.nets.generative import ConditionalGenerator, ConditionalVAE, ProjectionDiscriminator

from .common import WEIGHTS_DIR, TrainLog, bf16_autocast_pays, save_checkpoint, seed_everything
from .diffusion import IMAGE_SIZE, RUNS_DIR, TEST_SEED, augment, drop_conditions, render_pool, verdict_grid

SNAPSHOT_PROMPTS = tuple(eval_prompts(60)[i] for i in (30, 31, 32, 33, 34, 35, 36, 37, 38, 39))
"""The snapshot grid's columns: large objects of every shape and colour."""


def evaluate(model: LocalGenerator, seed: int = TEST_SEED, count: int = 200) -> dict:
    """Judged accuracy and diversity of ``count`` samples (prompt ``i`` from seed ``seed + i``); VAE: reconstruction PSNR.

    Also writes ``runs/<name>-grid.png``, every sample framed by the judge's verdict.
    """
    prompts = eval_prompts(count)
    images = [image for i, prompt in enumerate(prompts) for image in model.sample(prompt, seed + i).images]
    metrics, right = score(images, prompts)
    RUNS_DIR.mkdir(exist_ok=True)
    verdict_grid(images, right).save(RUNS_DIR / f"{model.name}-grid.png")
    metrics["diversity_of_real_renders"] = real_diversity(seed, count)
    if isinstance(model, ShapesVAE):
        metrics |= reconstruction_psnr(model, seed, count)
    return metrics | {"eval_seeds": f"{seed}..{seed + count - 1}", "eval_count": count}


def reconstruction_psnr(model: ShapesVAE, seed: int, count: int) -> dict:
    """PSNR (dB, of the mean squared error over all pictures) of unseen objects' round trips, told their prompt."""
    errors = []
    for s in range(seed, seed + count):
        image, prompt = shapesworld.single_object(s, 64)
        errors.append(model.autoencode(Image.fromarray(image), prompt).mse)
    return {"recon_psnr_db": round(10 * float(np.log10(255.0**2 / np.mean(errors))), 2)}


def train(name: str = "gan-shapes", **kwargs) -> dict:
    """Train ``name`` (``vae-shapes`` or ``gan-shapes``); the card it writes beside the weights."""
    return {"vae-shapes": train_vae, "gan-shapes": train_gan}[name](name=name, **kwargs)


def _pool(seed: int, pool: int, log: TrainLog) -> tuple[torch.Tensor, torch.Tensor, str]:
    first = shapesworld.SPLITS["train"].start + seed * 100_000
    images, rows = render_pool(first, pool)
    print(f"[{log.elapsed:7.1f}s] rendered {len(images)} training images from seeds {first}..{first + pool - 1}", flush=True)
    return images, rows, f"{first}..{first + pool - 1}"


def _batch(images: torch.Tensor, rows: torch.Tensor, batch: int, generator: torch.Generator, device: str, p_all: float = 0.1):
    pick = torch.randint(len(images), (batch,), generator=generator)
    x = augment(images[pick], generator).to(device)
    return x, drop_conditions(rows[pick], generator, 0.05, p_all).to(device)


def _autocast(device: str) -> torch.autocast:
    bf16 = device.startswith("cuda") or (torch.backends.mkldnn.is_available() and bf16_autocast_pays())
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16, enabled=bf16)


def _finish(model: LocalGenerator, network: torch.nn.Module, name: str, card: dict, out: Path, eval_count: int, log: TrainLog) -> dict:
    """Score the model as shipped (float16), write weights and card."""
    train_seconds = log.elapsed
    network.load_state_dict({k: v.half().float() if v.is_floating_point() else v for k, v in network.state_dict().items()})
    metrics = evaluate(model, count=eval_count)
    print(f"test {metrics}", flush=True)
    card = card | {"image_size": IMAGE_SIZE, "train_seconds": round(train_seconds, 1), "metrics": metrics, "trained_at": time.strftime("%Y-%m-%d")}
    save_checkpoint(network, name, card, out, half=True)
    return card


def train_vae(
    name: str = "vae-shapes", steps: int = 3000, batch: int = 64, lr: float = 2e-3, sigma: float = 0.15, latent_dim: int = 32,
    pool: int = 10_000, seed: int = 0, out: Path = WEIGHTS_DIR, eval_count: int = 200, device: str = "cpu",
) -> dict:
    seed_everything(seed)
    log = TrainLog()
    images, rows, seeds = _pool(seed, pool, log)
    config = {"latent_dim": latent_dim, "width": 32, "prompt_dim": 64}
    network = ConditionalVAE(**config).to(device)
    opt = torch.optim.AdamW(network.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.05)
    generator = torch.Generator().manual_seed(seed)
    warmup = max(1, steps // 10)
    for step in range(1, steps + 1):
        network.train()
        x, cond = _batch(images, rows, batch, generator, device, p_all=0.0)
        with _autocast(device):
            out_, mean, log_var = network(x, cond, generator if device == "cpu" else None)
        recon = F.mse_loss(out_.float(), x, reduction="none").sum(dim=(1, 2, 3)).mean() / (2 * sigma**2)
        kl = 0.5 * (mean.float() ** 2 + log_var.float().exp() - 1 - log_var.float()).sum(dim=1).mean()
        beta = min(1.0, step / warmup)
        loss = recon + beta * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(network.parameters(), 100.0)
        opt.step()
        sched.step()
        log.step(step, steps, loss=loss.item(), recon_mse=recon.item() * 2 * sigma**2 / x[0].numel(), kl=kl.item())
    network.eval()
    map_dims = _informative_dims(network, images[:2000], rows[:2000], device)
    card = {
        "architecture": "models.nets.generative.ConditionalVAE", "config": config, "map_dims": map_dims, "seed": seed,
        "train": {
            "steps": steps, "batch": batch, "lr": lr, "optimizer": "AdamW, one-cycle schedule", "pool_images": pool, "pool_seeds": seeds,
            "loss": f"summed squared error / (2 * {sigma}^2) + KL (weight warmed up over {warmup} steps)",
            "condition_dropout": "0.05 per attribute, never all three", "augmentation": "random quarter turn and horizontal flip",
        },
    }
    return _finish(ShapesVAE(network, name, map_dims), network, name, card, out, eval_count, log)


@torch.inference_mode()
def _informative_dims(network: ConditionalVAE, images: torch.Tensor, rows: torch.Tensor, device: str) -> list[int]:
    """The two latent dimensions with the largest mean KL to the prior over ``images``: the map's axes."""
    mean, log_var = network.encode(images.to(device), rows.to(device))
    kl = 0.5 * (mean**2 + log_var.exp() - 1 - log_var).mean(dim=0)
    return [int(i) for i in kl.argsort(descending=True)[:2]]


def train_gan(
    name: str = "gan-shapes", steps: int = 2500, batch: int = 64, lr: float = 2e-4, aux_weight: float = 2.0, ema_decay: float = 0.999,
    pool: int = 10_000, seed: int = 0, out: Path = WEIGHTS_DIR, eval_count: int = 200, device: str = "cpu", snapshots: int = 5,
) -> dict:
    seed_everything(seed)
    log = TrainLog()
    images, rows, seeds = _pool(seed, pool, log)
    config = {"noise_dim": 64, "widths": [128, 64, 32], "prompt_dim": 64}
    g = ConditionalGenerator(**config).to(device)
    d = ProjectionDiscriminator().to(device)
    ema = copy.deepcopy(g).eval()
    opt_g = torch.optim.Adam(g.parameters(), lr=lr, betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(d.parameters(), lr=2 * lr, betas=(0.0, 0.9))  # two time-scale update rule
    generator = torch.Generator().manual_seed(seed)
    fixed = (torch.randn(len(SNAPSHOT_PROMPTS), config["noise_dim"], generator=torch.Generator().manual_seed(1)),
             torch.tensor([parse_prompt(p).rows() for p in SNAPSHOT_PROMPTS]))
    at = sorted({max(1, round(steps * f)) for f in np.geomspace(0.02, 1, snapshots)})
    shots: list[tuple[int, list[Image.Image]]] = []
    for step in range(1, steps + 1):
        x, cond = _batch(images, rows, batch, generator, device)
        noise = torch.randn(batch, config["noise_dim"], generator=generator).to(device)
        with _autocast(device):
            fake = g(noise, cond)
            real_score, real_logits = d(x, cond)
            fake_score, _ = d(fake.detach(), cond)
        loss_d = F.relu(1 - real_score.float()).mean() + F.relu(1 + fake_score.float()).mean() + aux_weight * _attributes_loss(real_logits, cond)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        with _autocast(device):
            score_g, logits_g = d(fake, cond)
        loss_g = -score_g.float().mean() + aux_weight * _attributes_loss(logits_g, cond)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        with torch.no_grad():
            for e, p in zip(ema.parameters(), g.parameters()):
                e.lerp_(p, 1 - min(ema_decay, (1 + step) / (10 + step)))
        log.step(step, steps, loss_d=loss_d.item(), loss_g=loss_g.item())
        if step in at:
            shots.append((step, _snapshot(ema, g, fixed, device)))
    _recalibrate(ema, g, images, rows, generator, device, config["noise_dim"])
    card = {
        "architecture": "models.nets.generative.ConditionalGenerator (discriminator: ProjectionDiscriminator, not shipped)",
        "config": config, "seed": seed, "snapshots": f"{name}-snapshots.png", "snapshot_steps": at,
        "train": {
            "steps": steps, "batch": batch, "lr": lr, "optimizer": "Adam (0.0, 0.9); discriminator at twice the rate (TTUR)", "ema_decay": ema_decay,
            "loss": f"hinge + {aux_weight} x attribute cross-entropy (AC-GAN heads)", "pool_images": pool, "pool_seeds": seeds,
            "condition_dropout": "0.05 per attribute, 0.1 all", "augmentation": "random quarter turn and horizontal flip",
        },
    }
    out.mkdir(parents=True, exist_ok=True)
    snapshot_grid(shots, SNAPSHOT_PROMPTS).save(out / f"{name}-snapshots.png", optimize=True)
    return _finish(ShapesGAN(ema, config["noise_dim"], name), ema, name, card, out, eval_count, log)


def _attributes_loss(logits: dict[str, torch.Tensor], rows: torch.Tensor) -> torch.Tensor:
    """The attribute heads' cross-entropy against the prompt rows, "unspecified" rows left out (AC-GAN)."""
    return sum(
        F.cross_entropy(logits[key].float(), rows[:, i], ignore_index=len(words)) for i, (key, words) in enumerate(ATTRIBUTES.items())
    )


@torch.no_grad()
def _snapshot(ema: ConditionalGenerator, g: ConditionalGenerator, fixed, device: str) -> list[Image.Image]:
    """The moving-average generator on the fixed noise and prompts, its norms' statistics taken from the live one."""
    from models.diffusion import to_pil

    ema.load_state_dict(g.state_dict() | {k: v for k, v in ema.state_dict().items() if "running" not in k and "num_batches" not in k})
    return to_pil(ema.eval()(fixed[0].to(device), fixed[1].to(device)))


@torch.no_grad()
def _recalibrate(ema: ConditionalGenerator, g: ConditionalGenerator, images, rows, generator, device: str, noise_dim: int, batches: int = 40) -> None:
    """Measure the shipped generator's batch-norm statistics on its own activations (a cumulative average)."""
    for module in ema.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None
    ema.train()
    for _ in range(batches):
        _, cond = _batch(images, rows, 256, generator, device)
        ema(torch.randn(256, noise_dim, generator=generator).to(device), cond)
    for module in ema.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = 0.1
    ema.eval()


def snapshot_grid(shots: list[tuple[int, list[Image.Image]]], prompts: tuple[str, ...], scale: int = 3) -> Image.Image:
    """One row per training step (labelled), one column per fixed prompt and noise: the GAN learning."""
    side, label = IMAGE_SIZE * scale, 90
    grid = Image.new("RGB", (label + len(prompts) * (side + 2), len(shots) * (side + 2)), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    for row, (step, pictures) in enumerate(shots):
        y = row * (side + 2)
        draw.text((6, y + side // 2 - 7), f"step {step}", fill=(0, 0, 0), font_size=14)
        for column, picture in enumerate(pictures):
            grid.paste(picture.resize((side, side), Image.Resampling.NEAREST), (label + column * (side + 2), y))
    return grid
