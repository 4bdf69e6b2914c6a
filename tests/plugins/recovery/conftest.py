"""Fixtures of the recovery plugin's tests: a tiny pipeline around a recovery slot, batches
with chosen present modalities, random weights (tests import no helper module: importlib
mode; ``conftest`` is the top-level one)."""
from __future__ import annotations

import pytest
import torch

from mmtk.batch import ModalityBatch
from mmtk.builder import Builder

MODALITIES = ("audio", "text", "visual")
IN_DIMS = {"audio": 6, "text": 5, "visual": 4}
LATENT = 8


def _rows(*codes: str) -> torch.Tensor:
    """(len(codes), 3) bool present mask from condition codes such as 'a', 'tv', 'atv'."""
    return torch.tensor([[m[0] in code for m in MODALITIES] for code in codes])


@pytest.fixture
def pipeline(system, tmp_path):
    """``pipeline(reconstructor_block)``: encoders (mlp, no dropout) -> the reconstructor ->
    concat -> linear head, latent width 8, 3 classes."""
    def build(block: dict, seed: int = 0):
        torch.manual_seed(seed)
        model = {"latent_dim": LATENT, "encoders": {m: {"type": "mlp", "dropout": 0.0} for m in MODALITIES},
                 "reconstructor": block, "fuser": {"type": "concat"},
                 "head": {"type": "mlp", "hidden": []}}
        return Builder(system.registry, tmp_path).model(model, IN_DIMS, num_classes=3, seed=seed)
    return build


def _make_batch(n: int, seed: int = 0, available: torch.Tensor | None = None,
               labels: torch.Tensor | None = None) -> ModalityBatch:
    """A complete-feature batch (what the data has: ``available``, default everything)."""
    g = torch.Generator().manual_seed(seed)
    inputs = {m: torch.randn(n, IN_DIMS[m], generator=g) for m in MODALITIES}
    present = available if available is not None else torch.ones(n, 3, dtype=torch.bool)
    inputs = {m: torch.where(present[:, i:i + 1], x, torch.zeros(())) for i, (m, x) in enumerate(inputs.items())}
    return ModalityBatch(inputs, present, MODALITIES,
                         labels if labels is not None else torch.arange(n) % 3,
                         [f"s{i}" for i in range(n)], {})


def _perturb(module: torch.nn.Module, scale: float = 0.3, seed: int = 1) -> None:
    """Random weights everywhere (new flows and refiners start as the identity)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))


@pytest.fixture
def rows():
    """``rows('a', 'tv', ...)`` -> (n, 3) bool present mask."""
    return _rows


@pytest.fixture
def make_batch():
    """``make_batch(n, seed, available, labels)`` -> a complete-feature ModalityBatch."""
    return _make_batch


@pytest.fixture
def perturb():
    """``perturb(module, scale, seed)``: add random noise to every parameter."""
    return _perturb
