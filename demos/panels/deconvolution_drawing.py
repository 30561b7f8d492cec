"""Pictures of the deblurring panel: the kernel and its transfer function with their colour scales, and each filter's result scored."""

from __future__ import annotations

import numpy as np
from PIL import Image

from models.restoration import scores

from .. import drawing
from .deconvolution_math import Deconvolution, to_uint8


def pictures(result: Deconvolution, clean: np.ndarray) -> list[tuple[Image.Image, str]]:
    """Gallery items, left to right as the lecture tells it: the kernel, |H|, the exact case, then the real one."""
    shown = lambda image: drawing.upscale_for_display(Image.fromarray(to_uint8(image)), 256)  # noqa: E731
    scored = lambda image: _psnr_text(scores(to_uint8(image), clean).psnr)  # noqa: E731
    peak = float(result.kernel.max())
    return [
        (drawing.heat_image(result.kernel, drawing.HeatScale(0.0, peak, "kernel weight"), target=256), f"the blur kernel ({result.kernel.shape[0]}×{result.kernel.shape[1]} px)"),
        (drawing.heat_image(result.log_transfer, drawing.HeatScale(float(result.log_transfer.min()), 0.0, "log10 |H|"), target=256),
         "its transfer function |H| (centre: zero frequency)"),
        (shown(result.blurred), f"blur only, in float: {scored(result.blurred)}"),
        (shown(result.exact), f"÷ H: exact ({scored(result.exact)})" if not result.lost else f"÷ H where H ≠ 0: {result.lost} frequenc{'y' if result.lost == 1 else 'ies'} lost for good ({scored(result.exact)})"),
        (shown(result.degraded), f"blur + noise + 8 bits (+ JPEG): {scored(result.degraded)}"),
        (shown(result.inverse), f"÷ H on that: the noise explodes ({scored(result.inverse)})"),
        (shown(result.wiener), f"Wiener filter, told the true spectra: {scored(result.wiener)}"),
    ]


def _psnr_text(psnr: float) -> str:
    return "identical to the clean image" if not np.isfinite(psnr) else f"PSNR {psnr:.1f} dB"
