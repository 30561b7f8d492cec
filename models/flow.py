"""Optical flow: one wrapper for both tiers (torchvision's RAFT), the end-point error, and their registry entries.

``FlowEstimator`` takes two PIL frames and returns a ``FlowField``: the flow from the first frame to
the second at the first frame's size, in pixels as (dx, dy), and the flow after each update of
RAFT's recurrent unit (torchvision's RAFT returns that list; its last entry is the answer).

Both tiers run exactly as torchvision's documentation does: ``weights.transforms()`` on the two
frames (to float, scaled to [-1, 1]), ``model(img1, img2)[-1]``, with the frames at sides divisible
by 8 (the docs resize to such a size). A frame whose sides are not multiples of 8, or are under
RAFT's 128-pixel minimum, or over ``max_side``, is resized to the nearest size that is, and the flow
is resized back with its vectors scaled by the same ratio. Frames of different sizes are refused.

- pretrained: ``raft_large`` and ``raft_small`` with their published weights (FlyingChairs, then
  FlyingThings3D, then a mix with Sintel, KITTI and HD1K: the ``C_T_SKHT_V2`` weights);
- local: a smaller configuration of torchvision's ``RAFT`` class (its constructor takes the
  encoders, correlation block, update block and convex-upsampling mask predictor), trained here on
  ShapesWorld clips.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torchvision.models.optical_flow import RAFT, Raft_Large_Weights, Raft_Small_Weights, raft_large, raft_small
from torchvision.models.optical_flow.raft import BottleneckBlock, CorrBlock, FeatureEncoder, FlowHead, MaskPredictor, MotionEncoder, RecurrentBlock, UpdateBlock

from .sources import LocalWeights, TorchvisionWeights
from .spec import ModelSpec, local_spec, torchvision_spec

TASK = "flow"
MIN_SIDE = 128  # RAFT's correlation pyramid (4 levels at 1/8 of the frame) needs feature maps of at least 16
UPDATES = 12  # torchvision's default number of flow updates


def epe(predicted: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean end-point error: the Euclidean distance between predicted and true (dx, dy), in px, over ``mask`` (all pixels by default)."""
    distance = np.sqrt(((predicted.astype(np.float64) - truth.astype(np.float64)) ** 2).sum(axis=-1))
    return float(distance[mask].mean() if mask is not None else distance.mean())


@dataclass
class FlowField:
    """A model's flow from frame 1 to frame 2 at frame 1's size, and what each update of its recurrent unit gave."""

    flow: np.ndarray  # float32 (H, W, 2): (dx, dy) in px
    iterations: list[np.ndarray]  # the flow after each update, same layout; the last equals ``flow``
    model: str = ""
    working_size: tuple[int, int] = (0, 0)  # (width, height) the network saw


def working_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """The size RAFT sees: sides multiples of 8, at least MIN_SIDE, the longer at most ``max_side`` (the aspect kept where it can be)."""
    scale = min(1.0, max_side / max(width, height))
    w, h = (max(MIN_SIDE, 8 * round(side * scale / 8)) for side in (width, height))
    return w, h


class FlowEstimator(nn.Module):
    """A RAFT network with torchvision's documented pre- and postprocessing: two PIL frames in, a ``FlowField`` out."""

    def __init__(self, network: RAFT, name: str, updates: int = UPDATES, max_side: int = 1024) -> None:
        super().__init__()
        self.network = network
        self.name = name
        self.updates = updates
        self.max_side = max_side
        self.transforms = Raft_Large_Weights.DEFAULT.transforms()  # both weights share it: to float, then (x - 0.5) / 0.5
        self.eval()

    def forward(self, first: Image.Image, second: Image.Image) -> FlowField:
        if first.size != second.size:
            raise ValueError(
                f"the two frames differ in size ({first.width}x{first.height} and {second.width}x{second.height}): "
                "give two frames of one video, or resize one to the other"
            )
        return self.predict(first.convert("RGB"), second.convert("RGB"))

    def prepare(self, first: Image.Image, second: Image.Image) -> tuple[torch.Tensor, torch.Tensor]:
        """The two frames at the working size, through ``weights.transforms()``, as (1, 3, H, W) batches on the network's device."""
        size = working_size(first.width, first.height, self.max_side)
        frames = [torch.from_numpy(np.asarray(f.resize(size, Image.Resampling.BILINEAR) if f.size != size else f, dtype=np.uint8).copy()) for f in (first, second)]
        one, two = self.transforms(*(f.permute(2, 0, 1)[None] for f in frames))
        param = next(self.network.parameters())
        return one.to(param.device, param.dtype), two.to(param.device, param.dtype)

    @torch.inference_mode()
    def predict(self, first: Image.Image, second: Image.Image) -> FlowField:
        one, two = self.prepare(first, second)
        predictions = self.network(one, two, num_flow_updates=self.updates)
        size = (one.shape[-1], one.shape[-2])
        return FlowField(
            to_frame(predictions[-1], first.size), [to_frame(p, first.size) for p in predictions], self.name, size,
        )


def to_frame(flow: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """A (1, 2, h, w) flow at the working size -> (H, W, 2) at the frame's (width, height), vectors scaled by the resize."""
    flow = flow.float()
    h, w = flow.shape[-2:]
    if (w, h) != size:
        flow = F.interpolate(flow, size=(size[1], size[0]), mode="bilinear", align_corners=False)
        flow = flow * torch.tensor([size[0] / w, size[1] / h], device=flow.device).view(1, 2, 1, 1)
    return flow[0].permute(1, 2, 0).cpu().numpy().astype(np.float32)


@dataclass(frozen=True)
class LocalRaftConfig:
    """A smaller RAFT: torchvision's classes with narrower encoders and update block, and a small convex-upsampling head."""

    feature_layers: tuple[int, ...] = (16, 16, 32, 48, 64)
    context_layers: tuple[int, ...] = (16, 16, 32, 48, 96)
    hidden: int = 64  # the recurrent unit's state; the context's other channels feed it
    corr_levels: int = 4
    corr_radius: int = 3
    motion_out: int = 48
    mask_hidden: int = 32

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, values: dict) -> "LocalRaftConfig":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})

    def build(self) -> RAFT:
        corr = CorrBlock(num_levels=self.corr_levels, radius=self.corr_radius)
        motion = MotionEncoder(in_channels_corr=corr.out_channels, corr_layers=(64,), flow_layers=(32, 16), out_channels=self.motion_out)
        context = self.context_layers[-1] - self.hidden
        recurrent = RecurrentBlock(input_size=motion.out_channels + context, hidden_size=self.hidden, kernel_size=(3,), padding=(1,))
        return RAFT(
            feature_encoder=FeatureEncoder(block=BottleneckBlock, layers=self.feature_layers, norm_layer=nn.InstanceNorm2d),
            context_encoder=FeatureEncoder(block=BottleneckBlock, layers=self.context_layers, norm_layer=None),
            corr_block=corr,
            update_block=UpdateBlock(motion_encoder=motion, recurrent_block=recurrent, flow_head=FlowHead(in_channels=self.hidden, hidden_size=64)),
            mask_predictor=MaskPredictor(in_channels=self.hidden, hidden_size=self.mask_hidden, multiplier=0.25),
        )


def _load_local(spec: ModelSpec) -> FlowEstimator:
    source: LocalWeights = spec.source  # type: ignore[assignment]
    state = source.state_dict()  # first: a missing file must say how to train it
    card = source.card()
    network = LocalRaftConfig.from_dict(card["config"]).build()
    network.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return FlowEstimator(network, spec.name, card["preprocessing"]["updates"], card["preprocessing"]["max_side"])


def _load_torchvision(spec: ModelSpec) -> FlowEstimator:
    source: TorchvisionWeights = spec.source  # type: ignore[assignment]
    return FlowEstimator(source.build(), spec.name, max_side=520 if spec.name == "raft-large" else 640)


def specs() -> list[ModelSpec]:
    """RAFT large (best, for a GPU), RAFT small (the CPU default), and the local RAFT trained on ShapesWorld."""
    about = "torchvision `{0}` · `weights.transforms()` · `model(img1, img2)[-1]` after 12 updates; longest side at most {1} px"
    return [
        torchvision_spec(
            TASK, "raft-large", "RAFT large", Raft_Large_Weights.C_T_SKHT_V2, raft_large, load=_load_torchvision,
            trained_on="FlyingChairs + FlyingThings3D, then Sintel, KITTI and HD1K", metrics={"Sintel test final-pass EPE (published)": "epe"},
            benchmark="Sintel-Test-Finalpass", about=about.format("raft_large", 520),
        ),
        torchvision_spec(
            TASK, "raft-small", "RAFT small", Raft_Small_Weights.C_T_V2, raft_small, load=_load_torchvision,
            trained_on="FlyingChairs + FlyingThings3D", metrics={"Sintel train final-pass EPE (published)": "epe"},
            benchmark="Sintel-Train-Finalpass", about=about.format("raft_small", 640), fast_on_cpu=True,
        ),
        local_spec(
            TASK, "raft-flow-shapes", "RAFT (ShapesWorld)", _load_local,
            {"ShapesWorld test EPE (px)": "epe_px", "zero-flow EPE (px)": "epe_zero_px"},
            "a smaller `torchvision.models.optical_flow.RAFT` (convex upsampling); trained by `python -m models train raft-flow-shapes`",
        ),
    ]


def warp_back(second: np.ndarray, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frame 2 sampled at p + flow(p) for every pixel p of frame 1 (bilinear), and where that point lies inside frame 2.

    If the flow is right, the result is frame 1 again wherever the point stays visible: what is left
    (the photometric error) shows where the flow is wrong, or the point was hidden or left the frame.
    """
    h, w = flow.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    x, y = xx + flow[..., 0], yy + flow[..., 1]
    inside = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
    grid = torch.from_numpy(np.stack([2 * x / max(w - 1, 1) - 1, 2 * y / max(h - 1, 1) - 1], axis=-1))[None]
    image = torch.from_numpy(np.asarray(second, dtype=np.float32)).permute(2, 0, 1)[None]
    warped = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return warped[0].permute(1, 2, 0).round().clamp(0, 255).numpy().astype(np.uint8), inside
