"""In-memory datasets held as tensors: splits, validation carving, normalisation, batching.

Batches are slices of pre-built tensors (no per-sample collation). Normalisation statistics
are always fitted on the training split only (on every present training row, labelled or not).

Unlabelled and incomplete samples: a sample without a class label has label ``-1``
(:data:`UNLABELED`; any negative label reads as unlabelled), and a sample without a regression
target has a NaN score (and label -1: an unlabelled sample has neither). The task loss and the
supervised slot losses ignore such samples, label-free losses (reconstruction, alignment, ...)
use them, validation is carved from labelled training samples only, and evaluation scores
labelled samples only (it counts the others). Any split may also be incomplete: ``present``
says which modalities each sample really has, in training too.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import ClassVar

import torch
from torch import Tensor

from .batch import ModalityBatch
from .dataset import Dataset  # noqa: F401 - re-exported: the base class lives without torch
from .errors import DataError
from .lazy import LazyFeatures, streaming_mean_std
from .ops import frame_mask

UNLABELED = -1   # the label of a sample without one (any negative label reads as unlabelled)


@dataclass
class TensorData:
    """One split: per-modality tensors with a shared first dimension N.

    ``labels`` (N,) are class indices, ``-1`` (:data:`UNLABELED`) for a sample without a
    label (``labeled`` is the (N,) mask of those with one). ``scores`` (N,) are float
    regression targets when the data has them, NaN for a sample without one; such a sample
    must also have label -1. ``present`` (N, M) says which modalities a sample really has
    (columns in sorted modality order), for training samples as for test ones.
    """

    inputs: dict[str, Tensor]
    labels: Tensor
    ids: list[str]
    present: Tensor | None = None              # (N, M) bool; None = all present
    lengths: dict[str, Tensor] = field(default_factory=dict)
    scores: Tensor | None = None               # (N,) float regression targets (e.g. sentiment)
    UNLABELED: ClassVar[int] = UNLABELED       # the label of a sample without one

    def __post_init__(self) -> None:
        n = len(self.labels)
        if self.scores is not None:
            if self.scores.dim() != 1 or len(self.scores) != n:
                raise DataError(f"regression scores have shape {tuple(self.scores.shape)}; one "
                                f"score per sample ({n},) is expected")
            self.scores = self.scores.float()
            if self.scores.device.type == "cpu" and len(self.scores):  # no sync on a GPU copy
                self._check_unscored_unlabelled()
        for m, x in self.inputs.items():
            if x.shape[0] != n:
                raise DataError(f"modality '{m}' has {x.shape[0]} samples but there are {n} labels")
        if len(self.ids) != n:
            raise DataError(f"{len(self.ids)} ids for {n} samples")
        if self.present is None:
            self.present = torch.ones(n, len(self.inputs), dtype=torch.bool)

    def _check_unscored_unlabelled(self) -> None:
        assert self.scores is not None
        bad = torch.isnan(self.scores) & (self.labels >= 0)
        if bad.any():
            sample = self.ids[int(bad.nonzero()[0])]
            raise DataError(f"sample '{sample}' has a class label but a NaN regression score "
                            f"({int(bad.sum())} such sample(s)); a NaN score marks an unlabelled "
                            "sample, whose label must be -1 as well: drop both or give both.")

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(sorted(self.inputs))

    @property
    def labeled(self) -> Tensor:
        """(N,) bool: which samples have a class label (label >= 0)."""
        return self.labels >= 0

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: Tensor) -> "TensorData":
        idx = index.tolist()
        return TensorData({m: x.subset(index) if isinstance(x, LazyFeatures) else x[index]
                           for m, x in self.inputs.items()}, self.labels[index],
                          [self.ids[i] for i in idx], self.present[index],
                          {m: v[index] for m, v in self.lengths.items()},
                          None if self.scores is None else self.scores[index])

    def to(self, device: torch.device | str) -> "TensorData":
        return replace(self, inputs={m: x.to(device) for m, x in self.inputs.items()},
                       labels=self.labels.to(device), present=self.present.to(device),
                       lengths={m: v.to(device) for m, v in self.lengths.items()},
                       scores=None if self.scores is None else self.scores.to(device))

    def fingerprint(self) -> str:
        """sha256 of the samples: ids, labels, scores, masks, lengths and features (for features
        left on disk, their file and rows). Two trials with the same fingerprint were scored on
        the same test set, which decides the test of ``mmtk compare``."""
        digest = hashlib.sha256()
        digest.update("\0".join(self.ids).encode())
        parts = {"labels": self.labels, "present": self.present, "scores": self.scores,
                 **{f"length:{m}": v for m, v in sorted(self.lengths.items())}}
        for m in sorted(self.inputs):
            x = self.inputs[m]
            parts[f"input:{m}"] = x if isinstance(x, Tensor) else None
            if isinstance(x, LazyFeatures):
                digest.update(f"{m}:{x.name}:{x.source.shape}".encode() + x.rows.tobytes())
        for name, t in parts.items():
            if t is not None:
                raw = t.detach().cpu().contiguous().flatten().view(torch.uint8)   # any dtype, bf16 too
                digest.update(name.encode() + raw.numpy().tobytes())
        return digest.hexdigest()

    def nbytes(self) -> int:
        """Bytes held in memory (features left on disk count zero)."""
        return sum(x.numel() * x.element_size() for x in self.inputs.values() if isinstance(x, Tensor))

    def batch(self, index: Tensor, trim: bool = False) -> ModalityBatch:
        """Rows ``index`` as a batch. ``trim`` cuts frame padding beyond the batch's longest
        sequence (useful with length bucketing). No ids: reading them would sync a GPU."""
        inputs, lengths = {}, {m: v[index] for m, v in self.lengths.items()}
        for m in self.modalities:
            x = self.inputs[m][index]
            if m in lengths and x.dim() == 3:
                if trim:
                    x = x[:, : max(int(lengths[m].max()), 1)]
                if isinstance(self.inputs[m], LazyFeatures) and self.inputs[m].mean is not None:
                    x = x * frame_mask(lengths[m].cpu(), x.shape[1])[..., None]  # padding stays 0
            inputs[m] = x
        return ModalityBatch(inputs=inputs, present=self.present[index], modalities=self.modalities,
                             labels=self.labels[index], lengths=lengths,
                             scores=None if self.scores is None else self.scores[index])


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
    """Indices (keep, carved) with ``fraction`` of every class carved out, seeded.

    Only labelled samples are carved; unlabelled ones (label < 0) are all kept."""
    g = torch.Generator().manual_seed(seed)
    keep, carved = [torch.nonzero(labels < 0).flatten()], []
    for c in torch.unique(labels[labels >= 0]):
        idx = torch.nonzero(labels == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        n_out = int(round(len(idx) * fraction))
        if len(idx) > 1:
            n_out = min(max(n_out, 1), len(idx) - 1)
        else:
            n_out = 0
        carved.append(idx[:n_out])
        keep.append(idx[n_out:])
    empty = torch.empty(0, dtype=torch.long)
    return torch.sort(torch.cat(keep)).values, torch.sort(torch.cat(carved or [empty])).values


def ensure_validation(splits: DataSplits, fraction: float, seed: int) -> DataSplits:
    """Carve a stratified, seeded validation split from train when the dataset has none;
    it comes from the labelled training samples only (unlabelled ones all stay in train)."""
    if splits.val is not None:
        return splits
    keep, carved = stratified_split(splits.train.labels, fraction, seed)
    how = f"carved {fraction:g} of train, stratified, seed {seed}"
    unlabelled = int((~splits.train.labeled).sum())
    if unlabelled:
        how += f", from the labelled samples only ({unlabelled} unlabelled stay in train)"
    info = dict(splits.info, validation=how)
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
            if isinstance(train.inputs[m], LazyFeatures):
                mean[m], std[m] = _lazy_stats(train, m, i)
                continue
            flat = _valid_rows(train, m, i, torch.arange(len(train)), train.inputs[m].double())
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
            features = data.inputs[m]
            if isinstance(features, LazyFeatures):  # normalised per batch when read
                inputs[m] = features.normalized(self.mean[m], self.std[m])
                continue
            x = (data.inputs[m] - self.mean[m]) / self.std[m]
            keep = data.present[:, i].view(-1, *([1] * (x.dim() - 1)))
            if x.dim() == 3 and m in data.lengths:  # keep padding at exactly zero
                keep = keep & frame_mask(data.lengths[m], x.shape[1])[..., None]
            inputs[m] = torch.where(keep, x, torch.zeros(()))
        return replace(data, inputs=inputs)


def _valid_rows(data: TensorData, m: str, i: int, pos: Tensor, x: Tensor) -> Tensor:
    """Rows of x (chunk at positions ``pos``) that are present, flattened over real frames."""
    rows = data.present[pos, i]
    if x.dim() == 3:
        lengths = data.lengths[m][pos] if m in data.lengths else torch.full((len(pos),), x.shape[1])
        return x[frame_mask(lengths, x.shape[1]) & rows[:, None]]
    return x[rows]


def _lazy_stats(train: TensorData, m: str, i: int) -> tuple[Tensor, Tensor]:
    lazy = train.inputs[m]
    assert isinstance(lazy, LazyFeatures)
    chunks = (_valid_rows(train, m, i, torch.from_numpy(pos), x) for pos, x in lazy.chunks())
    mean, std, count = streaming_mean_std(chunks)
    if not count:
        raise DataError(f"modality '{m}' has no present training sample to fit "
                        "normalisation statistics on")
    return mean, std


def check_finite(data: TensorData, split: str, source: str) -> None:
    for m, x in data.inputs.items():
        if isinstance(x, LazyFeatures):
            for pos, chunk in x.chunks():
                bad = ~torch.isfinite(chunk.reshape(len(pos), -1)).all(1)
                if bad.any():
                    raise DataError(f"{source}: modality '{m}' of {split} sample "
                                    f"'{data.ids[int(pos[int(bad.nonzero()[0])])]}' contains NaN or "
                                    f"infinite values (file {x.name or 'memory map'})")
            continue
        if not x.is_floating_point():
            continue
        bad = ~torch.isfinite(x)
        if bad.any():
            row = int(torch.nonzero(bad.reshape(x.shape[0], -1).any(1))[0])
            raise DataError(f"{source}: modality '{m}' of {split} sample '{data.ids[row]}' "
                            "contains NaN or infinite values")
