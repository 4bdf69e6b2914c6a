"""Fixed, seeded sampling noise, so that a diffusion model's evaluation is repeatable.

The noise of the sample in row ``r`` of a batch, for modality index ``m``, is drawn on the
CPU by its own generator seeded from ``(seed, m, r)``: it depends neither on the batch size,
nor on the other rows, nor on the device, and is the same in every evaluation pass. Rows are
positions in the batch (a slot does not see sample ids): mmtk evaluates a split in a fixed
order, so the same sample gets the same noise in every run with the same eval.batch_size.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def row_noise(seed: int, modality: int, row: int, shape: tuple[int, ...]) -> Tensor:
    """Standard normal noise of one row, from a generator seeded by (seed, modality, row)."""
    state = np.random.SeedSequence([seed, modality, row]).generate_state(1, np.uint64)[0]
    generator = torch.Generator().manual_seed(int(state))
    return torch.randn(shape, generator=generator)


class FixedNoise:
    """Per-row noise for ``seed``, drawn once per (modality, shape) and kept on the CPU."""

    def __init__(self, seed: int):
        self.seed = seed
        self._drawn: dict[tuple[int, tuple[int, ...]], Tensor] = {}

    def rows(self, modality: int, rows: Tensor, shape: tuple[int, ...], like: Tensor) -> Tensor:
        """(len(rows), *shape) noise of the given batch rows, on ``like``'s device and dtype."""
        key = (modality, tuple(shape))
        have = self._drawn.get(key, torch.empty(0, *shape))
        need = int(rows.max()) + 1 if len(rows) else 0
        if need > len(have):
            more = [row_noise(self.seed, modality, r, shape) for r in range(len(have), need)]
            have = torch.cat([have, torch.stack(more)])
            self._drawn[key] = have
        return have[rows.cpu()].to(device=like.device, dtype=like.dtype)
