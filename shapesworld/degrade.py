"""Degradations with known parameters, for image restoration: blur, noise, JPEG.

A ``Degradation`` keeps every parameter, so a clean/degraded pair is exact: ``apply(clean, d,
seed)`` gives the same bytes every time, and ``d.kernel()`` is the very blur kernel used.
Applied in this order, as a camera would: blur (the lens or the motion), then sensor noise,
then rounding to 8 bits, then JPEG compression (the file).

The blur is a *circular* convolution done in float through the FFT (the image wraps around at
its borders), so it is a pointwise product in frequency: ``unblur`` divides by the kernel's
transfer function and gets the sharp image back exactly, when no frequency is zeroed and no
noise was added. That is the inverse filter the lecture starts from, and why it fails on real
photos: the division amplifies the noise wherever the transfer function is small.

``draw(seed)`` draws levels a small network can undo (the ranges are in ``LEVELS``).
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

BLURS = ("none", "motion", "defocus")
SUPERSAMPLE = 8  # kernel anti-aliasing: each kernel pixel is the share of 8x8 sub-samples the blur covers

LEVELS: dict[str, tuple[float, float]] = {
    "motion_length": (3.0, 8.0),  # pixels, along the direction of motion
    "defocus_radius": (1.0, 2.5),  # pixels, the radius of the lens's disc
    "noise_sigma": (4.0, 16.0),  # on 0..255
    "jpeg_quality": (40, 90),  # PIL's quality, inclusive
}
"""The ranges ``draw`` takes levels from (uniformly)."""

BLUR_CHANCES = (0.3, 0.4, 0.3)  # none, motion, defocus
JPEG_CHANCE = 0.5


@dataclass(frozen=True)
class Degradation:
    """What was done to the clean image. ``length`` is the motion's length or the defocus disc's radius, in pixels."""

    blur: str = "none"  # "none" | "motion" | "defocus"
    length: float = 0.0
    angle: float = 0.0  # degrees, direction of motion (0 = horizontal, counter-clockwise)
    noise: float = 0.0  # Gaussian sigma on 0..255
    jpeg: int | None = None  # JPEG quality 1..95, or None for no compression

    def __post_init__(self) -> None:
        if self.blur not in BLURS:
            raise ValueError(f"blur must be one of {BLURS}, not {self.blur!r}")
        if self.length < 0 or self.noise < 0:
            raise ValueError("blur length and noise sigma must not be negative")
        if self.jpeg is not None and not 1 <= self.jpeg <= 95:
            raise ValueError("JPEG quality must be between 1 and 95")

    def kernel(self) -> np.ndarray:
        """The blur kernel (float64, odd square, sums to 1); a single 1 for no blur."""
        if self.blur == "none" or self.length <= 0:
            return np.ones((1, 1))
        half = math.ceil(self.length if self.blur == "defocus" else self.length / 2)
        n = 2 * half + 1
        fine = (np.arange(n * SUPERSAMPLE) + 0.5) / SUPERSAMPLE - n / 2  # sub-sample centres, pixel units
        yy, xx = np.meshgrid(fine, fine, indexing="ij")
        if self.blur == "defocus":
            covered = xx**2 + yy**2 <= self.length**2
        else:
            theta = math.radians(self.angle)
            along = xx * math.cos(theta) - yy * math.sin(theta)  # image y points down; angle counts counter-clockwise
            across = xx * math.sin(theta) + yy * math.cos(theta)
            covered = (np.abs(along) <= self.length / 2) & (np.abs(across) <= 0.5)
        k = covered.reshape(n, SUPERSAMPLE, n, SUPERSAMPLE).sum((1, 3)).astype(np.float64)
        return k / k.sum()

    def describe(self) -> str:
        """One line for people: what was applied."""
        parts = []
        if self.blur == "motion" and self.length > 0:
            parts.append(f"motion blur {self.length:.1f} px at {self.angle:.0f}°")
        elif self.blur == "defocus" and self.length > 0:
            parts.append(f"defocus blur radius {self.length:.1f} px")
        if self.noise > 0:
            parts.append(f"Gaussian noise σ={self.noise:.1f}")
        if self.jpeg is not None:
            parts.append(f"JPEG quality {self.jpeg}")
        return ", ".join(parts) or "nothing"

    def to_dict(self) -> dict:
        return asdict(self)


def transfer_function(kernel: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The kernel's 2-D DFT at the image's size, its centre moved to pixel (0, 0) so the blur does not shift."""
    padded = np.zeros(shape)
    kh, kw = kernel.shape
    padded[:kh, :kw] = kernel
    padded = np.roll(padded, (-(kh // 2), -(kw // 2)), axis=(0, 1))
    return np.fft.fft2(padded)


def blur(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Circular convolution of an HxW or HxWxC float image with ``kernel``, in float64."""
    transfer = transfer_function(kernel, image.shape[:2])
    if image.ndim == 3:
        transfer = transfer[..., None]
    return np.fft.ifft2(np.fft.fft2(image, axes=(0, 1)) * transfer, axes=(0, 1)).real


def unblur(blurred: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """The inverse filter: divide by the kernel's transfer function. Exact on ``blur``'s float output; unstable on noise."""
    transfer = transfer_function(kernel, blurred.shape[:2])
    if blurred.ndim == 3:
        transfer = transfer[..., None]
    return np.fft.ifft2(np.fft.fft2(blurred, axes=(0, 1)) / transfer, axes=(0, 1)).real


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode and decode as JPEG at ``quality`` (4:2:0 chroma, PIL's default), uint8 in and out."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=int(quality))
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def apply(clean: np.ndarray, degradation: Degradation, rng_seed: int = 0) -> np.ndarray:
    """``clean`` (HxWx3 uint8) degraded: blur, then noise drawn from ``rng_seed``, then 8 bits, then JPEG."""
    image = np.asarray(clean, dtype=np.float64)
    image = blur(image, degradation.kernel())
    if degradation.noise > 0:
        image = image + np.random.default_rng(rng_seed).normal(0.0, degradation.noise, size=image.shape)
    out = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return jpeg(out, degradation.jpeg) if degradation.jpeg is not None else out


def draw(seed: int) -> Degradation:
    """A degradation at levels drawn from ``seed`` (ranges in ``LEVELS``; blur and JPEG are present by chance, noise always)."""
    rng = np.random.default_rng([seed, 0x5E5708E])  # its own stream: not the scene's draws for the same seed
    kind = BLURS[int(rng.choice(len(BLURS), p=BLUR_CHANCES))]
    length = angle = 0.0
    if kind == "motion":
        length, angle = float(rng.uniform(*LEVELS["motion_length"])), float(rng.uniform(0, 180))
    elif kind == "defocus":
        length = float(rng.uniform(*LEVELS["defocus_radius"]))
    noise = float(rng.uniform(*LEVELS["noise_sigma"]))  # always some: a sensor has it, and an untouched pair has no PSNR
    low, high = LEVELS["jpeg_quality"]
    quality = int(rng.integers(low, high + 1)) if rng.random() < JPEG_CHANCE else None
    return Degradation(kind, round(length, 2), round(angle, 1), round(noise, 2), quality)


def degraded_pair(clean: np.ndarray, seed: int) -> tuple[np.ndarray, Degradation]:
    """Scene ``seed``'s degradation drawn and applied (its noise drawn from the same seed): the training pair's input."""
    degradation = draw(seed)
    return apply(clean, degradation, seed), degradation
