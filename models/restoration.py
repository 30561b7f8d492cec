"""Image restoration models: one wrapper for both tiers, the metrics that score them, and their registry entries.

``Restorer`` runs transformers' documented Swin2SR recipe for every model: ``Swin2SRImageProcessor``
(rescale to [0, 1], pad symmetrically to a multiple of 8) -> the network -> ``reconstruction`` ->
clamp to [0, 1] -> x255, rounded to uint8. The pretrained Swin2SR models super-resolve (x4 for
real-world degradations, x2 classical); the local residual U-Net restores at the same size. The
padding is cropped off the output (the recipe leaves it on).

Swin2SR on a CPU costs seconds per 100k pixels, so each model caps its input's longest side
(``Restorer.max_side``) and says when it shrank an image (``RestorationOutput.downscaled_from``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import nn
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from .nets.restoration import RestorationNet, RestorationNetConfig
from .sources import HuggingFaceWeights, LocalWeights
from .spec import ModelSpec, local_spec

TASK = "restoration"
REALWORLD_X4_REPO = "caidas/swin2SR-realworld-sr-x4-64-bsrgan-psnr"
CLASSICAL_X2_REPO = "caidas/swin2SR-classical-sr-x2-64"
LOCAL_MAX_SIDE = 1024


@dataclass
class RestorationOutput:
    restored: np.ndarray  # (scale*h, scale*w, 3) uint8
    input: np.ndarray  # (h, w, 3) uint8: what the network was given (the image, shrunk if it was over max_side)
    scale: int  # 1 for a restorer, 2 or 4 for a super-resolver
    downscaled_from: tuple[int, int] | None = None  # (width, height) of the image before it was shrunk, else None


@dataclass
class Scores:
    """PSNR (dB) and SSIM of an image against the clean one, from torchmetrics (data range 1)."""

    psnr: float
    ssim: float


def scores(image: np.ndarray, clean: np.ndarray) -> Scores:
    """``image`` against ``clean`` (both HxWx3 uint8, the same size): the two numbers restoration is judged by."""
    a, b = (torch.from_numpy(np.array(x, dtype=np.float32)).permute(2, 0, 1)[None] / 255 for x in (image, clean))
    psnr = peak_signal_noise_ratio(a, b, data_range=1.0)
    ssim = structural_similarity_index_measure(a, b, data_range=1.0)
    return Scores(round(float(psnr), 4), round(float(ssim), 4))


def to_size(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` resized to ``size`` (width, height) with PIL's antialiased bicubic: a super-resolved output at the clean image's size."""
    if (image.shape[1], image.shape[0]) == size:
        return image
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BICUBIC, reducing_gap=None))


def shrink(image: Image.Image, max_side: int) -> Image.Image:
    """``image`` with its longest side at most ``max_side`` (antialiased bicubic), aspect kept."""
    factor = max_side / max(image.size)
    if factor >= 1:
        return image
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    return image.resize(size, Image.Resampling.BICUBIC, reducing_gap=None)


class Restorer(nn.Module):
    """A restoration network plus Swin2SR's preprocessing and postprocessing: PIL image in, uint8 image out."""

    def __init__(self, network: nn.Module, processor, scale: int, max_side: int) -> None:
        super().__init__()
        self.network = network
        self.processor = processor
        self.scale = scale
        self.max_side = max_side

    @torch.inference_mode()
    def forward(self, image: Image.Image) -> RestorationOutput:
        image = image.convert("RGB")
        given = shrink(image, self.max_side)
        param = next(self.network.parameters())
        pixel_values = self.processor(given, return_tensors="pt").pixel_values.to(param.device, param.dtype)
        out = self.network(pixel_values)
        reconstruction = getattr(out, "reconstruction", out)  # transformers' output, or the local net's tensor
        # The model card's recipe, to the letter: squeeze, float, clamp to [0, 1], channels last, x255, round.
        output = reconstruction.data.squeeze().float().cpu().clamp_(0, 1).numpy()
        output = (np.moveaxis(output, source=0, destination=-1) * 255.0).round().astype(np.uint8)
        restored = output[: given.height * self.scale, : given.width * self.scale]  # the processor's padding, scaled, off
        return RestorationOutput(
            np.ascontiguousarray(restored), np.asarray(given), self.scale, image.size if given is not image else None
        )


def local_restorer(network: RestorationNet) -> Restorer:
    """The local network with the same processor as Swin2SR, padding to its own downsampling factor."""
    from transformers import Swin2SRImageProcessor

    return Restorer(network, Swin2SRImageProcessor(size_divisor=network.downsampling), 1, LOCAL_MAX_SIDE)


def _load_local(spec: ModelSpec) -> Restorer:
    source: LocalWeights = spec.source  # type: ignore[assignment]
    state = source.state_dict()  # first: a missing file must say how to train it
    network = RestorationNet(RestorationNetConfig.from_dict(source.card()["config"]))
    network.load_state_dict({k: v.float() for k, v in state.items()})  # stored as float16
    return local_restorer(network.eval())


def _swin2sr_loader(max_side: int):
    def load(spec: ModelSpec) -> Restorer:
        from transformers import Swin2SRForImageSuperResolution, Swin2SRImageProcessor

        source: HuggingFaceWeights = spec.source  # type: ignore[assignment]
        network, processor = source.build(Swin2SRForImageSuperResolution, Swin2SRImageProcessor)
        return Restorer(network.eval(), processor, int(network.config.upscale), max_side)

    return load


def _swin2sr_spec(name: str, title: str, repo: str, max_side: int, trained_on: str, about: str, fast: bool) -> ModelSpec:
    return ModelSpec(
        name=name,
        task=TASK,
        tier="pretrained",
        title=title,
        source=HuggingFaceWeights(repo),
        license=f"Apache-2.0 ({repo}); trained on {trained_on}",
        params=SWIN2SR_PARAMS[repo],
        load=_swin2sr_loader(max_side),
        about=f"`transformers.Swin2SRForImageSuperResolution` · {about} · input's longest side capped at {max_side} px on this server",
        fast_on_cpu=fast,
        input_size=max_side,
    )


SWIN2SR_PARAMS = {REALWORLD_X4_REPO: 12_054_643, CLASSICAL_X2_REPO: 12_091_571}
"""Parameters of the published configurations (counted on ``models.planting``'s full-size builds)."""

MAX_SIDE = {REALWORLD_X4_REPO: 160, CLASSICAL_X2_REPO: 192}
"""Longest input side each pretrained model takes here: the x4 output's last convolutions run at 16x the pixels."""


def specs() -> list[ModelSpec]:
    """Restoration models, best first: the picker defaults to the first one that can run here."""
    return [
        _swin2sr_spec(
            "swin2sr-realworld-x4", "Swin2SR real-world ×4 (BSRGAN degradations)", REALWORLD_X4_REPO, MAX_SIDE[REALWORLD_X4_REPO],
            "DIV2K + Flickr2K + OST with BSRGAN's random blur, noise, downscaling and JPEG",
            "super-resolves ×4 while removing blur, noise and JPEG artefacts", fast=False,
        ),
        _swin2sr_spec(
            "swin2sr-classical-x2", "Swin2SR classical ×2", CLASSICAL_X2_REPO, MAX_SIDE[CLASSICAL_X2_REPO],
            "DIV2K, bicubic downscaling only", "super-resolves ×2; expects a clean, merely small image", fast=False,
        ),
        local_spec(
            TASK, "restore-shapes", "Residual U-Net (ShapesWorld)", _load_local,
            {"ShapesWorld test PSNR gain (dB)": "psnr_gain_db", "ShapesWorld test SSIM": "ssim"},
            "`models/nets/restoration.py`, trained by `python -m models train restore-shapes` on blurred, noisy, JPEG-compressed scenes",
        ),
    ]
