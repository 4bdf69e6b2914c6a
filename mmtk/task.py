"""What a model is trained to predict: class labels or continuous scores (regression).

The task loss decides. A loss component reads ``batch.labels`` unless it declares
``target = "scores"`` (a class attribute), in which case it reads the per-sample float
``batch.scores`` (e.g. sentiment in [-3, 3]) and the head gets one output per sample
(``out_dim`` = 1 instead of the class count). Metrics declare what they read (see
:class:`mmtk.metrics.Metric`); this module checks that loss, metrics and data agree, so a
mismatch is a clear error before training rather than a shape error inside it.

A sample without a target (label -1, or a NaN score for regression) is unlabelled: it gets no
task loss (the mean is over the labelled samples of a batch; a batch without any gives 0) and
is never scored (:func:`supervised`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import DataError, MmtkError
from .metrics import CLASSIFICATION_READS, Metric

if TYPE_CHECKING:
    from torch import Tensor

    from .data import DataSplits
# torch is imported by the functions that compute: the recipe checks import this module

LABELS = "labels"
SCORES = "scores"


def loss_target(loss: Any) -> str:
    """``"labels"`` (classification, the default) or ``"scores"`` (regression)."""
    target = getattr(loss, "target", LABELS)
    if target not in (LABELS, SCORES):
        raise MmtkError(f"loss '{type(loss).__name__}' declares target {target!r}; "
                        f"a task loss reads '{LABELS}' or '{SCORES}'")
    return target


def recipe_target(builder: Any, recipe: Any) -> tuple[str, str]:
    """(target, task loss name) of a resolved :class:`~mmtk.recipe.Recipe`; its first stage
    decides."""
    task = recipe.first_stage.losses.task
    return loss_target(builder.component("loss", task, where="losses.task")), task.type


def output_width(target: str, num_classes: int) -> int:
    """The head's output size: one logit per class, or one value for regression."""
    return 1 if target == SCORES else num_classes


def metric_reads(target: str) -> tuple[str, ...]:
    """What the metrics that fit a model trained for ``target`` may read."""
    return ("regression",) if target == SCORES else CLASSIFICATION_READS


def trains(target: str) -> str:
    return "a regression score" if target == SCORES else "classes"


def fitting_metrics(target: str) -> str:
    """The advice shared by the recipe check and the run-time check."""
    return ("regression metrics (e.g. mae, corr)" if target == SCORES
            else "classification metrics (e.g. war, uar, f1_macro, log_loss)")


def check_metrics(target: str, metrics: dict[str, Metric], loss_name: str) -> None:
    """Every metric must read what the model predicts (classes or scores)."""
    wrong = [n for n, m in metrics.items() if m.reads not in metric_reads(target)]
    if wrong:
        raise MmtkError(f"eval.metrics {wrong} cannot score this model: losses.task "
                        f"'{loss_name}' trains {trains(target)} per sample, so use "
                        f"{fitting_metrics(target)}.")


def supervised(labels: Tensor, scores: Tensor | None, target: str) -> Tensor:
    """(N,) bool: the samples that have what the task trains on (a label >= 0, or a finite
    score for regression)."""
    import torch

    if target == SCORES:
        if scores is None:
            return torch.zeros(labels.shape, dtype=torch.bool, device=labels.device)
        return torch.isfinite(scores)
    return labels >= 0


def task_loss_on(loss: Any, prediction: Tensor, wanted: Tensor, rows: Tensor | None,
                 count: int) -> Tensor:
    """The task loss on the ``rows`` (positions in the batch, ``count`` of them) that have a
    target; ``rows`` None: every row. Without any such row the loss is 0, still attached to
    the graph (so DDP sees every parameter take part)."""
    if rows is None:
        return loss(prediction, wanted)
    if count == 0:
        return prediction.float().sum() * 0.0
    return loss(prediction[rows], wanted[rows])


def check_supervision(splits: DataSplits, dataset: str, target: str) -> None:
    """Training needs at least one labelled training sample; selection and evaluation need
    at least one labelled sample in validation and in test."""
    what = "regression score" if target == SCORES else "label"
    for split, part in splits.items():
        if len(part) and not bool(supervised(part.labels, part.scores, target).any()):
            use = ("nothing to train the task on" if split == "train" else
                   "nothing to select a model on" if split == "val" else "nothing to score")
            raise DataError(f"dataset '{dataset}': none of the {len(part)} {split} sample(s) has a "
                            f"{what} ({use}); unlabelled samples are for training only. Give "
                            f"labels to some {split} samples, or move the unlabelled ones to train.")


def check_scores(splits: DataSplits, dataset: str, loss_name: str) -> None:
    """Regression needs a score for every sample of every split, finite or NaN (NaN: an
    unlabelled sample); an infinite one is an error."""
    import torch

    for split, part in splits.items():
        if part.scores is None:
            raise DataError(f"losses.task '{loss_name}' trains on regression scores, but dataset "
                            f"'{dataset}' gives no scores for its {split} split; use a "
                            "classification loss (cross_entropy) or a dataset with scores "
                            "(mmsa, arrays with data.scores).")
        bad = torch.isinf(part.scores)
        if bad.any():
            sample = part.ids[int(bad.nonzero()[0])]
            raise DataError(f"dataset '{dataset}': the regression score of {split} sample "
                            f"'{sample}' is infinite ({int(bad.sum())} such sample(s) in that "
                            "split); fix it, or make it NaN to mark the sample unlabelled.")


def task_output(logits: Tensor, target: str) -> Tensor:
    """The prediction a metric reads: class index per sample, or the (B,) score."""
    return logits[..., 0].float() if target == SCORES else logits.argmax(-1)


def check_output(logits: Tensor, width: int, target: str) -> None:
    """The head must give ``width`` values per sample (checked on the first batch)."""
    if logits.shape[-1] != width:
        need = "1 (a regression score)" if target == SCORES else f"{width} (one logit per class)"
        raise MmtkError(f"model.head gives {logits.shape[-1]} output(s) per sample but the task "
                        f"needs {need}; a head should size its output with the out_dim context "
                        "parameter.")
