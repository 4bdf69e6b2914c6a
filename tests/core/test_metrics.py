"""Metrics checked against values computed by hand."""
import pytest
import torch

from mmtk.metrics import accuracy, confusion_matrix, macro_f1, macro_recall, mean_std, summarize_trials, weighted_f1

Y_TRUE = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2, 2, 2])
Y_PRED = torch.tensor([0, 0, 1, 2, 1, 0, 2, 2, 2, 1])


def test_against_hand_computation():
    cm = confusion_matrix(Y_TRUE, Y_PRED, 3)
    assert cm.tolist() == [[2, 1, 1], [1, 1, 0], [0, 1, 3]]
    assert accuracy(cm) == pytest.approx(6 / 10)
    recalls = [2 / 4, 1 / 2, 3 / 4]
    assert macro_recall(cm) == pytest.approx(sum(recalls) / 3)
    precisions = [2 / 3, 1 / 3, 3 / 4]
    f1 = [2 * p * r / (p + r) for p, r in zip(precisions, recalls)]
    assert macro_f1(cm) == pytest.approx(sum(f1) / 3)
    assert weighted_f1(cm) == pytest.approx((4 * f1[0] + 2 * f1[1] + 4 * f1[2]) / 10)


def test_absent_class_does_not_count_in_uar():
    cm = confusion_matrix(torch.tensor([0, 0, 1]), torch.tensor([0, 1, 1]), 4)
    assert macro_recall(cm) == pytest.approx((0.5 + 1.0) / 2)


def test_mean_std_and_summary():
    s = mean_std([0.5, 0.7])
    assert s["mean"] == pytest.approx(0.6) and s["std"] == pytest.approx(0.1414213, rel=1e-5)
    assert mean_std([0.3])["std"] == 0.0
    trials = [{"test": {"a": {"war": 0.5}}}, {"test": {"a": {"war": 0.7}}}]
    assert summarize_trials(trials)["test"]["a"]["war"]["mean"] == pytest.approx(0.6)
