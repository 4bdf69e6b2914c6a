"""mmtk.stats: the paired hierarchical bootstrap is calibrated (identical methods: p roughly
uniform, CI covers 0), detects a clear difference, matches the evaluator's metrics, and
Holm's adjustment is right; the seed-level t-test is calibrated where each seed has its own
test set (and the bootstrap, measured there, is not)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from mmtk import metrics as core
from mmtk.predictions import SplitPredictions, score_predictions
from mmtk.stats import (
    BATCHED_CONFUSION,
    bootstrap_p,
    holm,
    paired_bootstrap,
    percentile_ci,
    regression_values,
    seed_level,
    t_interval,
    t_test_p,
)

K = 4
CONDS, MEAN_OVER = ["a", "t", "at"], ["a", "t"]
METRICS = {"war": core.Metric(core.accuracy), "uar": core.Metric(core.macro_recall)}


def split_from_correct(labels: np.ndarray, correct: np.ndarray, rng) -> SplitPredictions:
    """Predictions that are right where ``correct`` (C, N) is true, a wrong class elsewhere."""
    wrong = (labels + rng.integers(1, K, size=correct.shape)) % K
    pred = np.where(correct, labels, wrong).astype(np.int64)
    n = len(labels)
    mask = np.stack([np.tile([c != "t", c != "a"], (n, 1)) for c in CONDS])
    return SplitPredictions([f"s{i}" for i in range(n)], labels, None, CONDS, MEAN_OVER, mask, pred, None)


def two_methods(rng, n: int, seeds: int, gap: float = 0.0) -> list[list[SplitPredictions]]:
    """Two methods on one shared test set over ``seeds`` trials. Each method finds each sample
    easy or hard in every seed (a method x sample effect shared across seeds), as trained
    networks do; ``gap`` raises the second method's accuracy."""
    labels = rng.integers(0, K, n)
    ease = rng.normal(size=(2, n))
    trials = []
    for _ in range(seeds):
        methods = []
        for m in range(2):
            p = 1 / (1 + np.exp(-(0.3 + 1.5 * ease[m])))
            p = np.clip(p + (gap if m == 1 else 0.0), 0, 1)
            methods.append(split_from_correct(labels, rng.random((len(CONDS), n)) < p, rng))
        trials.append(methods)
    return trials


def test_batched_metrics_equal_the_core_metrics():
    rng = np.random.default_rng(0)
    cms = rng.integers(0, 5, (300, K, K)).astype(float)
    cms[:40, 2, :] = 0          # a class absent from the ground truth
    cms[40:60, :, 1] = 0        # a class never predicted
    cms[60:62] = 0              # nothing at all
    for fn, batched in BATCHED_CONFUSION.items():
        expected = [fn(torch.from_numpy(cm)) for cm in cms]
        np.testing.assert_allclose(batched(cms), expected, atol=1e-12, err_msg=fn.__name__)
    pred, target = rng.normal(size=(3, 40)), rng.normal(size=40)
    weights = rng.multinomial(40, np.full(40, 1 / 40), size=25).astype(float)
    weights[0] = 0
    weights[0, 5] = 40          # a resample of one sample: constant, so pearson() says 0
    for fn in (core.mean_absolute_error, core.pearson):
        got = regression_values(core.Metric(fn, reads="regression"), weights, pred, target)
        idx = [np.repeat(np.arange(40), w.astype(int)) for w in weights]
        expected = [[fn(torch.from_numpy(row[i]), torch.from_numpy(target[i])) for row in pred] for i in idx]
        np.testing.assert_allclose(got, expected, atol=1e-9, err_msg=fn.__name__)


def test_unknown_metrics_are_called_per_resample():
    """A plugin's metric without a vectorised twin is computed per confusion matrix."""
    rng = np.random.default_rng(1)
    trials = two_methods(rng, 60, 2)
    recall0 = core.Metric(lambda cm: float(cm[0, 0] / cm[0].sum().clamp_min(1)))
    boot = paired_bootstrap(trials, {"r0": recall0}, K, n_boot=20, seed=0)["r0"]
    for m in range(2):
        expected = np.mean([float((t[m].pred[0] == 0)[t[m].labels == 0].mean()) for t in trials])
        assert boot.observed[m, 0] == pytest.approx(expected)
    assert boot.draws.shape == (20, 2, 4)


def test_observed_values_are_the_evaluators_trial_means():
    rng = np.random.default_rng(2)
    trials = two_methods(rng, 80, 3)
    boot = paired_bootstrap(trials, METRICS, K, n_boot=10, seed=0)
    assert boot["uar"].columns == CONDS + ["mean"]
    for m in range(2):
        scored = [score_predictions(t[m], METRICS, K) for t in trials]
        for j, cond in enumerate(CONDS + ["mean"]):
            for name in METRICS:
                assert boot[name].observed[m, j] == pytest.approx(np.mean([s[cond][name] for s in scored]))


def test_seeded_and_reproducible():
    trials = two_methods(np.random.default_rng(3), 50, 2)
    a = paired_bootstrap(trials, METRICS, K, n_boot=30, seed=7)["uar"].draws
    assert np.array_equal(a, paired_bootstrap(trials, METRICS, K, n_boot=30, seed=7)["uar"].draws)
    assert not np.array_equal(a, paired_bootstrap(trials, METRICS, K, n_boot=30, seed=8)["uar"].draws)


def test_the_very_same_predictions_differ_by_exactly_zero():
    trials = [[t[0], t[0]] for t in two_methods(np.random.default_rng(4), 50, 3)]
    boot = paired_bootstrap(trials, METRICS, K, n_boot=100, seed=0)["uar"]
    d = boot.draws[:, 1] - boot.draws[:, 0]
    assert np.all(d == 0) and bootstrap_p(d[:, -1]) == 1.0 and percentile_ci(d[:, -1]) == (0.0, 0.0)


def test_equally_good_methods_give_roughly_uniform_p_values():
    """100 repetitions of two equally good (but different) methods, 3 seeds on one test set."""
    rng = np.random.default_rng(5)
    p_mean, covered = [], 0
    for rep in range(100):
        boot = paired_bootstrap(two_methods(rng, 150, 3), METRICS, K, n_boot=200, seed=rep)["uar"]
        d = boot.draws[:, 1, -1] - boot.draws[:, 0, -1]
        p_mean.append(bootstrap_p(d))
        lo, hi = percentile_ci(d)
        covered += lo <= 0 <= hi
    p = np.array(p_mean)
    assert (p < 0.05).mean() <= 0.12          # not anti-conservative
    assert 0.3 <= (p < 0.5).mean() <= 0.7     # and not stuck at 1: roughly uniform
    assert covered >= 85


def test_a_clearly_better_method_is_detected():
    """+15 points of accuracy on 600 samples x 3 seeds."""
    boot = paired_bootstrap(two_methods(np.random.default_rng(6), 600, 3, gap=0.15), METRICS, K,
                            n_boot=500, seed=0)["war"]
    d = boot.draws[:, 1, -1] - boot.draws[:, 0, -1]
    assert bootstrap_p(d) < 0.01
    lo, hi = percentile_ci(d)
    assert 0 < lo < boot.observed[1, -1] - boot.observed[0, -1] < hi
    assert 0.10 < boot.observed[1, -1] - boot.observed[0, -1] < 0.20


def test_folds_are_strata_each_with_its_own_test_samples():
    """Two folds x two seeds; fold 0's trials are always right, fold 1's always wrong. Trials
    are resampled within a fold, so every draw averages two of each: exactly 0.5."""
    rng = np.random.default_rng(7)
    labels0, labels1 = rng.integers(0, K, 40), rng.integers(0, K, 60)
    fold0 = [[split_from_correct(labels0, np.ones((3, 40), bool), rng) for _ in range(2)] for _ in range(2)]
    fold1 = [[split_from_correct(labels1, np.zeros((3, 60), bool), rng) for _ in range(2)] for _ in range(2)]
    for t in fold1:
        for sp in t:
            sp.ids = [f"f1-{i}" for i in sp.ids]
    boot = paired_bootstrap(fold0 + fold1, METRICS, K, n_boot=200, seed=0)["war"]
    assert boot.observed[0, 0] == 0.5 and np.all(boot.draws == 0.5)


def seeds_with_own_test_sets(rng, n: int, seeds: int, spread: float) -> list[list[SplitPredictions]]:
    """Two methods equally good on average; each seed draws its own test set (its own ids) and
    moves the second method by a seed effect of sd ``spread`` (training randomness): it fixes
    that many of the first method's errors, or makes that many new ones."""
    trials = []
    for s in range(seeds):
        labels = rng.integers(0, K, n)
        correct = np.repeat(rng.random((1, n)) < 0.7, len(CONDS), axis=0)
        other = correct.copy()
        shift = rng.normal(0, spread)
        pool = np.flatnonzero(~correct[0] if shift > 0 else correct[0])
        flip = rng.choice(pool, size=min(len(pool), round(abs(shift) * n)), replace=False)
        other[:, flip] = ~other[:, flip]
        a, b = split_from_correct(labels, correct, rng), split_from_correct(labels, other, rng)
        for sp in (a, b):
            sp.ids = [f"seed{s}-{i}" for i in sp.ids]
        trials.append([a, b])
    return trials


def test_seeds_with_their_own_test_sets_are_resampled_as_seeds():
    """A seed-dependent test set (sample_seed: trial) must not make each seed a stratum of its
    own: that keeps only the test-sample variance, and the seed effect then looks significant."""
    rng = np.random.default_rng(11)
    rejected = {"seeds resampled": 0, "each seed its own stratum": 0}
    reps = 60
    for rep in range(reps):
        trials = seeds_with_own_test_sets(rng, 300, 5, spread=0.05)
        for how, folds in (("seeds resampled", [None] * 5), ("each seed its own stratum", None)):
            boot = paired_bootstrap(trials, METRICS, K, n_boot=200, seed=rep, folds=folds)["war"]
            rejected[how] += bootstrap_p(boot.draws[:, 1, -1] - boot.draws[:, 0, -1]) < 0.05
    assert rejected["seeds resampled"] / reps <= 0.2
    assert rejected["each seed its own stratum"] / reps >= 0.4   # what the old strata did


def test_fold_labels_make_the_strata():
    """The same two-fold setting as above, given as fold labels: still exactly 0.5 every draw."""
    rng = np.random.default_rng(7)
    labels0, labels1 = rng.integers(0, K, 40), rng.integers(0, K, 60)
    fold0 = [[split_from_correct(labels0, np.ones((3, 40), bool), rng) for _ in range(2)] for _ in range(2)]
    fold1 = [[split_from_correct(labels1, np.zeros((3, 60), bool), rng) for _ in range(2)] for _ in range(2)]
    boot = paired_bootstrap(fold0 + fold1, METRICS, K, n_boot=200, seed=0, folds=[0, 0, 1, 1])["war"]
    assert np.all(boot.draws == 0.5)
    merged = paired_bootstrap(fold0 + fold1, METRICS, K, n_boot=200, seed=0, folds=[None] * 4)["war"]
    assert merged.draws.std() > 0.1            # one stratum: a draw may pick fold 1's trials only


def test_holm_against_a_hand_computation():
    # sorted: 0.005 x4 = 0.02; 0.01 x3 = 0.03; 0.03 x2 = 0.06; 0.04 x1 = 0.04 -> kept monotone at 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])       # capped at 1
    assert holm([]) == []


def test_bootstrap_p_is_two_sided_with_the_plus_one_correction():
    assert bootstrap_p(np.full(99, 0.3)) == pytest.approx(2 / 100)
    assert bootstrap_p(np.full(99, -0.3)) == pytest.approx(2 / 100)
    assert bootstrap_p(np.array([-1.0] * 30 + [1.0] * 69)) == pytest.approx(2 * 31 / 100)


# ----------------------------------------------------------------- seed-level t-test ---
def test_t_interval_and_p_against_a_hand_computation():
    # x = 1..4: mean 2.5, sd 1.2910, se 0.6455; t_{3, 0.975} = 3.18245; t = 3.8730, p = 0.03047
    lo, hi = t_interval(np.array([1.0, 2.0, 3.0, 4.0]))
    assert (lo, hi) == pytest.approx((2.5 - 3.18245 * 0.645497, 2.5 + 3.18245 * 0.645497), abs=1e-4)
    assert t_test_p(np.array([1.0, 2.0, 3.0, 4.0])) == pytest.approx(0.03047, abs=1e-4)
    assert t_test_p(-np.array([1.0, 2.0, 3.0, 4.0])) == pytest.approx(0.03047, abs=1e-4)   # two-sided
    assert t_test_p(np.zeros(5)) == 1.0 and t_test_p(np.full(5, 0.02)) == 0.0   # no spread
    with pytest.raises(ValueError, match="at least two trials"):
        t_interval(np.array([0.3]))


def test_seed_level_values_are_each_trials_metric():
    rng = np.random.default_rng(3)
    trials = seeds_with_own_test_sets(rng, 200, 4, spread=0.05)
    est = seed_level(trials, METRICS, K)["war"]
    assert est.columns == CONDS + ["mean"] and est.samples.shape == (4, 2, 4)
    for t, methods in enumerate(trials):
        for m, sp in enumerate(methods):
            scored = score_predictions(sp, METRICS, K)
            assert est.samples[t, m, :3] == pytest.approx([scored[c]["war"] for c in CONDS])
    assert est.observed == pytest.approx(est.samples.mean(0))
    assert est.samples[:, :, 3] == pytest.approx(est.samples[:, :, :2].mean(-1))   # mean over a, t


def test_seed_level_t_is_calibrated_where_the_bootstrap_is_not():
    """Each seed its own large test set, equally good methods, training randomness dominating:
    the t-test over 5 seeds rejects at its nominal 5 %; the hierarchical bootstrap, which
    resamples the 5 seed values (their variance shrunk by 4/5, normal tails), rejects more
    often. This is why ``mmtk compare`` picks the t-test there."""
    rng = np.random.default_rng(22)
    reps, boot_reps = 400, 100
    t_rejected = boot_rejected = 0
    for rep in range(reps):
        trials = seeds_with_own_test_sets(rng, 500, 5, spread=0.03)
        est = seed_level(trials, METRICS, K)["war"]
        d = est.samples[:, 1, -1] - est.samples[:, 0, -1]
        t_rejected += est.p(d) < 0.05
        if rep < boot_reps:
            boot = paired_bootstrap(trials, METRICS, K, n_boot=200, seed=rep, folds=[None] * 5)["war"]
            boot_rejected += boot.p(boot.samples[:, 1, -1] - boot.samples[:, 0, -1]) < 0.05
    # measured: t 4.0-6.8 %, bootstrap 8-14 % over rng seeds 21-23 (2000 samples, 400 + 200
    # repetitions: t 5.5 %, bootstrap 14.5 %)
    assert 0.02 <= t_rejected / reps <= 0.085
    assert boot_rejected / boot_reps >= 0.1 and boot_rejected / boot_reps > t_rejected / reps


def test_seed_level_t_detects_a_clear_gap():
    rng = np.random.default_rng(5)
    trials = seeds_with_own_test_sets(rng, 1000, 5, spread=0.01)
    for methods in trials:                     # the second method fixes 8 % of the samples
        b = methods[1]
        wrong = np.flatnonzero(b.pred[0] != b.labels)[: 80]
        b.pred[:, wrong] = b.labels[wrong]
    est = seed_level(trials, METRICS, K)["war"]
    d = est.samples[:, 1, -1] - est.samples[:, 0, -1]
    lo, hi = est.ci(d)
    assert est.p(d) < 0.01 and 0 < lo <= d.mean() <= hi
