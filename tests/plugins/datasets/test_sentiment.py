"""MMSA's sentiment metrics on regression predictions, against hand computation; each is
built as a recipe builds it, from the registry (registered by import path)."""
from __future__ import annotations

import pytest
import torch

from mmtk.plugins import load_plugins

REG = load_plugins().registry

PRED = torch.tensor([-0.5, 0.0, 0.2, 1.6, -2.4, 0.0])
TRUE = torch.tensor([-1.0, 0.0, -0.3, 2.0, -2.6, 0.4])


def metric(name: str):
    return REG.get("metric", name).obj()


@pytest.mark.parametrize("name,expected", [
    # >= 0 vs < 0: pred (0,1,1,1,0,1), true (0,1,0,1,0,1): one miss
    ("acc2", 5 / 6),
    # per class F1: negative P=1 R=2/3 -> 0.8; non-negative P=3/4 R=1 -> 6/7; support 3 / 3
    ("f1_2", (0.8 + 6 / 7) / 2),
    # true zero (sample 1) left out; pred > 0: (0,1,1,0,0) vs true > 0: (0,0,1,0,1)
    ("acc2_nonzero", 3 / 5),
    # round(clip(., -2, 2)): pred (0,0,0,2,-2,0), true (-1,0,0,2,-2,0) (round half to even)
    ("acc5", 5 / 6),
    # round(clip(., -3, 3)): pred (0,0,0,2,-2,0), true (-1,0,0,2,-3,0)
    ("acc7", 4 / 6),
    # clip to [-1, 1], intervals (-1.01,-0.1], (-0.1,0.1], (0.1,1.01]: pred (0,1,2,2,0,1), true (0,1,0,2,0,2)
    ("sims_acc3", 4 / 6),
    # (-1.01, 0] vs (0, 1.01]: pred (0,0,1,1,0,0), true (0,0,0,1,0,1)
    ("sims_acc2", 4 / 6),
])
def test_against_hand_computation(name, expected):
    assert metric(name)(PRED, TRUE) == pytest.approx(expected)


def test_nonzero_f1_counts_a_zero_prediction_as_negative():
    # MMSA: preds > 0 is positive, so a prediction of exactly 0 is negative
    f1 = metric("f1_2_nonzero")
    assert f1(torch.tensor([0.0, 1.0]), torch.tensor([-1.0, 2.0])) == pytest.approx(1.0)
    assert metric("acc2")(torch.tensor([0.0]), torch.tensor([-1.0])) == 0.0  # Has0: 0 is non-negative
