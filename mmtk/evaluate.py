"""Metrics of a model on a split under every condition of an evaluation plan.

The plans (which modalities each evaluation condition hides, per sample) are drawn once per
trial from the stage's ``missing.eval`` protocol and its seed, so validation during training
and the final evaluation see the very same masks. Only labelled samples are scored: an
unlabelled one (label -1, or a NaN score for regression) is left out and counted.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from . import distributed as dist
from .data import DataSplits, TensorData
from .devices import autocast
from .metrics import as_metric, needs_probabilities, score_all
from .pipeline import Pipeline
from .predictions import SplitPredictions
from .protocols import EvalPlan, MissingProtocol, call_with_present
from .task import LABELS, SCORES, supervised, task_output


def eval_plans(protocol: Callable[[], MissingProtocol], splits: DataSplits,
               which: tuple[str, ...] = ("val", "test")) -> dict[str, EvalPlan]:
    """The evaluation plan of each split, each drawn by a fresh protocol (so a split's masks
    do not depend on which splits were drawn before it)."""
    return {split: call_with_present(protocol().eval_conditions, getattr(splits, split).present,
                                     splits.modalities, len(getattr(splits, split)))
            for split in which}


class Evaluator:
    """Predicts and scores; one confusion matrix per condition feeds every class metric."""

    def __init__(self, metrics: dict[str, Any], num_classes: int, batch_size: int,
                 amp_dtype: torch.dtype | None, target: str = LABELS):
        self.metrics = {n: as_metric(m) for n, m in metrics.items()}
        self.reads_probabilities = needs_probabilities(self.metrics)
        self.num_classes, self.target = num_classes, target
        self.batch_size, self.amp_dtype = batch_size, amp_dtype
        # which split each evaluation read, per phase: a fact for the protocol card
        self.split_names: dict[int, str] = {}
        self.phase = "training"
        self.reads: dict[str, dict[str, int]] = {}

    @torch.no_grad()
    def predict(self, model: Pipeline, data: TensorData, mask: Tensor) -> Tensor:
        """Predicted class (or regression score) per sample."""
        return self.outputs(model, data, mask)[0]

    @torch.no_grad()
    def outputs(self, model: Pipeline, data: TensorData, mask: Tensor,
                probabilities: bool = True) -> tuple[Tensor, Tensor | None]:
        """(prediction per sample, class probabilities per sample, or None for regression or
        when not asked for); under DDP each rank predicts a shard and all ranks gather."""
        probabilities = probabilities and self.target != SCORES
        model.eval()
        device = data.labels.device
        mask = mask.to(device)
        mine = dist.shard(torch.arange(len(data), device=device))
        preds, probs = [], []
        for start in range(0, len(mine), self.batch_size):
            idx = mine[start:start + self.batch_size]
            batch = data.batch(idx).to(device).masked(mask[idx])
            with autocast(device, self.amp_dtype):
                logits = model(batch).logits
            preds.append(task_output(logits, self.target))
            if probabilities:
                probs.append(torch.softmax(logits.float(), -1))
        dtype = torch.float32 if self.target == SCORES else torch.long
        local = torch.cat(preds) if preds else torch.empty(0, dtype=dtype, device=device)
        pred = dist.gather_by_index(mine, local, len(data))
        if not probabilities:
            return pred, None
        local_p = torch.cat(probs) if probs else torch.empty(0, self.num_classes, device=device)
        return pred, dist.gather_by_index(mine, local_p, len(data))

    def score(self, pred: Tensor, data: TensorData, scored: Tensor | None = None,
              prob: Tensor | None = None) -> dict[str, float]:
        """Every metric on one set of predictions (see :func:`mmtk.metrics.score_all`)."""
        return score_all(self.metrics, self.num_classes, pred, data.labels, data.scores, scored, prob)

    def evaluate(self, model: Pipeline, data: TensorData, plan: EvalPlan,
                 keep: dict | None = None) -> dict[str, dict[str, float]]:
        """Metrics per condition (and their ``mean``). With ``keep`` (a dict), the per-sample
        predictions are stored in it as ``keep["split"]`` (:class:`SplitPredictions`), the
        samples not scored per condition (shown no modality) as ``keep["excluded"]`` and the
        unlabelled samples, never scored, as ``keep["unlabeled"]``."""
        out: dict[str, dict[str, float]] = {}
        kept = []
        excluded: dict[str, int] = {}
        phase = self.reads.setdefault(self.phase, {})
        split = self.split_names.get(id(data), "other")
        phase[split] = phase.get(split, 0) + 1
        present = data.present.cpu()
        labelled = supervised(data.labels, data.scores, self.target).cpu()
        for cond in plan.conditions:
            pred, prob = self.outputs(model, data, cond.mask,
                                      probabilities=keep is not None or self.reads_probabilities)
            shown = cond.mask.cpu().bool() & present
            # a sample shown no modality at all is not scored (nothing to predict from);
            # score_all also leaves out unlabelled samples
            scored = shown.any(1)
            if not bool(scored[labelled].all()):
                excluded[cond.name] = int((~scored & labelled).sum())
            out[cond.name] = self.score(pred, data, scored, prob)
            kept.append((cond.name, shown, pred, prob))
        if plan.mean_over:
            out["mean"] = {name: float(np.mean([out[c][name] for c in plan.mean_over]))
                           for name in self.metrics}
        if keep is not None:
            keep["split"] = split_predictions(data, plan, kept)
            keep["excluded"] = excluded
            keep["unlabeled"] = int((~labelled).sum())
        return out


def split_predictions(data: TensorData, plan: EvalPlan, kept: list) -> SplitPredictions:
    """What :meth:`Evaluator.evaluate` saw, as arrays for ``predictions.npz``."""
    probs = [p for *_, p in kept]
    return SplitPredictions(
        ids=list(data.ids), labels=data.labels.cpu().numpy(),
        scores=None if data.scores is None else data.scores.cpu().numpy(),
        conditions=[name for name, *_ in kept], mean_over=list(plan.mean_over),
        mask=torch.stack([shown for _, shown, _, _ in kept]).numpy(),
        pred=torch.stack([p.cpu() for _, _, p, _ in kept]).numpy(),
        prob=None if probs[0] is None else torch.stack([p.cpu() for p in probs]).numpy())
