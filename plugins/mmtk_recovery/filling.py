"""The loop both recovery slots share: fill every absent modality's representation from a
per-modality recovery function, and the reconstruction error where the data really has the
modality (the ground truth of a cell the data lacks does not exist)."""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

import torch.nn.functional as F
from torch import Tensor

from mmtk import State

# recover(modality, rows) -> (len(rows), dim): the recovered representation of those rows
Recover = Callable[[str, Tensor], Tensor]


def fill_missing(state: State, modalities: tuple[str, ...], recover: Recover,
                 truth: dict[str, Tensor] | None) -> tuple[State, list[Tensor]]:
    """(the state with absent modalities filled and marked represented, one MSE term per
    modality that had rows to compare). Samples shown nothing are left alone."""
    present = state.present
    reps, represented = dict(state.reps), state.represented.clone()
    rec_terms = []
    for i, m in enumerate(modalities):
        missing = ~present[:, i] & present.any(1)
        if not bool(missing.any()):
            continue
        rows = missing.nonzero().squeeze(1)
        recovered = recover(m, rows)
        reps[m] = state.reps[m].index_put((rows,), recovered.to(state.reps[m].dtype))
        represented[:, i] |= missing
        if truth is not None and state.targets is not None:
            real = state.targets.available[rows, i].to(rows.device)
            if bool(real.any()):
                rec_terms.append(F.mse_loss(recovered[real], truth[m][rows[real]]))
    return replace(state, reps=reps, represented=represented), rec_terms
