"""The interface of ``missing`` components: which modalities a model may see.

Training: :meth:`MissingProtocol.train_mask` draws a mask per batch (the caller combines it
with what the data really has). Evaluation: :meth:`MissingProtocol.eval_conditions` returns
named per-sample masks, fixed by a seed, and which of them enter the reported ``mean``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class EvalCondition:
    name: str
    mask: Tensor  # (N, M) bool


@dataclass
class EvalPlan:
    conditions: list[EvalCondition]
    mean_over: list[str]   # condition names averaged into the reported "mean"


class MissingProtocol:
    """Base class; subclasses override both methods."""

    def train_mask(self, present: Tensor, generator: torch.Generator,
                   modalities: tuple[str, ...]) -> Tensor:
        """(B, M) bool mask of modalities kept for this training batch (sorted modality order)."""
        return torch.ones_like(present, dtype=torch.bool)

    def eval_conditions(self, modalities: tuple[str, ...], n: int) -> EvalPlan:
        full = torch.ones(n, len(modalities), dtype=torch.bool)
        return EvalPlan([EvalCondition("full", full)], ["full"])

    def describe(self) -> dict:
        """Parameters that define the protocol (compared across runs by ``mmtk compare``)."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}
