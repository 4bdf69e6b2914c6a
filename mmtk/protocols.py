"""The interface of ``missing`` components: which modalities a model may see.

Training: :meth:`MissingProtocol.train_mask` draws a mask per batch, or
:meth:`MissingProtocol.train_table` fixes one mask row per training sample for the whole run
(CPM-Nets: the training data is incomplete in the same way every epoch). Either is combined
with what the data really has (:func:`training_masks` ANDs it with ``present``): a training
protocol can only hide more of a naturally incomplete training sample, never reveal a
modality it lacks. Evaluation: :meth:`MissingProtocol.eval_conditions` returns
named per-sample masks, fixed by a seed, and which of them enter the reported ``mean``.

A protocol may take ``present`` (the (n, M) mask of what the data really has) in
``train_table`` and ``eval_conditions``: the core passes it to those that declare it, so a
missing rate can count the data's own missing cells (:func:`exact_rate_mask`). A sample left
with no modality is never scored (the evaluator excludes it and says how many).
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

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

    def train_table(self, n: int, modalities: tuple[str, ...],
                    present: Tensor | None = None) -> Tensor | None:
        """A fixed (n, M) bool mask, row i for training sample i, used every epoch instead of
        :meth:`train_mask`; None (the default) draws a fresh mask per batch."""
        return None

    def eval_conditions(self, modalities: tuple[str, ...], n: int,
                        present: Tensor | None = None) -> EvalPlan:
        full = torch.ones(n, len(modalities), dtype=torch.bool)
        return EvalPlan([EvalCondition("full", full)], ["full"])

    def describe(self) -> dict:
        """Parameters that define the protocol (compared across runs by ``mmtk compare``)."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}


TrainingMasks = Callable[[Tensor, Tensor, torch.Generator], Tensor]


def training_masks(protocol: MissingProtocol, n: int, modalities: tuple[str, ...],
                   present: Tensor | None = None) -> TrainingMasks:
    """``masks(rows, present_rows, generator) -> (B, M)`` for a training batch of rows: the
    protocol's fixed table when it has one, else a draw of :meth:`train_mask`; either way
    ANDed with ``present_rows`` (what those samples really have)."""
    table = call_with_present(protocol.train_table, present, n, modalities)
    if table is None:
        return lambda rows, present, generator: (
            _checked(protocol, protocol.train_mask(present, generator, modalities), present) & present.bool())
    if tuple(table.shape) != (n, len(modalities)) or table.dtype != torch.bool:
        raise MmtkError(f"missing protocol '{type(protocol).__name__}': train_table gave "
                        f"{tuple(table.shape)} {table.dtype}; expected ({n}, {len(modalities)}) bool")
    return lambda rows, present, generator: table[rows.cpu()] & present.bool()


def _checked(protocol: MissingProtocol, mask: Tensor, present: Tensor) -> Tensor:
    if tuple(mask.shape) != tuple(present.shape) or mask.dtype != torch.bool:
        raise MmtkError(f"missing protocol '{type(protocol).__name__}': train_mask gave "
                        f"{tuple(mask.shape)} {mask.dtype}; expected {tuple(present.shape)} bool")
    return mask


def call_with_present(method: Callable, present: Tensor | None, *args: Any) -> Any:
    """``method(*args, present=present)`` when the protocol's method declares ``present``
    (protocols written before it existed keep working)."""
    if present is not None and "present" in inspect.signature(method).parameters:
        return method(*args, present=present.cpu().bool())
    return method(*args)


def exact_rate_mask(present: Tensor, rate: float, generator: torch.Generator) -> Tensor:
    """An (n, M) keep-mask under which exactly round(rate * n * M) cells are missing, the
    data's own missing cells included, and every sample with any modality keeps at least one
    (CPM-Nets' missing rate). When the data already misses more cells than that, nothing more
    is dropped; when the one-kept rule forbids reaching it, as many as allowed are dropped."""
    present = present.bool()
    n, m = present.shape
    keep = present.clone()
    need = int(round(rate * n * m)) - int((~present).sum())
    if need <= 0:
        return keep
    # one guaranteed modality per sample, drawn among those it has
    weights = present.float() + 1e-12
    guaranteed = torch.multinomial(weights, 1, generator=generator).flatten()
    droppable = present.clone()
    droppable[torch.arange(n), guaranteed] = False
    cells = droppable.flatten().nonzero().flatten()
    chosen = cells[torch.randperm(len(cells), generator=generator)[:need]]
    keep.view(-1)[chosen] = False
    return keep
