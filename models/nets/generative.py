"""The local VAE and GAN: small convolutional networks on 32x32 ShapesWorld objects, conditioned on the prompt.

Both read a prompt exactly as the local diffusion model does: ``parse_prompt`` turns it into one
embedding row per attribute (size, colour, shape, each with an "unspecified" row) and a
``PromptEncoder`` sums the three rows into one vector. So the three families are asked the same
thing in the same way, and only the generative mechanism differs.

- ``ConditionalVAE``: an encoder q(z | x, prompt) to a Gaussian over a ``latent_dim`` vector and a
  decoder p(x | z, prompt). The prompt carries what the picture is; the latent carries the rest
  (position, turn, background tint), which is why a 2-D slice of it maps poses, not shapes.
- ``ConditionalGenerator``: DCGAN's generator (a linear layer to 4x4, then upsample-and-convolve
  stages with batch norm), with the prompt vector concatenated to the noise and scaling each
  stage's normalised features (conditional batch norm), so every stage hears the prompt.
- ``ProjectionDiscriminator``: spectral-normalised convolutions, the projection term of Miyato and
  Koyama (2018), <prompt vector, features>, and auxiliary heads that classify each attribute
  (AC-GAN), which push the generator towards the asked colour and shape. Only training uses it.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from .diffusion import ATTRIBUTES, PromptEncoder


class ConditionalVAE(nn.Module):
    """q(z | x, prompt) and p(x | z, prompt) on (B,3,32,32) images in [-1, 1]."""

    def __init__(self, latent_dim: int = 32, width: int = 32, prompt_dim: int = 64) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        w = width
        self.prompts = PromptEncoder(prompt_dim)
        self.encoder = nn.Sequential(
            _down(3, w), _down(w, 2 * w), _down(2 * w, 4 * w), nn.Flatten(),  # 32 -> 16 -> 8 -> 4
        )
        self.to_gaussian = nn.Linear(4 * w * 16 + prompt_dim, 2 * latent_dim)
        self.from_latent = nn.Sequential(nn.Linear(latent_dim + prompt_dim, 4 * w * 16), nn.SiLU())
        self.decoder = nn.Sequential(
            _up(4 * w, 2 * w), _up(2 * w, w), _up(w, w), nn.Conv2d(w, 3, 3, padding=1), nn.Tanh(),  # 4 -> 8 -> 16 -> 32
        )

    def encode(self, images: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The posterior's mean and log-variance, (B, latent_dim) each."""
        features = torch.cat([self.encoder(images), self.prompts(rows)], dim=1)
        mean, log_var = self.to_gaussian(features).chunk(2, dim=1)
        return mean, log_var.clamp(-12, 8)

    def decode(self, latents: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        hidden = self.from_latent(torch.cat([latents, self.prompts(rows)], dim=1))
        return self.decoder(hidden.view(len(latents), -1, 4, 4))

    def forward(self, images: torch.Tensor, rows: torch.Tensor, generator: torch.Generator | None = None):
        """Reconstruction through one reparameterised sample, and the posterior (mean, log-variance)."""
        mean, log_var = self.encode(images, rows)
        noise = torch.randn(mean.shape, generator=generator, device=mean.device)
        return self.decode(mean + (0.5 * log_var).exp() * noise, rows), mean, log_var


class ConditionalBatchNorm(nn.Module):
    """Batch norm whose scale and shift are predicted from the prompt vector."""

    def __init__(self, channels: int, prompt_dim: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.affine = nn.Linear(prompt_dim, 2 * channels)
        nn.init.zeros_(self.affine.weight)
        nn.init.zeros_(self.affine.bias)

    def forward(self, x: torch.Tensor, prompt: torch.Tensor) -> torch.Tensor:
        scale, shift = self.affine(prompt)[:, :, None, None].chunk(2, dim=1)
        return self.norm(x) * (1 + scale) + shift


class ConditionalGenerator(nn.Module):
    """DCGAN-style generator: (noise, prompt rows) -> (B,3,32,32) in [-1, 1]."""

    def __init__(self, noise_dim: int = 64, widths: tuple[int, ...] = (128, 64, 32), prompt_dim: int = 64) -> None:
        super().__init__()
        self.noise_dim = noise_dim
        self.prompts = PromptEncoder(prompt_dim)
        self.stem = nn.Linear(noise_dim + prompt_dim, widths[0] * 16)
        self.stem_norm = ConditionalBatchNorm(widths[0], prompt_dim)
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        for a, b in zip(widths, (*widths[1:], widths[-1])):  # 4 -> 8 -> 16 -> 32
            self.convs.append(nn.Conv2d(a, b, 3, padding=1))
            self.norms.append(ConditionalBatchNorm(b, prompt_dim))
        self.to_rgb = nn.Conv2d(widths[-1], 3, 3, padding=1)
        self.width = widths[0]

    def forward(self, noise: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        prompt = self.prompts(rows)
        x = self.stem(torch.cat([noise, prompt], dim=1)).view(len(noise), self.width, 4, 4)
        x = torch.relu(self.stem_norm(x, prompt))
        for conv, norm in zip(self.convs, self.norms):
            x = torch.relu(norm(conv(nn.functional.interpolate(x, scale_factor=2, mode="nearest")), prompt))
        return torch.tanh(self.to_rgb(x))


class ProjectionDiscriminator(nn.Module):
    """Real-or-fake score with a prompt projection term, and one classification head per attribute."""

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128), prompt_dim: int = 128) -> None:
        super().__init__()
        layers, channels = [], 3
        for width in widths:  # 32 -> 16 -> 8 -> 4
            layers += [spectral_norm(nn.Conv2d(channels, width, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
            channels = width
        layers += [spectral_norm(nn.Conv2d(channels, prompt_dim, 3, padding=1)), nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(*layers)
        self.score = spectral_norm(nn.Linear(prompt_dim, 1))
        self.prompts = PromptEncoder(prompt_dim)
        self.heads = nn.ModuleDict({name: nn.Linear(prompt_dim, len(words)) for name, words in ATTRIBUTES.items()})

    def forward(self, images: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(B,) scores (higher: real) and per attribute (B, words) logits."""
        features = self.features(images).sum(dim=(2, 3))
        score = self.score(features).squeeze(1) + (self.prompts(rows) * features).sum(dim=1)
        return score, {name: head(features) for name, head in self.heads.items()}


def _down(a: int, b: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(a, b, 4, stride=2, padding=1), nn.GroupNorm(8, b), nn.SiLU())


def _up(a: int, b: int) -> nn.Module:
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(a, b, 3, padding=1), nn.GroupNorm(8, b), nn.SiLU())
