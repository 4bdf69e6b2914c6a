"""Features that stay on disk: rows of a memory-mapped .npy or an h5 dataset, read per batch.

A :class:`LazyFeatures` stands in for an (N, D) or (N, T, D) tensor inside
:class:`mmtk.data.TensorData`. Indexing it with a batch's indices reads just those rows (one
sorted, batched read) and returns a float32 tensor (int64 for token ids, ``integer=True``);
normalisation is applied on the fly.
"""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import torch
from torch import Tensor


class LazyFeatures:
    """Rows of an on-disk (N, D) or (N, T, D) array, read per batch (see the module docstring)."""

    def __init__(self, source: Any, rows: np.ndarray | None = None,
                 mean: Tensor | None = None, std: Tensor | None = None, name: str = "",
                 integer: bool = False):
        self.source = source                      # np.memmap / h5py.Dataset / any row-indexable array
        self.rows = np.arange(source.shape[0]) if rows is None else np.asarray(rows)
        self.mean, self.std, self.name = mean, std, name
        self.integer = integer                    # token ids: int64, never normalised

    # tensor-like surface used by TensorData ---------------------------------------------
    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.rows), *self.source.shape[1:]))

    def dim(self) -> int:
        return len(self.shape)

    def is_floating_point(self) -> bool:
        return not self.integer

    def to(self, device: Any) -> "LazyFeatures":
        return self  # stays on disk; batches are moved by the loop

    def subset(self, index: Tensor) -> "LazyFeatures":
        return LazyFeatures(self.source, self.rows[index.cpu().numpy()], self.mean, self.std,
                            self.name, self.integer)

    def normalized(self, mean: Tensor, std: Tensor) -> "LazyFeatures":
        return LazyFeatures(self.source, self.rows, mean, std, self.name, self.integer)

    def read(self, positions: np.ndarray) -> Tensor:
        """Raw rows at ``positions`` (positions into this view), one sorted batched read."""
        wanted = self.rows[positions]
        order = np.argsort(wanted, kind="stable")
        sorted_rows = wanted[order]
        unique, inverse = np.unique(sorted_rows, return_inverse=True)
        block = np.asarray(self.source[unique.tolist() if not isinstance(self.source, np.ndarray) else unique])
        out = np.empty((len(wanted), *block.shape[1:]), dtype=np.int64 if self.integer else np.float32)
        out[order] = block[inverse]
        return torch.from_numpy(out)

    def __getitem__(self, index: Tensor) -> Tensor:
        x = self.read(index.cpu().numpy())
        if self.mean is not None:
            x = (x - self.mean) / self.std
        return x

    def chunks(self, size: int = 1024) -> Iterator[tuple[np.ndarray, Tensor]]:
        """(positions, raw rows) in order, ``size`` rows at a time (for statistics and checks)."""
        for start in range(0, len(self.rows), size):
            pos = np.arange(start, min(start + size, len(self.rows)))
            yield pos, self.read(pos)


def streaming_mean_std(chunks: Iterator[Tensor]) -> tuple[Tensor, Tensor, int]:
    """Per-feature mean and std over rows of (n, D) chunks, in float64, one pass."""
    count, total, total_sq = 0, None, None
    for flat in chunks:
        flat = flat.double()
        if total is None:
            total, total_sq = flat.sum(0), (flat ** 2).sum(0)
        else:
            total += flat.sum(0)
            total_sq += (flat ** 2).sum(0)
        count += flat.shape[0]
    if not count:
        return torch.empty(0), torch.empty(0), 0
    mean = total / count
    var = (total_sq / count - mean ** 2).clamp_min(0)
    return mean.float(), var.sqrt().clamp_min(1e-6).float(), count


def open_npy(path: Any) -> np.ndarray:
    """A read-only memory map of a .npy file (nothing is read until rows are indexed).

    Never unpickled: a .npy of Python objects is refused with a ``DataError`` naming it."""
    from .safeload import load_npy
    return load_npy(path, "memory-mapped features", mmap=True)

