"""Metrics: classification (from a confusion matrix), regression (from predicted and true
scores), and aggregation over conditions and trials.

A ``metric`` component is a factory returning either a plain ``fn(confusion_matrix)``
(a classification rate, higher is better, shown in %) or a :class:`Metric` that says what
it reads, which direction is better, and how it is shown.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Literal

if TYPE_CHECKING:
    from torch import Tensor
# torch is imported inside the functions that compute: the recipe checks import this module
# (for Metric and as_metric) and `mmtk validate` must not wait for torch.


@dataclass(frozen=True)
class Metric:
    """A metric function plus what the evaluator and the reports need to know about it."""

    fn: Callable[..., float]
    # "confusion": fn(confusion_matrix (C, C)); "regression": fn(pred (N,), target (N,))
    reads: Literal["confusion", "regression"] = "confusion"
    higher_is_better: bool = True
    percent: bool = True          # a rate shown x100; False: shown as is (MAE, correlation)

    def __call__(self, *args: Any) -> float:
        return float(self.fn(*args))


def as_metric(obj: Any) -> Metric:
    """A registered metric's value as a :class:`Metric` (plain callables read a confusion matrix)."""
    return obj if isinstance(obj, Metric) else Metric(obj)


def describe(metrics: dict[str, Metric]) -> dict[str, dict]:
    """Display facts per metric, saved with results so reports format them correctly."""
    return {n: {"higher_is_better": m.higher_is_better, "percent": m.percent, "reads": m.reads}
            for n, m in metrics.items()}


def score_all(metrics: dict[str, Metric], num_classes: int, pred: Tensor, labels: Tensor,
              scores: Tensor | None, scored: Tensor | None = None) -> dict[str, float]:
    """Every metric on one set of predictions (class indices or scores), the confusion matrix
    built once; ``scored`` (N,) bool limits them to the samples that were shown a modality.
    Unlabelled samples (label < 0 for a class metric, a NaN score for a regression one) are
    never scored. The evaluator and the rescoring of saved predictions both use it."""
    import torch

    shown = torch.ones(len(pred), dtype=torch.bool) if scored is None else scored.cpu().bool()
    out, cm = {}, None
    for name, metric in metrics.items():
        if metric.reads == "regression":
            if scores is None:
                from .errors import MmtkError
                raise MmtkError(f"metric '{name}' needs regression scores; these predictions have none")
            keep = shown & torch.isfinite(scores.cpu())
            out[name] = metric(pred.detach().cpu().float()[keep], scores.cpu()[keep])
        else:
            if cm is None:
                keep = shown & (labels.cpu() >= 0)
                cm = confusion_matrix(labels.cpu()[keep], pred.detach().cpu()[keep], num_classes)
            out[name] = metric(cm)
    return out


# ---------------------------------------------------------------------- regression ---
def mean_absolute_error(pred: Tensor, target: Tensor) -> float:
    return float((pred.double() - target.double()).abs().mean()) if len(target) else float("nan")


def pearson(pred: Tensor, target: Tensor) -> float:
    """Pearson correlation; 0 when either side is constant (numpy would give NaN)."""
    p, t = pred.double() - pred.double().mean(), target.double() - target.double().mean()
    denom = math.sqrt(float((p * p).sum()) * float((t * t).sum()))
    return float((p * t).sum()) / denom if denom > 0 else 0.0


# ------------------------------------------------------------------ classification ---
def confusion_matrix(y_true: Tensor, y_pred: Tensor, num_classes: int) -> Tensor:
    """(C, C) counts, rows = true class, columns = predicted class."""
    import torch

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
    import torch

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
