"""The interface of ``missing`` components: which modalities a model may see.

Training: :meth:`MissingProtocol.train_mask` draws a mask per batch, or
:meth:`MissingProtocol.train_table` fixes one mask row per training sample for the whole run
(CPM-Nets: the training data is incomplete in the same way every epoch). The caller combines
either with what the data really has. Evaluation: :meth:`MissingProtocol.eval_conditions` returns
named per-sample masks, fixed by a seed, and which of them enter the reported ``mean``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from .errors import MmtkError


@dataclass
class EvalCondition:
    """One named evaluation condition: which modalities each of the N test samples keeps."""

    name: str
    mask: Tensor  # (N, M) bool


@dataclass
class EvalPlan:
    """The conditions a protocol evaluates, and which of them enter the reported mean."""

    conditions: list[EvalCondition]
    mean_over: list[str]   # condition names averaged into the reported "mean"


class MissingProtocol:
    """Base class; subclasses override both methods."""

    def train_mask(self, present: Tensor, generator: torch.Generator,
                   modalities: tuple[str, ...]) -> Tensor:
        """(B, M) bool mask of modalities kept for this training batch (sorted modality order)."""
        return torch.ones_like(present, dtype=torch.bool)

    def train_table(self, n: int, modalities: tuple[str, ...]) -> Tensor | None:
        """A fixed (n, M) bool mask, row i for training sample i, used every epoch instead of
        :meth:`train_mask`; None (the default) draws a fresh mask per batch."""
        return None

    def eval_conditions(self, modalities: tuple[str, ...], n: int) -> EvalPlan:
        full = torch.ones(n, len(modalities), dtype=torch.bool)
        return EvalPlan([EvalCondition("full", full)], ["full"])

    def describe(self) -> dict:
        """Parameters that define the protocol (compared across runs by ``mmtk compare``)."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}


TrainingMasks = Callable[[Tensor, Tensor, torch.Generator], Tensor]


def training_masks(protocol: MissingProtocol, n: int, modalities: tuple[str, ...]) -> TrainingMasks:
    """``masks(rows, present_rows, generator) -> (B, M)`` for a training batch of rows: the
    protocol's fixed table when it has one, else a draw of :meth:`train_mask`."""
    table = protocol.train_table(n, modalities)
    if table is None:
        return lambda rows, present, generator: protocol.train_mask(present, generator, modalities)
    if tuple(table.shape) != (n, len(modalities)) or table.dtype != torch.bool:
        raise MmtkError(f"missing protocol '{type(protocol).__name__}': train_table gave "
                        f"{tuple(table.shape)} {table.dtype}; expected ({n}, {len(modalities)}) bool")
    return lambda rows, present, generator: table[rows.cpu()]
