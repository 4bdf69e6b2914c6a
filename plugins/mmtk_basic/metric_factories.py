"""The classification and regression metrics, as registered factories.

Kept apart from training.py (losses, optimizers), which imports torch: the recipe check calls
a metric's factory to learn what it reads, and `mmtk validate` must not wait for torch.
"""
from __future__ import annotations

from mmtk import metrics


def war():
    """Weighted average recall = overall accuracy."""
    return metrics.accuracy


def uar():
    """Unweighted average recall = macro-averaged recall."""
    return metrics.macro_recall


def f1_macro():
    """Macro-averaged F1."""
    return metrics.macro_f1


def f1_weighted():
    """Support-weighted F1."""
    return metrics.weighted_f1


def mae():
    """Mean absolute error of a regression score (lower is better)."""
    return metrics.Metric(metrics.mean_absolute_error, reads="regression",
                          higher_is_better=False, percent=False)


def corr():
    """Pearson correlation between predicted and true scores (0 if either is constant)."""
    return metrics.Metric(metrics.pearson, reads="regression", percent=False)


def log_loss():
    """Mean negative log-likelihood of the true class (lower is better; smooth on small splits).

    Read from the class probabilities: a selection criterion that does not tie across epochs
    on a validation split of a few dozen samples, where a rate moves in whole samples."""
    return metrics.Metric(metrics.log_loss, reads="probabilities", higher_is_better=False, percent=False)


def brier():
    """Mean multi-class Brier score of the class probabilities (lower is better).

    The squared distance of the probabilities to the one-hot truth, per sample."""
    return metrics.Metric(metrics.brier, reads="probabilities", higher_is_better=False, percent=False)
