"""Deblurring with the kernel known: the inverse filter and the Wiener filter, the lecture's starting point.

A blur is a convolution, so in frequency it multiplies the image's spectrum by the kernel's
transfer function H. Dividing by H (the inverse filter) undoes it exactly when nothing else
happened and H has no zeros (a box blur of an even length has one at the highest frequency: that
frequency is gone for good); but where |H| is small the division multiplies whatever noise is there by 1/|H|, and a
blur's H is small at every high frequency. The Wiener filter conj(H) S / (|H|² S + N) divides only
where the signal's power S outweighs the noise's N. Both work in float on the circular blur of
``shapesworld.degrade``, so the exact case is exact. Pure numpy: testable without a page.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shapesworld import degrade
from shapesworld.degrade import Degradation


@dataclass
class Deconvolution:
    kernel: np.ndarray  # the blur kernel, as kept by the degradation
    log_transfer: np.ndarray  # log10 |H| at the image's size, zero frequency in the centre
    blurred: np.ndarray  # blur only, float (no noise, no rounding)
    exact: np.ndarray  # the inverse filter on ``blurred``: the clean image again
    degraded: np.ndarray  # blur, noise, 8 bits and JPEG: what a camera gives
    inverse: np.ndarray  # the inverse filter on ``degraded``
    wiener: np.ndarray  # the Wiener filter on ``degraded``, told the true spectra
    lost: int  # frequencies the kernel zeroed (|H| below LOST): no filter brings them back


LOST = 1e-9
"""|H| below this counts as zero: the inverse filter leaves such a frequency at zero instead of dividing by it."""


def inverse(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """The inverse filter (HxWxC float in and out): divide by H, except where H is zero (pseudo-inverse)."""
    transfer = degrade.transfer_function(kernel, image.shape[:2])[..., None]
    kept = np.abs(transfer) >= LOST
    gain = np.where(kept, 1.0 / np.where(kept, transfer, 1.0), 0.0)
    return np.fft.ifft2(np.fft.fft2(image, axes=(0, 1)) * gain, axes=(0, 1)).real


def wiener(image: np.ndarray, kernel: np.ndarray, clean: np.ndarray, noise_sigma: float) -> np.ndarray:
    """The Wiener filter with the true spectra: conj(H) S / (|H|² S + N), S the clean image's power, N the noise's.

    Told the clean image's spectrum, it is the best any linear filter can do: the bar a network
    (told neither the kernel nor the spectrum) is measured against. N is white: the noise's variance
    plus 8-bit rounding's (1/12) at every frequency.
    """
    transfer = degrade.transfer_function(kernel, image.shape[:2])[..., None]
    signal = np.abs(np.fft.fft2(clean, axes=(0, 1))) ** 2
    noise = (noise_sigma**2 + 1 / 12) * image.shape[0] * image.shape[1]
    gain = np.conj(transfer) * signal / (np.abs(transfer) ** 2 * signal + noise)
    return np.fft.ifft2(np.fft.fft2(image, axes=(0, 1)) * gain, axes=(0, 1)).real


def deconvolve(clean: np.ndarray, degradation: Degradation, seed: int) -> Deconvolution:
    """Every step for ``clean`` (HxWx3 uint8): blur alone and undone exactly, then the real degradation and both filters."""
    kernel = degradation.kernel()
    image = clean.astype(np.float64)
    blurred = degrade.blur(image, kernel)
    degraded = degrade.apply(clean, degradation, seed).astype(np.float64)
    spectrum = np.abs(np.fft.fftshift(degrade.transfer_function(kernel, clean.shape[:2])))
    lost = int((spectrum < LOST).sum())
    return Deconvolution(
        kernel=kernel,
        log_transfer=np.log10(np.maximum(spectrum, 1e-6)),
        blurred=blurred,
        exact=inverse(blurred, kernel),
        degraded=degraded,
        inverse=inverse(degraded, kernel),
        wiener=wiener(degraded, kernel, image, degradation.noise),
        lost=lost,
    )


def to_uint8(image: np.ndarray) -> np.ndarray:
    """A float image on 0..255, clipped and rounded to 8 bits for display and scoring."""
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)
