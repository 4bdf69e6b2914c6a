"""Autoencoders shared by the baselines: a plain fully connected AE and MMIN's cascade.

Both work on one vector per sample (B, dim). Encoders use LeakyReLU between layers and no
activation after the bottleneck; decoders mirror the encoder with ReLU between layers and a
linear output, as in MMIN's reference ``ResidualAE``.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from mmtk import MmtkError


def check_layers(layers: Sequence[int], blocks: int, owner: str) -> list[int]:
    layers = [int(v) for v in layers]
    if not layers or any(v <= 0 for v in layers):
        raise MmtkError(f"{owner}: 'layers' must be a non-empty list of positive sizes, e.g. "
                        f"[256, 128, 64]; got {layers}")
    if blocks < 1:
        raise MmtkError(f"{owner}: 'blocks' must be at least 1, got {blocks}")
    return layers


def _stack(sizes: list[int], activation: type[nn.Module], dropout: float) -> nn.Sequential:
    """Linear layers through ``sizes`` with activation (+dropout) between, none after the last."""
    parts: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        parts.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            parts.append(activation())
            if dropout > 0:
                parts.append(nn.Dropout(dropout))
    return nn.Sequential(*parts)


class AutoEncoder(nn.Module):
    """dim -> layers -> (bottleneck) -> reversed layers -> dim."""

    def __init__(self, dim: int, layers: Sequence[int], dropout: float = 0.0):
        super().__init__()
        layers = list(layers)
        self.encoder = _stack([dim, *layers], nn.LeakyReLU, dropout)
        self.decoder = _stack([*layers[::-1], dim], nn.ReLU, dropout)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        latent = self.encoder(x)
        return self.decoder(latent), latent


class CascadeResidualAE(nn.Module):
    """``blocks`` autoencoders in a residual cascade (MMIN's imagination module).

    Block k encodes the running sum of the input and the outputs of blocks 1..k-1; after the
    last block, a two-layer transition MLP maps that sum (plus the last output) to the
    result. Returns ``(output (B, dim), latents (B, blocks * layers[-1]))`` where the latents
    are the blocks' bottlenecks concatenated in block order.
    """

    def __init__(self, dim: int, layers: Sequence[int], blocks: int, dropout: float = 0.0):
        super().__init__()
        self.blocks = nn.ModuleList(AutoEncoder(dim, layers, dropout) for _ in range(blocks))
        self.transition = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))
        self.latent_dim = blocks * list(layers)[-1]

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        running, out = x, torch.zeros_like(x)
        latents = []
        for block in self.blocks:
            running = running + out
            out, latent = block(running)
            latents.append(latent)
        return self.transition(running + out), torch.cat(latents, -1)
