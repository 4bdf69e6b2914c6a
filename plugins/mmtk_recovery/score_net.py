"""A conditional score network on vectors: s(x_t, t | available modalities).

The condition is the representations of the other modalities, each multiplied by its
availability bit, followed by the bits themselves, so the network knows which are absent (a
zero representation and an absent one are told apart). Time enters through Gaussian Fourier
features (Song et al.); the output is divided by std(t), as in the reference code, so the
network predicts the noise's scale-free direction.
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

    def forward(self, x: Tensor, t: Tensor, cond: Tensor) -> Tensor:
        """``cond`` (B, sources * dim + sources): masked source representations, then bits."""
        h = self.inp(x) + torch.nn.functional.silu(self.time(t)) + self.cond(cond)
        for block in self.blocks:
            h = h + block(h)
        return self.out(h) / self.sde.std(t)[:, None]


def condition(reps: list[Tensor], available: Tensor) -> Tensor:
    """(B, S * D + S): each source representation times its availability bit, then the bits."""
    bits = available.to(reps[0].dtype)
    return torch.cat([r * bits[:, k:k + 1] for k, r in enumerate(reps)] + [bits], -1)
