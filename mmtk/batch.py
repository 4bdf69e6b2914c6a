"""The data contract: a batch of samples whose modalities may be absent.

``present`` (B, M) is the only truth about which modalities a sample has; columns follow
the sorted modality order. Absent values are physically zeroed by :meth:`masked` before a
model sees them. ``labels`` are class indices, -1 for an unlabelled sample (see
:mod:`mmtk.data`); ``scores`` NaN for a sample without a regression target.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
from torch import Tensor


def condition_code(modalities: tuple[str, ...], mask: tuple[bool, ...] | list[bool]) -> str:
    """A short name for a set of present modalities: initials when unique (``at``), else names."""
    names = [m for m, keep in zip(modalities, mask) if keep]
    initials = [m[0] for m in modalities]
    if len(set(initials)) == len(initials):
        return "".join(m[0] for m in names) or "none"
    return "+".join(names) or "none"


def parse_condition(code: str, modalities: tuple[str, ...]) -> tuple[bool, ...]:
    """Inverse of :func:`condition_code`; raises ValueError naming what is wrong."""
    initials = [m[0] for m in modalities]
    if "+" in code or len(set(initials)) != len(initials) or code in modalities:
        parts = code.split("+")
        unknown = [p for p in parts if p not in modalities]
        if unknown:
            raise ValueError(f"unknown modality {unknown[0]!r} in condition {code!r}; "
                             f"modalities are {', '.join(modalities)}")
        return tuple(m in parts for m in modalities)
    unknown = [c for c in code if c not in initials]
    if unknown or not code:
        raise ValueError(f"condition {code!r} is not made of the initials "
                         f"{''.join(initials)} of {', '.join(modalities)}")
    return tuple(m[0] in code for m in modalities)


@dataclass
class ModalityBatch:
    """A batch whose modalities may be absent; ``present`` (B, M) is the only truth about which.

    ``labels`` (B,) hold -1 for an unlabelled sample (``labeled`` says which have one)."""

    inputs: dict[str, Tensor]          # (B, D) or (B, T, D) per modality
    present: Tensor                    # (B, M) bool, columns in ``modalities`` order
    modalities: tuple[str, ...]
    labels: Tensor | None = None
    ids: list[str] | None = None
    lengths: dict[str, Tensor] = field(default_factory=dict)  # (B,) valid frames for (B,T,D)
    condition: str | None = None
    scores: Tensor | None = None       # (B,) float regression targets, when the data has them

    @property
    def size(self) -> int:
        return int(self.present.shape[0])

    def column(self, modality: str) -> Tensor:
        return self.present[:, self.modalities.index(modality)]

    @property
    def labeled(self) -> Tensor | None:
        """(B,) bool: which samples have a class label (label >= 0); None without labels."""
        return None if self.labels is None else self.labels >= 0

    def masked(self, present: Tensor) -> "ModalityBatch":
        """A copy where only ``present & self.present`` survive; absent values become zeros."""
        keep = present.to(self.present.device) & self.present
        inputs = {}
        for i, m in enumerate(self.modalities):
            x = self.inputs[m]
            k = keep[:, i].view(-1, *([1] * (x.dim() - 1)))
            inputs[m] = torch.where(k, x, torch.zeros((), dtype=x.dtype, device=x.device))
        return replace(self, inputs=inputs, present=keep)

    def to(self, device: torch.device | str) -> "ModalityBatch":
        return replace(
            self,
            inputs={m: x.to(device, non_blocking=True) for m, x in self.inputs.items()},
            present=self.present.to(device, non_blocking=True),
            labels=None if self.labels is None else self.labels.to(device, non_blocking=True),
            scores=None if self.scores is None else self.scores.to(device, non_blocking=True),
            lengths={m: v.to(device, non_blocking=True) for m, v in self.lengths.items()},
        )
