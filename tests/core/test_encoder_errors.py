"""An encoder that raises in forward, or returns anything but (B, latent_dim), is named."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from mmtk.batch import ModalityBatch
from mmtk.errors import MmtkError
from mmtk.pipeline import Fuser, Pipeline

MODALITIES = ("audio", "text")


class Linear(nn.Module):
    def __init__(self, out: int = 4):
        super().__init__()
        self.out = out

    def forward(self, x, lengths=None):
        return x.mean(1)[:, :1].expand(-1, self.out)


class Raises(nn.Module):
    def forward(self, x, lengths=None):
        raise ValueError("cannot read this input")


class ThreeD(nn.Module):
    def forward(self, x, lengths=None):
        return x


class Tuple(nn.Module):
    def forward(self, x, lengths=None):
        return x.mean(1), x.std(1)


class Sum(Fuser):
    out_dim = 4

    def forward(self, state):
        state.fused = sum(state.reps.values())
        return state, {}


def batch(n: int = 3) -> ModalityBatch:
    inputs = {m: torch.randn(n, 5, 4) for m in MODALITIES}
    return ModalityBatch(inputs, torch.ones(n, 2, dtype=torch.bool), MODALITIES,
                         lengths={m: torch.full((n,), 5) for m in MODALITIES})


def pipeline(text_encoder: nn.Module, latent_dim: int | None = None) -> Pipeline:
    pipe = Pipeline({"audio": Linear(), "text": text_encoder}, Sum(), nn.Linear(4, 2))
    if latent_dim is not None:
        pipe.latent_dim = latent_dim
    return pipe


@pytest.mark.parametrize("encoder, latent_dim, message", [
    (Raises(), None, "test_encoder_errors.Raises of modality 'text' failed in forward: "
                     "ValueError: cannot read this input"),
    (ThreeD(), None, "test_encoder_errors.ThreeD of modality 'text' returned shape (3, 5, 4); "
                     "an encoder must return (batch, latent_dim) = (3, latent_dim)"),
    (Tuple(), None, "of modality 'text' returned tuple; an encoder must return (batch, latent_dim)"),
    (Linear(5), None, "encoders return representations of different widths (audio: 4, text: 5)"),
    (Linear(5), 5, "test_encoder_errors.Linear of modality 'audio' returned shape (3, 4); "
                   "an encoder must return (batch, latent_dim) = (3, 5)"),
])
def test_encoder_faults_name_the_encoder_and_modality(encoder, latent_dim, message):
    with pytest.raises(MmtkError) as info:
        pipeline(encoder, latent_dim)(batch())
    assert message in str(info.value)


def test_a_correct_encoder_passes_and_errors_keep_their_cause():
    assert pipeline(Linear(), 4)(batch()).logits.shape == (3, 2)
    with pytest.raises(MmtkError) as info:
        pipeline(Raises())(batch())
    assert isinstance(info.value.__cause__, ValueError)  # --traceback shows where it happened
