"""A check for trained models: what an absent modality's features hold never reaches a
prediction (the core zeroes them, ``ModalityBatch.masked``; a slot that read ``inputs``
around that would leak). Used by the built-in plugins' recipe tests; yours can call it too."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

CONDITIONS_OF_THREE = ([1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1])


def assert_absent_values_do_not_leak(model: Any, batch: Any, seed: int = 0, where: str = "") -> None:
    """Under every proper subset of three modalities, logits with the absent modalities' true
    features equal logits with random ones (scaled x50) in their place, and evaluation is
    repeatable; unmasked, the random values must change the logits (the check has teeth)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    n, mods = batch.size, batch.modalities
    other = batch
    for keep in CONDITIONS_OF_THREE:
        present = torch.tensor(keep, dtype=torch.bool).expand(n, -1)
        other = replace(batch, inputs={
            m: batch.inputs[m] if keep[i] else 50 * torch.randn(batch.inputs[m].shape, generator=g)
            for i, m in enumerate(mods)})
        with torch.no_grad():
            a = model(batch.masked(present)).logits
            b = model(other.masked(present)).logits
            again = model(batch.masked(present)).logits
        assert torch.equal(a, b), f"{where}condition {keep}: hidden values of an absent modality leak"
        assert torch.equal(a, again), f"{where}condition {keep}: evaluation is not repeatable"
    with torch.no_grad():
        assert not torch.allclose(model(other).logits, model(batch).logits), \
            f"{where}the random values change nothing even unmasked: the check would have no teeth"
