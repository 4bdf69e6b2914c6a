"""A trial's data: the splits of one fold, normalised on train, and the batches of an epoch."""
from __future__ import annotations

import torch
from torch import Tensor

from .builder import Builder
from .data import DataSplits, Standardizer, TensorData, check_finite, ensure_validation
from .recipe import Data


def load_data(builder: Builder, data: Data, fold: int | None, seed: int) -> DataSplits:
    """The dataset's splits for ``fold``, with a validation split carved from train when the
    dataset has none, and standardisation statistics fitted on train only."""
    dataset = builder.dataset(data.dataset, seed)
    splits = dataset.load(fold)
    splits = ensure_validation(splits, data.val_fraction, seed)
    if data.normalize:
        scaler = Standardizer.fit(splits.train, data.normalize if isinstance(data.normalize, list) else None)
        splits.train, splits.val, splits.test = (scaler.apply(splits.train),
                                                 scaler.apply(splits.val), scaler.apply(splits.test))
    for split, part in splits.items():
        check_finite(part, split, f"dataset '{data.dataset.type}'")
    return splits


def batch_indices(order: Tensor, batch_size: int, data: TensorData, bucket: bool,
                  generator: torch.Generator) -> list[Tensor]:
    """Global batches of ``order``. With ``bucket``, windows of 50 batches are sorted by
    sequence length (so batches hold similar lengths and little padding), then the batch
    order is shuffled; every sample still appears exactly once per epoch."""
    if not bucket:
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    longest = torch.stack([v.cpu() for v in data.lengths.values()], 1).amax(1)
    window = batch_size * 50
    batches = []
    for w in range(0, len(order), window):
        chunk = order[w:w + window]
        chunk = chunk[torch.argsort(longest[chunk], stable=True)]
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    perm = torch.randperm(len(batches), generator=generator)
    return [batches[i] for i in perm.tolist()]
