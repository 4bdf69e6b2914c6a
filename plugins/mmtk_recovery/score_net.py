"""A conditional score network on vectors: s(u_t, t | available modalities).

It works on standardised representations u (see :class:`RunningStandardizer`), so the VE
SDE's noise scale means the same for every modality and encoder. The condition is the
other modalities' (standardised) representations, each multiplied by its availability bit,
followed by the bits themselves, so the network knows which are absent (a zero
representation and an absent one are told apart). Time enters through Gaussian Fourier
features (Song et al.).

The output is preconditioned as Karras et al.'s EDM denoiser with unit data scale:
``D(u) = u / (1 + std²) + std / sqrt(1 + std²) · F(u / sqrt(1 + std²), t, c)`` and
``score = (D(u) - u) / std²``. F's last layer starts at zero, so a new network is the exact
score of N(0, I) data: an untrained model samples the standardised marginal instead of
exploding (an unconditioned MLP divided by std(t) drew samples of size ~1e2 at first).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .vesde import VESDE


class FourierTime(nn.Module):
    """Fixed random Fourier features of t (not trained: a buffer, saved with the model)."""

    def __init__(self, dim: int, scale: float = 30.0):
        super().__init__()
        self.register_buffer("freqs", torch.randn(max(dim // 2, 1)) * scale)

    def forward(self, t: Tensor) -> Tensor:
        angles = 2 * math.pi * t[:, None] * self.freqs[None]
        return torch.cat([angles.sin(), angles.cos()], -1)


class ScoreNet(nn.Module):
    """MLP score network: input, time and condition embeddings summed, residual layers."""

    def __init__(self, dim: int, sources: int, sde: VESDE, hidden: int, layers: int):
        super().__init__()
        self.sde = sde
        self.inp = nn.Linear(dim, hidden)
        self.time = nn.Sequential(FourierTime(hidden), nn.Linear(2 * max(hidden // 2, 1), hidden))
        self.cond = nn.Linear(sources * dim + sources, hidden)
        self.blocks = nn.ModuleList(nn.Sequential(nn.SiLU(), nn.Linear(hidden, hidden))
                                    for _ in range(layers))
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(hidden, dim))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, u: Tensor, t: Tensor, cond: Tensor) -> Tensor:
        """Score at (u, t); ``cond`` (B, sources * dim + sources): masked sources, then bits."""
        std = self.sde.std(t)[:, None]
        scale = torch.sqrt(1 + std ** 2)
        h = self.inp(u / scale) + torch.nn.functional.silu(self.time(t)) + self.cond(cond)
        for block in self.blocks:
            h = h + block(h)
        return -u / scale ** 2 + self.out(h) / (std * scale)


def condition(reps: list[Tensor], available: Tensor) -> Tensor:
    """(B, S * D + S): each source representation times its availability bit, then the bits."""
    bits = available.to(reps[0].dtype)
    return torch.cat([r * bits[:, k:k + 1] for k, r in enumerate(reps)] + [bits], -1)


class RunningStandardizer(nn.Module):
    """Per-dimension running mean and variance of a modality's true representations
    (updated in training, like BatchNorm's statistics; buffers, saved with the model)."""

    def __init__(self, dim: int, momentum: float = 0.05):
        super().__init__()
        self.momentum = momentum
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("var", torch.ones(dim))
        self.register_buffer("seen", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def update(self, x: Tensor) -> None:
        if len(x) < 2:
            return
        # the first batch sets the statistics; later ones move them by ``momentum``
        rate = 1.0 if int(self.seen) == 0 else self.momentum
        self.mean.lerp_(x.mean(0).to(self.mean.dtype), rate)
        self.var.lerp_(x.var(0).to(self.var.dtype), rate)
        self.seen += 1

    def to_unit(self, x: Tensor) -> Tensor:
        return (x - self.mean) / torch.sqrt(self.var + 1e-5)

    def from_unit(self, u: Tensor) -> Tensor:
        return self.mean + u * torch.sqrt(self.var + 1e-5)
