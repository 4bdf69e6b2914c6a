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


PADDING_HINT_SHARE = 0.3   # padding share of a random batch above which bucketing is suggested


def padding_hint(data: TensorData, bucket: bool) -> str | None:
    """A one-line suggestion when unbucketed batches would be mostly padding: the share of
    padded frames each epoch runs (every batch padded to the split's longest sequence), per
    sequence modality, if the largest share reaches PADDING_HINT_SHARE."""
    if bucket or not data.lengths:
        return None
    shares = {}
    for m, lengths in data.lengths.items():
        x = data.inputs[m]
        if x.dim() == 3 and len(lengths):
            shares[m] = 1.0 - float(lengths.float().mean()) / x.shape[1]
    if not shares or max(shares.values()) < PADDING_HINT_SHARE:
        return None
    m = max(shares, key=shares.get)
    lengths = data.lengths[m]
    return (f"'{m}' sequences are {int(lengths.min())}-{int(lengths.max())} frames, so "
            f"{100 * shares[m]:.0f} % of the frames each batch runs are padding; "
            "train.bucket_by_length: true groups similar lengths and cuts it (faster epochs)")
