"""Paired bootstrap statistics of methods evaluated on the same test samples.

A *stratum* is one fold's trials (all trials when the data has no folds). One bootstrap draw,
in every stratum, resamples the stratum's trials (seeds) with replacement and the test samples
of each test set with replacement, the same samples for every method and condition
(pairing). Each method's metric is recomputed per drawn trial and condition from the
per-sample predictions and averaged over the drawn trials, so a draw carries both sources of
variance: seeds and test samples. Seeds scored on one test set share one sample resample
(resampling samples independently per seed would shrink the test-sample variance by the
number of seeds and make differences look significant too often); seeds that drew their own
test set (a seed-dependent split, ``sample_seed: trial``) each get their own, and are still
resampled as seeds: treating each of them as a stratum of its own would drop the between-seed
variance and make the intervals far too narrow.

When every trial (seed) drew its own test set and there are no folds, :func:`seed_level`
is the better test: each seed's difference then carries both sources of variance already, and
a paired t-test over the seeds (n - 1 degrees of freedom) is calibrated where the bootstrap is
not (with 5 seeds, resampling 5 values with replacement shrinks their variance by 4/5 and
uses normal rather than t tails: 8-15 % of p < 0.05 for equally good methods, measured in
tests/core/test_stats.py's setting, where the t-test gives 4-7 %).

Both results offer the same interface: ``samples`` (bootstrap draws, or per-trial values) on
which any linear summary (a difference of methods, of conditions, an area under a curve) is
computed the same way, then ``ci(x)`` and ``p(x)`` of that summary.

No CLI here: :mod:`mmtk.compare_stats` feeds it a comparison's predictions.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from . import metrics as core_metrics
from .errors import MmtkError
from .metrics import Metric
from .predictions import SplitPredictions

CHUNK_CELLS = 4_000_000  # draws x samples per chunk: bounds the memory of the weight matrices


@dataclass
class Bootstrap:
    """A metric of M methods under C columns (the conditions, then ``mean``)."""

    columns: list[str]
    observed: np.ndarray   # (M, C): mean over trials on the full test sets
    draws: np.ndarray      # (B, M, C): the same, per bootstrap draw

    @property
    def samples(self) -> np.ndarray:
        return self.draws

    def ci(self, x: np.ndarray, level: float = 0.95) -> tuple[float, float]:
        return percentile_ci(x, level)

    def p(self, x: np.ndarray) -> float:
        return bootstrap_p(x)


@dataclass
class SeedLevel:
    """A metric of M methods under C columns, one value per trial: the paired t-test's input."""

    columns: list[str]
    observed: np.ndarray    # (M, C): mean over trials
    per_trial: np.ndarray   # (T, M, C)

    @property
    def samples(self) -> np.ndarray:
        return self.per_trial

    def ci(self, x: np.ndarray, level: float = 0.95) -> tuple[float, float]:
        return t_interval(x, level)

    def p(self, x: np.ndarray) -> float:
        return t_test_p(x)


Estimate = Bootstrap | SeedLevel


def percentile_ci(draws: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    lo, hi = np.percentile(draws, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def bootstrap_p(diff_draws: np.ndarray) -> float:
    """Two-sided p-value of 'no difference': twice the smaller tail of the bootstrap
    distribution on either side of 0, with the +1 correction (never exactly 0)."""
    b = len(diff_draws)
    below, above = int((diff_draws <= 0).sum()), int((diff_draws >= 0).sum())
    return min(1.0, 2 * (1 + min(below, above)) / (b + 1))


def _t_parts(x: np.ndarray) -> tuple[float, float, int]:
    x = np.asarray(x, dtype=np.float64)
    if len(x) < 2:
        raise ValueError("a t-test needs at least two trials")
    return float(x.mean()), float(x.std(ddof=1) / np.sqrt(len(x))), len(x) - 1


def t_interval(x: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """mean +- t_{n-1} * sd / sqrt(n) of the per-trial values ``x``."""
    from scipy import stats as scipy_stats  # here: keeps scipy off the CLI's start-up

    mean, se, df = _t_parts(x)
    half = float(scipy_stats.t.ppf(0.5 + level / 2, df)) * se
    return mean - half, mean + half


def t_test_p(x: np.ndarray) -> float:
    """Two-sided p-value of 'mean 0' for the per-trial values ``x`` (one-sample t, n - 1 df).
    Values that are all equal give 1 when they are 0 and 0 otherwise (no spread to test)."""
    from scipy import stats as scipy_stats

    mean, se, df = _t_parts(x)
    if se <= 1e-15 * max(abs(mean), 1.0):
        return 1.0 if abs(mean) <= 1e-15 else 0.0
    return float(2 * scipy_stats.t.sf(abs(mean) / se, df))


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjustment: the k-th smallest p times (m - k + 1), kept monotone."""
    m = len(pvalues)
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(sorted(range(m), key=lambda j: pvalues[j])):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


# --------------------------------------------------------- metrics of many resamples ---
def _batched_accuracy(cm: np.ndarray) -> np.ndarray:
    return np.trace(cm, axis1=-2, axis2=-1) / np.maximum(cm.sum((-2, -1)), 1)


def _batched_macro_recall(cm: np.ndarray) -> np.ndarray:
    support = cm.sum(-1)
    recall = np.diagonal(cm, axis1=-2, axis2=-1) / np.maximum(support, 1)
    seen = support > 0
    return np.where(seen.any(-1), (recall * seen).sum(-1) / np.maximum(seen.sum(-1), 1), 0.0)


def _f1(cm: np.ndarray) -> np.ndarray:
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    precision, recall = tp / np.maximum(cm.sum(-2), 1), tp / np.maximum(cm.sum(-1), 1)
    total = precision + recall
    return np.where(total > 0, 2 * precision * recall / np.where(total > 0, total, 1), 0.0)


def _batched_macro_f1(cm: np.ndarray) -> np.ndarray:
    seen = (cm.sum(-1) > 0) | (cm.sum(-2) > 0)
    return np.where(seen.any(-1), (_f1(cm) * seen).sum(-1) / np.maximum(seen.sum(-1), 1), 0.0)


def _batched_weighted_f1(cm: np.ndarray) -> np.ndarray:
    support = cm.sum(-1)
    return (_f1(cm) * support).sum(-1) / np.maximum(support.sum(-1), 1)


# the core's confusion-matrix metrics, vectorised over (..., K, K); others are called per matrix
BATCHED_CONFUSION: dict[Callable, Callable[[np.ndarray], np.ndarray]] = {
    core_metrics.accuracy: _batched_accuracy, core_metrics.macro_recall: _batched_macro_recall,
    core_metrics.macro_f1: _batched_macro_f1, core_metrics.weighted_f1: _batched_weighted_f1}


def confusion_values(metric: Metric, cms: np.ndarray) -> np.ndarray:
    """The metric of every confusion matrix in ``cms`` (..., K, K)."""
    fast = BATCHED_CONFUSION.get(metric.fn)
    if fast is not None:
        return fast(cms)
    flat = cms.reshape(-1, *cms.shape[-2:])
    return np.array([metric(torch.from_numpy(cm)) for cm in flat]).reshape(cms.shape[:-2])


def regression_values(metric: Metric, weights: np.ndarray, pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(b, R): the metric of each resample (sample counts ``weights`` (b, N)) of each row of
    ``pred`` (R, N) against ``target`` (N,)."""
    n = weights.shape[1]
    if metric.fn is core_metrics.mean_absolute_error:
        return weights @ np.abs(pred - target).T / n
    if metric.fn is core_metrics.pearson:
        # moments about the full-sample means, so a constant resample gives 0 as pearson() does
        p, t = pred - pred.mean(1, keepdims=True), target - target.mean()
        mp, mt = weights @ p.T / n, (weights @ t / n)[:, None]
        cov = weights @ (p * t).T / n - mp * mt
        vp, vt = weights @ (p * p).T / n - mp ** 2, (weights @ (t * t) / n)[:, None] - mt ** 2
        scale = np.maximum((p * p).mean(1) * (t * t).mean(), 1e-300)
        ok = (vp * vt) > 1e-12 * scale
        return np.where(ok, cov / np.sqrt(np.where(ok, vp * vt, 1)), 0.0)
    out = np.empty((weights.shape[0], pred.shape[0]))
    for b, w in enumerate(weights):
        idx = np.repeat(np.arange(n), w.astype(np.int64))
        target_b = torch.from_numpy(target[idx]).float()
        for r, row in enumerate(pred):
            out[b, r] = metric(torch.from_numpy(row[idx]).float(), target_b)
    return out


def probability_values(metric: Metric, weights: np.ndarray, methods: list[SplitPredictions]) -> np.ndarray:
    """(b, M * C): a mean-of-samples metric (``reads: probabilities``) of each method under each
    condition, for each resample (sample counts ``weights`` (b, N)): a weighted mean of the
    per-sample values over the samples it scores (labelled, shown a modality), as
    :func:`mmtk.metrics.score_all` does on the full set."""
    missing = [i for i, m in enumerate(methods) if m.prob is None]
    if missing:
        raise MmtkError(f"metric reads class probabilities, but the predictions of method "
                        f"{missing[0] + 1} were saved without them")
    labels = methods[0].labels.astype(np.int64)
    safe = torch.from_numpy(np.maximum(labels, 0))
    rows, kept = [], []
    for m in methods:
        for c in range(len(m.conditions)):
            per_sample: torch.Tensor = metric.fn(torch.from_numpy(m.prob[c]), safe)  # type: ignore[assignment]
            rows.append(per_sample.double().numpy())
            kept.append(m.mask[c].any(-1) & (labels >= 0))
    scored = np.stack(kept).astype(np.float64)                     # (M * C, N)
    values = np.where(scored > 0, np.stack(rows), 0.0)
    return (weights @ values.T) / np.maximum(weights @ scored.T, 1e-300)


def trial_values(methods: list[SplitPredictions], metrics: dict[str, Metric], num_classes: int,
                 weights: np.ndarray) -> dict[str, np.ndarray]:
    """{metric: (b, M, C)}: each method's metric per condition under each row of sample counts."""
    first = methods[0]
    pred = np.stack([m.pred for m in methods])                      # (M, C, N)
    shape = (weights.shape[0],) + pred.shape[:2]
    out: dict[str, np.ndarray] = {}
    cms = None
    for name, metric in metrics.items():
        if metric.reads == "probabilities":
            out[name] = probability_values(metric, weights, methods).reshape(shape)
            continue
        if metric.reads == "regression":
            target = first.scores.astype(np.float64)
            out[name] = regression_values(metric, weights, pred.reshape(-1, pred.shape[-1]).astype(np.float64),
                                          target).reshape(shape)
            continue
        if cms is None:   # counts per (true, predicted) class of each resample: one matrix product
            k = num_classes
            codes = first.labels.astype(np.int64)[None, None] * k + pred.astype(np.int64)
            onehot = (codes[..., None] == np.arange(k * k)).transpose(2, 0, 1, 3).reshape(codes.shape[-1], -1)
            cms = (weights @ onehot.astype(np.float64)).reshape(*shape, k, k)
        out[name] = confusion_values(metric, cms)
    return out


def _by_test_set(trials: list[list[SplitPredictions]], indices: list[int]) -> list[list[int]]:
    """``indices`` grouped by test set (the same ids in the same order)."""
    groups: dict[tuple[str, ...], list[int]] = {}
    for t in indices:
        groups.setdefault(tuple(trials[t][0].ids), []).append(t)
    return list(groups.values())


def _strata(trials: list[list[SplitPredictions]], folds: list | None) -> list[list[int]]:
    """Trial indices grouped by fold; without fold labels, by test set (folds are what give
    trials different test sets when nothing else says so)."""
    if folds is None:
        return _by_test_set(trials, list(range(len(trials))))
    groups: dict[object, list[int]] = {}
    for t, fold in enumerate(folds):
        groups.setdefault(fold, []).append(t)
    return list(groups.values())


def _with_mean(values: np.ndarray, conditions: list[str], mean_over: list[str]) -> np.ndarray:
    if not mean_over:
        return values
    cols = [conditions.index(c) for c in mean_over]
    return np.concatenate([values, values[..., cols].mean(-1, keepdims=True)], axis=-1)


def paired_bootstrap(trials: list[list[SplitPredictions]], metrics: dict[str, Metric], num_classes: int,
                     n_boot: int, seed: int = 0, folds: list | None = None) -> dict[str, Bootstrap]:
    """``trials[t][m]``: method m's predictions in trial t (checked beforehand to share test
    ids, labels, conditions and masks across methods); ``folds[t]``: trial t's fold (None
    where the data has none), the strata. One :class:`Bootstrap` per metric."""
    first = trials[0][0]
    columns = list(first.conditions) + (["mean"] if first.mean_over else [])
    rng = np.random.default_rng(seed)
    observed = {n: v.mean(0) for n, v in _per_trial(trials, metrics, num_classes).items()}
    draws: dict[str, list[np.ndarray]] = {n: [] for n in metrics}
    largest = max(len(methods[0].ids) for methods in trials)
    chunk = max(1, CHUNK_CELLS // max(largest, 1))
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        total = {n: np.zeros((b, len(trials[0]), len(first.conditions))) for n in metrics}
        for group in _strata(trials, folds):
            weights = {}
            for same in _by_test_set(trials, group):   # one sample resample per test set
                n_samples = len(trials[same[0]][0].ids)
                w = rng.multinomial(n_samples, np.full(n_samples, 1 / n_samples), size=b).astype(np.float64)
                weights.update({t: w for t in same})
            picks = rng.multinomial(len(group), np.full(len(group), 1 / len(group)), size=b)  # (b, trials)
            for j, t in enumerate(group):
                values = trial_values(trials[t], metrics, num_classes, weights[t])
                for n in metrics:
                    total[n] += picks[:, j, None, None] * values[n]
        for n in metrics:
            draws[n].append(total[n] / len(trials))
    return {n: Bootstrap(columns, _with_mean(observed[n], first.conditions, first.mean_over),
                         _with_mean(np.concatenate(draws[n]), first.conditions, first.mean_over))
            for n in metrics}


def _per_trial(trials: list[list[SplitPredictions]], metrics: dict[str, Metric],
               num_classes: int) -> dict[str, np.ndarray]:
    """{metric: (T, M, conditions)}: each trial's metric on its full test set."""
    values: dict[str, list[np.ndarray]] = {n: [] for n in metrics}
    for methods in trials:
        full = trial_values(methods, metrics, num_classes, np.ones((1, len(methods[0].ids))))
        for n in metrics:
            values[n].append(full[n][0])
    return {n: np.stack(v) for n, v in values.items()}


def seed_level(trials: list[list[SplitPredictions]], metrics: dict[str, Metric],
               num_classes: int) -> dict[str, SeedLevel]:
    """The per-trial values of every metric (``mean`` column included), for the paired t-test
    over trials: valid when each trial has its own test set (then a trial's value carries the
    test-sample variance as well as the training randomness) and the trials are exchangeable
    (no folds)."""
    first = trials[0][0]
    columns = list(first.conditions) + (["mean"] if first.mean_over else [])
    out = {}
    for n, v in _per_trial(trials, metrics, num_classes).items():
        per_trial = _with_mean(v, first.conditions, first.mean_over)
        out[n] = SeedLevel(columns, per_trial.mean(0), per_trial)
    return out
