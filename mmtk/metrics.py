"""Metrics: classification (from a confusion matrix, or from the class probabilities),
regression (from predicted and true scores), and aggregation over conditions and trials.

A ``metric`` component is a factory returning either a plain ``fn(confusion_matrix)``
(a classification rate, higher is better, shown in %) or a :class:`Metric` that says what
it reads, which direction is better, and how it is shown.

A metric that reads ``probabilities`` is the mean of a per-sample value: its ``fn(prob (N,
K), labels (N,))`` returns that value per sample (N,). Being a mean is what lets the paired
statistics resample it exactly (:func:`mmtk.stats.trial_values`). Such a metric is smooth in
the model's output where a rate moves in steps of one sample: a selection criterion that a
validation split of a few dozen samples does not tie on every other epoch.
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
    # "confusion": fn(confusion_matrix (C, C)); "regression": fn(pred (N,), target (N,));
    # "probabilities": fn(prob (N, K), labels (N,)) -> per-sample values (N,), scored as their mean
    reads: Literal["confusion", "regression", "probabilities"] = "confusion"
    higher_is_better: bool = True
    percent: bool = True          # a rate shown x100; False: shown as is (MAE, correlation)

    def __call__(self, *args: Any) -> float:
        if self.reads == "probabilities":
            values: Tensor = self.fn(*args)   # type: ignore[assignment]  # per sample, see reads
            return float(values.double().mean()) if len(values) else float("nan")
        return float(self.fn(*args))


# what each kind of model can be scored with: a classifier's predictions and probabilities,
# a regressor's scores
CLASSIFICATION_READS = ("confusion", "probabilities")


def as_metric(obj: Any) -> Metric:
    """A registered metric's value as a :class:`Metric` (plain callables read a confusion matrix)."""
    return obj if isinstance(obj, Metric) else Metric(obj)


def describe(metrics: dict[str, Metric]) -> dict[str, dict]:
    """Display facts per metric, saved with results so reports format them correctly."""
    return {n: {"higher_is_better": m.higher_is_better, "percent": m.percent, "reads": m.reads}
            for n, m in metrics.items()}


def needs_probabilities(metrics: dict[str, Metric]) -> bool:
    return any(m.reads == "probabilities" for m in metrics.values())


def score_all(metrics: dict[str, Metric], num_classes: int, pred: Tensor, labels: Tensor,
              scores: Tensor | None, scored: Tensor | None = None,
              prob: Tensor | None = None) -> dict[str, float]:
    """Every metric on one set of predictions (class indices or scores, and ``prob`` (N, K)
    the class probabilities where a metric reads them), the confusion matrix built once;
    ``scored`` (N,) bool limits them to the samples that were shown a modality. Unlabelled
    samples (label < 0 for a class metric, a NaN score for a regression one) are never
    scored. The evaluator and the rescoring of saved predictions both use it."""
    import torch

    shown = torch.ones(len(pred), dtype=torch.bool) if scored is None else scored.cpu().bool()
    out, cm = {}, None
    for name, metric in metrics.items():
        if metric.reads == "probabilities":
            if prob is None:
                from .errors import MmtkError
                raise MmtkError(f"metric '{name}' needs the class probabilities; these predictions "
                                "have none (a regression model, or predictions saved without them)")
            keep = shown & (labels.cpu() >= 0)
            out[name] = metric(prob.detach().cpu().double()[keep], labels.cpu().long()[keep])
        elif metric.reads == "regression":
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


# --------------------------------------------------------------------- probabilities ---
PROBABILITY_FLOOR = 1e-12   # a probability of exactly 0 costs log(1e12) = 27.6 nats, not inf


def log_loss(prob: Tensor, labels: Tensor) -> Tensor:
    """Per-sample negative log-likelihood of the true class (nats)."""
    return -prob.double().gather(1, labels.long()[:, None])[:, 0].clamp_min(PROBABILITY_FLOOR).log()


def brier(prob: Tensor, labels: Tensor) -> Tensor:
    """Per-sample multi-class Brier score: the squared distance to the one-hot truth."""
    import torch

    truth = torch.nn.functional.one_hot(labels.long(), prob.shape[1]).double()
    return ((prob.double() - truth) ** 2).sum(1)


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
