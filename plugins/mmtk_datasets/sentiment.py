"""Sentiment metrics of a regression model, as MMSA reports them for MOSI/MOSEI/SIMS.

Each reads the predicted and true scores and maps both to classes with the same rules the
``mmsa`` dataset uses for its labels (:func:`sentiment_to_class`), then scores the
confusion matrix: Acc-2 / F1 (negative vs non-negative, MMSA "Has0"), Acc-2 / F1 without
zero-sentiment samples ("Non0": samples whose true score is 0 are left out, a prediction of 0
counts as negative), Acc-5 / Acc-7 (round(clip(score))), and SIMS' interval classes on
scores clipped to [-1, 1]. F1 is support-weighted, as in MMSA.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from mmtk import metrics

from .mmsa import RULE_CLASSES, sentiment_to_class


def _classes(pred: np.ndarray, true: np.ndarray, rule: str) -> tuple[np.ndarray, np.ndarray]:
    if rule == "binary_nonzero":
        keep = true != 0
        return (pred[keep] > 0).astype(np.int64), (true[keep] > 0).astype(np.int64)
    if rule.startswith("sims"):  # SIMS scores live in [-1, 1]; MMSA clips predictions to it
        pred, true = np.clip(pred, -1.0, 1.0), np.clip(true, -1.0, 1.0)
    return sentiment_to_class(pred, rule), sentiment_to_class(true, rule)


def _metric(rule: str, score) -> metrics.Metric:
    k = len(RULE_CLASSES[rule])

    def fn(pred: Tensor, target: Tensor) -> float:
        p, t = _classes(pred.double().numpy(), target.double().numpy(), rule)
        return score(metrics.confusion_matrix(torch.from_numpy(t), torch.from_numpy(p), k))
    return metrics.Metric(fn, reads="regression")


# The registered metric components: module-level, so the plugin names them by import path.
def acc2() -> metrics.Metric:
    """Binary accuracy, negative (< 0) vs non-negative (>= 0) score (MMSA Has0_acc_2)."""
    return _metric("binary", metrics.accuracy)


def f1_2() -> metrics.Metric:
    """Weighted F1, negative vs non-negative score (MMSA Has0_F1_score)."""
    return _metric("binary", metrics.weighted_f1)


def acc2_nonzero() -> metrics.Metric:
    """Binary accuracy, negative vs positive, true-zero samples left out (Non0_acc_2)."""
    return _metric("binary_nonzero", metrics.accuracy)


def f1_2_nonzero() -> metrics.Metric:
    """Weighted F1, negative vs positive, true-zero samples left out (Non0_F1_score)."""
    return _metric("binary_nonzero", metrics.weighted_f1)


def acc5() -> metrics.Metric:
    """5-class accuracy: round(clip(score, -2, 2)) (MMSA Mult_acc_5)."""
    return _metric("5class", metrics.accuracy)


def acc7() -> metrics.Metric:
    """7-class accuracy: round(clip(score, -3, 3)) (MMSA Mult_acc_7)."""
    return _metric("7class", metrics.accuracy)


def sims_acc2() -> metrics.Metric:
    """CH-SIMS 2-class accuracy on scores clipped to [-1, 1]: (-1, 0] vs (0, 1]."""
    return _metric("sims2", metrics.accuracy)


def sims_acc3() -> metrics.Metric:
    """CH-SIMS 3-class accuracy: [-1, -0.1], (-0.1, 0.1], (0.1, 1]."""
    return _metric("sims3", metrics.accuracy)


def sims_acc5() -> metrics.Metric:
    """CH-SIMS 5-class accuracy: edges -0.7, -0.1, 0.1, 0.7."""
    return _metric("sims5", metrics.accuracy)


def sims_f1_2() -> metrics.Metric:
    """CH-SIMS weighted F1 of (-1, 0] vs (0, 1]."""
    return _metric("sims2", metrics.weighted_f1)
