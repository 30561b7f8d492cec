"""VAE and GAN: the local ShapesWorld models and Stable Diffusion's autoencoder, and specs().

The local VAE and GAN (``models/nets/generative.py``) read a prompt exactly as the local diffusion
model does (``models.diffusion.understand``) and draw image ``k`` of a request from seed ``seed + k``
alone, so the three families answer the same prompt and seed and can be compared image for image.
Each maps a latent vector (the noise) and the prompt to a 32x32 picture in one forward pass; the
VAE also maps a picture back to its latent (``autoencode``).

The pretrained tier is Stable Diffusion's autoencoder, diffusers' ``AutoencoderKL`` from SD-Turbo's
``vae`` subfolder (the one the text-to-image tab's pipeline decodes with), called as diffusers
documents it: ``vae.encode(x).latent_dist`` and ``vae.decode(z).sample``, with ``VaeImageProcessor``
turning pictures into [-1, 1] tensors and back.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from .diffusion import to_pil, understand
from .nets.diffusion import ParsedPrompt
from .nets.generative import ConditionalGenerator, ConditionalVAE
from .sources import LocalWeights
from .spec import ModelSpec, local_spec
from .text_to_image import Request, check_request
from .turbo import TURBO, TURBO_LICENSE

IMAGE_SIZE = 32
MAX_FRAMES = 16
"""Interpolation frames at most (a strip a page can show)."""
SD_MAX_SIDE = 512
"""Photos are scaled down to at most this side before SD's autoencoder (seconds on a CPU at 512x512)."""


@dataclass
class Samples:
    images: list[Image.Image]
    notices: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class Reconstruction:
    """An autoencoder's round trip: what went in (as the model saw it), what came out, and the code between."""

    original: Image.Image
    reconstruction: Image.Image
    latents: np.ndarray  # (C, h, w) for SD's autoencoder, (D,) for the local VAE: the posterior's mean
    psnr_db: float
    mse: float  # on the 0-255 scale
    compression: float  # values in the picture / values in the latent
    seconds: float
    notices: list[str] = field(default_factory=list)


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation between two noise vectors: stays on the shell where Gaussian noise lives.

    A straight line between two samples of N(0, I) passes closer to the origin than either (its
    midpoint's norm is about 0.71 of theirs), where the generator has seen no noise; the arc keeps it.
    """
    if t <= 0:
        return a.clone()
    if t >= 1:
        return b.clone()
    cos = float(torch.dot(a.flatten(), b.flatten()) / (a.norm() * b.norm()))
    omega = math.acos(max(-1.0, min(1.0, cos)))
    if omega < 1e-6:
        return (1 - t) * a + t * b
    return (math.sin((1 - t) * omega) * a + math.sin(t * omega) * b) / math.sin(omega)


def psnr(original: np.ndarray, other: np.ndarray) -> tuple[float, float]:
    """(PSNR in dB, MSE) of two uint8 pictures of one size, on the 0-255 scale."""
    mse = float(np.mean((original.astype(np.float64) - other.astype(np.float64)) ** 2))
    return (float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)), mse


def checked(prompt: str, seed: int = 0, count: int = 1) -> None:
    """The text-to-image tab's checks (an empty prompt, the seed, at most 8 images), with its messages."""
    check_request(Request(prompt=(prompt or "").strip(), seed=seed, count=count))


class LocalGenerator(nn.Module):
    """A local latent-variable generator: a latent vector and the prompt in, a 32x32 picture out, one forward pass."""

    def __init__(self, network: nn.Module, latent_dim: int, name: str) -> None:
        super().__init__()
        self.network = network.eval()
        self.latent_dim = latent_dim
        self.name = name
        self.image_size = IMAGE_SIZE

    def decode(self, latents: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def latents(self, seed: int, count: int = 1) -> torch.Tensor:
        """(count, D) noise; row k is what seed + k draws alone (as the local diffusion model's batches)."""
        return torch.cat([torch.randn((1, self.latent_dim), generator=torch.Generator("cpu").manual_seed(seed + k)) for k in range(count)])

    @torch.inference_mode()
    def draw(self, latents: torch.Tensor, parsed: ParsedPrompt) -> list[Image.Image]:
        device = next(self.network.parameters()).device
        rows = torch.tensor([parsed.rows()] * len(latents), device=device)
        return to_pil(self.decode(latents.to(device), rows))

    def sample(self, prompt: str, seed: int = 0, count: int = 1) -> Samples:
        """``count`` pictures for ``prompt`` from seeds ``seed``..``seed + count - 1``."""
        checked(prompt, seed, count)
        started = time.perf_counter()
        parsed, notices = understand(prompt)
        images = self.draw(self.latents(seed, count), parsed)
        return Samples(images, notices, time.perf_counter() - started)

    def interpolate(self, prompt: str, seed_a: int, seed_b: int, frames: int = 8) -> Samples:
        """``frames`` pictures along the great-circle arc from seed_a's noise to seed_b's, both ends included."""
        checked(prompt, seed_a)
        checked(prompt, seed_b)
        if not 2 <= frames <= MAX_FRAMES:
            raise ValueError(f"Frames must be between 2 and {MAX_FRAMES} (got {frames}).")
        started = time.perf_counter()
        parsed, notices = understand(prompt)
        a, b = self.latents(seed_a)[0], self.latents(seed_b)[0]
        path = torch.stack([slerp(a, b, i / (frames - 1)) for i in range(frames)])
        return Samples(self.draw(path, parsed), notices, time.perf_counter() - started)


class ShapesGAN(LocalGenerator):
    def decode(self, latents: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return self.network(latents, rows)


class ShapesVAE(LocalGenerator):
    """The conditional VAE: samples from the prior, and the round trip through its posterior."""

    def __init__(self, network: ConditionalVAE, name: str, map_dims: tuple[int, int]) -> None:
        super().__init__(network, network.latent_dim, name)
        self.map_dims = map_dims  # the two latent dimensions that carry the most information (the card says)

    def decode(self, latents: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return self.network.decode(latents, rows)

    @torch.inference_mode()
    def autoencode(self, image: Image.Image, prompt: str = "") -> Reconstruction:
        """Encode ``image`` (scaled to 32x32 by area averaging) with what ``prompt`` says it shows, and decode the mean.

        The VAE was always told the picture's prompt (its latent holds the rest, not what it shows);
        with none, every attribute is "unspecified", which it never saw, and the notice says so.
        """
        started = time.perf_counter()
        parsed, notices = understand(prompt or "")
        if not parsed.known:
            notices = ["No prompt: the VAE was always told what the picture shows, so this round trip guesses."]
        small = image.convert("RGB").resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BOX)
        device = next(self.network.parameters()).device
        x = torch.from_numpy(np.array(small)).permute(2, 0, 1)[None].float().to(device) / 127.5 - 1
        rows = torch.tensor([parsed.rows()], device=device)
        mean, _ = self.network.encode(x, rows)
        out = to_pil(self.network.decode(mean, rows))[0]
        value, mse = psnr(np.asarray(small), np.asarray(out))
        compression = 3 * IMAGE_SIZE**2 / self.latent_dim
        return Reconstruction(small, out, mean[0].cpu().numpy(), value, mse, compression, time.perf_counter() - started, notices)

    def latent_map(self, prompt: str, side: int = 7, span: float = 2.5) -> tuple[list[Image.Image], list[float]]:
        """Decoded pictures on a ``side`` x ``side`` grid over the two map dimensions (the rest 0), row by row.

        Returns the pictures (top row: the second dimension at +span) and the grid's coordinates.
        """
        checked(prompt)
        parsed, _ = understand(prompt)
        values = torch.linspace(-span, span, side)
        grid = torch.zeros(side * side, self.latent_dim)
        for row in range(side):
            for column in range(side):
                grid[row * side + column, self.map_dims[0]] = values[column]
                grid[row * side + column, self.map_dims[1]] = values[side - 1 - row]
        return self.draw(grid, parsed), [round(float(v), 3) for v in values]


class SDAutoencoder(nn.Module):
    """Stable Diffusion's ``AutoencoderKL``: a photo to 4 latent channels at 1/8 of its side, and back."""

    def __init__(self, vae, name: str) -> None:
        super().__init__()
        from diffusers.image_processor import VaeImageProcessor

        self.vae = vae.eval()
        self.scale = 2 ** (len(vae.config.block_out_channels) - 1)  # 8 for SD's; the pipelines' vae_scale_factor
        self.processor = VaeImageProcessor(vae_scale_factor=self.scale)
        self.name = name

    def prepared(self, image: Image.Image) -> tuple[Image.Image, list[str]]:
        """The photo as the autoencoder takes it: at most SD_MAX_SIDE a side, cropped to multiples of its downsampling."""
        image = image.convert("RGB")
        notices = []
        if max(image.size) > SD_MAX_SIDE:
            scale = SD_MAX_SIDE / max(image.size)
            image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.Resampling.LANCZOS)
            notices.append(f"Scaled down to {image.width}x{image.height} (at most {SD_MAX_SIDE} a side).")
        width, height = image.width // self.scale * self.scale, image.height // self.scale * self.scale
        if not width or not height:
            raise ValueError(f"The image is {image.width}x{image.height}: the autoencoder needs at least {self.scale}x{self.scale} pixels.")
        if (width, height) != image.size:
            notices.append(f"Cropped to {width}x{height}, a multiple of {self.scale} a side.")
            image = image.crop((0, 0, width, height))
        return image, notices

    @torch.inference_mode()
    def autoencode(self, image: Image.Image, prompt: str = "") -> Reconstruction:
        """Encode to the posterior's mean (``latent_dist.mode()``), decode it; the latents as diffusers returns them."""
        started = time.perf_counter()
        image, notices = self.prepared(image)
        parameter = next(self.vae.parameters())
        x = self.processor.preprocess(image).to(parameter.device, parameter.dtype)
        latents = self.vae.encode(x).latent_dist.mode()
        decoded = self.vae.decode(latents).sample
        out = self.processor.postprocess(decoded.float(), output_type="pil")[0]
        value, mse = psnr(np.asarray(image), np.asarray(out))
        compression = 3 * image.width * image.height / latents[0].numel()
        return Reconstruction(image, out, latents[0].float().cpu().numpy(), value, mse, compression, time.perf_counter() - started, notices)


def _load_vae(spec: ModelSpec) -> ShapesVAE:
    source: LocalWeights = spec.source  # type: ignore[assignment]
    card = source.card()
    network = ConditionalVAE(**card["config"])
    network.load_state_dict({k: v.float() for k, v in source.state_dict().items()})
    return ShapesVAE(network, spec.name, tuple(card["map_dims"]))  # type: ignore[arg-type]


def _load_gan(spec: ModelSpec) -> ShapesGAN:
    source: LocalWeights = spec.source  # type: ignore[assignment]
    card = source.card()
    network = ConditionalGenerator(**card["config"])
    network.load_state_dict({k: v.float() for k, v in source.state_dict().items()})
    return ShapesGAN(network, card["config"]["noise_dim"], spec.name)


def _load_sd_vae(spec: ModelSpec) -> SDAutoencoder:
    from diffusers import AutoencoderKL

    (vae,) = TURBO.build(AutoencoderKL, subfolder="vae")
    return SDAutoencoder(vae, spec.name)


def _local(name: str, title: str, load, metrics: dict[str, str], about: str) -> ModelSpec:
    import dataclasses

    spec = local_spec("generative", name, title, load, metrics, about)
    return dataclasses.replace(spec, half_precision_ok=False, fast_on_cpu=True)


def specs() -> list[ModelSpec]:
    """The local GAN and VAE (fast on any CPU), then Stable Diffusion's autoencoder (autoencode only)."""
    judged = {"ShapesWorld samples judged right (shape and colour)": "generation_accuracy", "diversity (judge features)": "diversity"}
    return [
        _local(
            "gan-shapes", "ShapesWorld conditional GAN (32x32)", _load_gan, judged,
            "DCGAN-style generator with conditional batch norm; hinge loss against a spectral-norm projection "
            "discriminator with attribute heads (`models/nets/generative.py`); `python -m models train gan-shapes`",
        ),
        _local(
            "vae-shapes", "ShapesWorld conditional VAE (32x32)", _load_vae,
            judged | {"reconstruction PSNR on unseen objects (dB)": "recon_psnr_db"},
            "convolutional encoder and decoder around a 32-dimensional Gaussian latent, both told the prompt "
            "(`models/nets/generative.py`); `python -m models train vae-shapes`",
        ),
        ModelSpec(
            name="sd-vae",
            task="generative",
            tier="pretrained",
            title="Stable Diffusion autoencoder (AutoencoderKL, 8x smaller latents)",
            source=TURBO,
            license=TURBO_LICENSE.split(";")[0],
            params=83_653_863,
            load=_load_sd_vae,
            about="`AutoencoderKL.from_pretrained('stabilityai/sd-turbo', subfolder='vae')`: SD 2.1's KL-regularised "
            "autoencoder, 4 latent channels at 1/8 of the side",
        ),
    ]


def training_snapshots() -> Path | None:
    """The GAN's samples at a few steps of its training: the file its card names, beside its weights."""
    source = LocalWeights("gan-shapes")
    name = source.card().get("snapshots")
    path = source.directory / name if name else None
    return path if path and path.exists() else None


def can_sample(name: str) -> bool:
    """Whether model ``name`` of this task draws new pictures (the local VAE and GAN); SD's autoencoder only encodes."""
    return name in ("gan-shapes", "vae-shapes")


def can_autoencode(name: str) -> bool:
    return name in ("vae-shapes", "sd-vae")
