"""Fusers and heads that know nothing of any particular method."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from mmtk import Fuser, State

from .limits import Dropout, LayerSizes


class ConcatFuser(Fuser):
    """Concatenate the per-modality representations in sorted modality order."""

    def __init__(self, modalities: tuple[str, ...], latent_dim: int):
        super().__init__()
        self.out_dim = latent_dim * len(modalities)

    def forward(self, state: State) -> tuple[State, dict[str, Tensor]]:
        state.fused = torch.cat([state.reps[m] for m in state.modalities], -1)
        return state, {}


class MLPHead(nn.Module):
    """MLP head: hidden layers with ReLU and dropout, then class logits or one score.

    Gives ``out_dim`` outputs: class logits, or one regression score when the task loss is a
    regression loss (l1, mse).

    Parameters:
        hidden: sizes of the hidden layers, in order ([] for a single linear layer)
        dropout: dropout probability after each hidden layer
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: LayerSizes = (128,), dropout: Dropout = 0.3):
        super().__init__()
        layers, d = [], in_dim
        for h in hidden:
            layers += [nn.Linear(d, h), nn.ReLU(), nn.Dropout(dropout)]
            d = h
        layers.append(nn.Linear(d, out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
