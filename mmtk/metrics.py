"""Classification metrics from a confusion matrix, and aggregation over conditions and trials."""
from __future__ import annotations

import math
from typing import Iterable

import torch
from torch import Tensor


def confusion_matrix(y_true: Tensor, y_pred: Tensor, num_classes: int) -> Tensor:
    """(C, C) counts, rows = true class, columns = predicted class."""
    idx = y_true.long().cpu() * num_classes + y_pred.long().cpu()
    return torch.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes).double()


def accuracy(cm: Tensor) -> float:
    return float(cm.diag().sum() / cm.sum().clamp_min(1))


def per_class_recall(cm: Tensor) -> Tensor:
    return cm.diag() / cm.sum(1).clamp_min(1)


def macro_recall(cm: Tensor) -> float:
    """Unweighted average recall over the classes that occur in the ground truth."""
    support = cm.sum(1) > 0
    return float(per_class_recall(cm)[support].mean()) if support.any() else 0.0


def per_class_f1(cm: Tensor) -> Tensor:
    tp = cm.diag()
    precision = tp / cm.sum(0).clamp_min(1)
    recall = tp / cm.sum(1).clamp_min(1)
    return torch.where(precision + recall > 0, 2 * precision * recall / (precision + recall),
                       torch.zeros_like(tp))


def macro_f1(cm: Tensor) -> float:
    """Mean F1 over classes present in the ground truth or the predictions (sklearn's labels)."""
    seen = (cm.sum(1) > 0) | (cm.sum(0) > 0)
    return float(per_class_f1(cm)[seen].mean()) if seen.any() else 0.0


def weighted_f1(cm: Tensor) -> float:
    support = cm.sum(1)
    return float((per_class_f1(cm) * support).sum() / support.sum().clamp_min(1))


def mean_std(values: Iterable[float]) -> dict[str, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    vals = [float(v) for v in values]
    n = len(vals)
    mean = sum(vals) / n if n else float("nan")
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1)) if n > 1 else 0.0
    return {"mean": mean, "std": std, "n": n}


def summarize_trials(trials: list[dict]) -> dict:
    """{split: {condition: {metric: {mean, std, n}}}} from per-trial metric dicts."""
    out: dict = {}
    if not trials:
        return out
    for split, conds in trials[0].items():
        out[split] = {}
        for cond, metrics in conds.items():
            out[split][cond] = {
                m: mean_std(t[split][cond][m] for t in trials if cond in t.get(split, {}))
                for m in metrics
            }
    return out
