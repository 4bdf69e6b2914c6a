"""In-memory datasets held as tensors: splits, validation carving, normalisation, batching.

Batches are slices of pre-built tensors (no per-sample collation). Normalisation statistics
are always fitted on the training split only.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterator

import torch
from torch import Tensor

from .batch import ModalityBatch
from .errors import DataError


@dataclass
class TensorData:
    """One split: per-modality tensors with a shared first dimension N."""

    inputs: dict[str, Tensor]
    labels: Tensor
    ids: list[str]
    present: Tensor | None = None              # (N, M) bool; None = all present
    lengths: dict[str, Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.labels)
        for m, x in self.inputs.items():
            if x.shape[0] != n:
                raise DataError(f"modality '{m}' has {x.shape[0]} samples but there are {n} labels")
        if len(self.ids) != n:
            raise DataError(f"{len(self.ids)} ids for {n} samples")
        if self.present is None:
            self.present = torch.ones(n, len(self.inputs), dtype=torch.bool)

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(sorted(self.inputs))

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: Tensor) -> "TensorData":
        idx = index.tolist()
        return TensorData({m: x[index] for m, x in self.inputs.items()}, self.labels[index],
                          [self.ids[i] for i in idx], self.present[index],
                          {m: v[index] for m, v in self.lengths.items()})

    def to(self, device: torch.device | str) -> "TensorData":
        return replace(self, inputs={m: x.to(device) for m, x in self.inputs.items()},
                       labels=self.labels.to(device), present=self.present.to(device),
                       lengths={m: v.to(device) for m, v in self.lengths.items()})

    def nbytes(self) -> int:
        return sum(x.numel() * x.element_size() for x in self.inputs.values())

    def batch(self, index: Tensor) -> ModalityBatch:
        ids = [self.ids[i] for i in index.tolist()] if index.numel() < 4096 else None
        return ModalityBatch(
            inputs={m: self.inputs[m][index] for m in self.modalities},
            present=self.present[index], modalities=self.modalities,
            labels=self.labels[index], ids=ids,
            lengths={m: v[index] for m, v in self.lengths.items()})

    def batches(self, batch_size: int, shuffle: bool = False,
                generator: torch.Generator | None = None,
                drop_last: bool = False) -> Iterator[ModalityBatch]:
        n = len(self)
        device = self.labels.device
        if shuffle:
            order = torch.randperm(n, generator=generator).to(device)
        else:
            order = torch.arange(n, device=device)
        stop = n - (n % batch_size) if drop_last and n > batch_size else n
        for start in range(0, stop, batch_size):
            yield self.batch(order[start:start + batch_size])


@dataclass
class DataSplits:
    """What a dataset plugin's ``load(fold)`` returns."""

    train: TensorData
    test: TensorData
    val: TensorData | None = None
    num_classes: int = 0
    class_names: list[str] | None = None
    info: dict = field(default_factory=dict)   # free-form provenance (paths, fold, skipped)

    @property
    def modalities(self) -> tuple[str, ...]:
        return self.train.modalities

    @property
    def in_dims(self) -> dict[str, int]:
        return {m: int(x.shape[-1]) for m, x in self.train.inputs.items()}

    def items(self) -> list[tuple[str, TensorData]]:
        out = [("train", self.train)]
        if self.val is not None:
            out.append(("val", self.val))
        return out + [("test", self.test)]


def stratified_split(labels: Tensor, fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """Indices (keep, carved) with ``fraction`` of every class carved out, seeded."""
    g = torch.Generator().manual_seed(seed)
    keep, carved = [], []
    for c in torch.unique(labels):
        idx = torch.nonzero(labels == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        n_out = int(round(len(idx) * fraction))
        if len(idx) > 1:
            n_out = min(max(n_out, 1), len(idx) - 1)
        else:
            n_out = 0
        carved.append(idx[:n_out])
        keep.append(idx[n_out:])
    return torch.sort(torch.cat(keep)).values, torch.sort(torch.cat(carved)).values


def ensure_validation(splits: DataSplits, fraction: float, seed: int) -> DataSplits:
    """Carve a stratified, seeded validation split from train when the dataset has none."""
    if splits.val is not None:
        return splits
    keep, carved = stratified_split(splits.train.labels, fraction, seed)
    info = dict(splits.info, validation=f"carved {fraction:g} of train, stratified, seed {seed}")
    return replace(splits, train=splits.train.subset(keep), val=splits.train.subset(carved), info=info)


@dataclass
class Standardizer:
    """Per-feature mean/std fitted on present training samples (and valid frames) only."""

    mean: dict[str, Tensor]
    std: dict[str, Tensor]

    @classmethod
    def fit(cls, train: TensorData, modalities: list[str] | None = None) -> "Standardizer":
        """Fit on ``modalities`` (default: all); integer inputs such as token ids are never scaled."""
        mean, std = {}, {}
        for i, m in enumerate(train.modalities):
            if (modalities is not None and m not in modalities) or not train.inputs[m].is_floating_point():
                continue
            x = train.inputs[m].double()
            rows = train.present[:, i]
            if x.dim() == 3:
                t = torch.arange(x.shape[1])
                lengths = train.lengths.get(m, torch.full((x.shape[0],), x.shape[1]))
                valid = (t[None, :] < lengths[:, None]) & rows[:, None]
                flat = x[valid]
            else:
                flat = x[rows]
            if flat.shape[0] == 0:
                raise DataError(f"modality '{m}' has no present training sample to fit "
                                "normalisation statistics on")
            mean[m] = flat.mean(0).float()
            std[m] = flat.std(0, unbiased=False).clamp_min(1e-6).float()
        return cls(mean, std)

    def apply(self, data: TensorData) -> TensorData:
        inputs = {}
        for i, m in enumerate(data.modalities):
            if m not in self.mean:
                inputs[m] = data.inputs[m]
                continue
            x = (data.inputs[m] - self.mean[m]) / self.std[m]
            keep = data.present[:, i].view(-1, *([1] * (x.dim() - 1)))
            if x.dim() == 3 and m in data.lengths:  # keep padding at exactly zero
                t = torch.arange(x.shape[1])
                keep = keep & (t[None, :, None] < data.lengths[m][:, None, None])
            inputs[m] = torch.where(keep, x, torch.zeros(()))
        return replace(data, inputs=inputs)


def check_finite(data: TensorData, split: str, source: str) -> None:
    for m, x in data.inputs.items():
        if not x.is_floating_point():
            continue
        bad = ~torch.isfinite(x)
        if bad.any():
            row = int(torch.nonzero(bad.reshape(x.shape[0], -1).any(1))[0])
            raise DataError(f"{source}: modality '{m}' of {split} sample '{data.ids[row]}' "
                            "contains NaN or infinite values")


class Dataset:
    """Base class of ``dataset`` components.

    The constructor must be cheap (validation builds datasets to learn their modalities);
    :meth:`load` does the reading. ``folds()`` lists fold ids (``[None]`` when the data has
    one fixed split); ``load(fold)`` returns that fold's splits.
    """

    @property
    def modalities(self) -> tuple[str, ...]:  # pragma: no cover - abstract
        raise NotImplementedError

    def folds(self) -> list[int | None]:
        return [None]

    def load(self, fold: int | None = None) -> DataSplits:  # pragma: no cover - abstract
        raise NotImplementedError
