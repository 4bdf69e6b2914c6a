"""mmtk.compare_stats: which paired test a comparison gets, and why.

The seed-level t-test needs two or more trials, no folds, and a test set of its own for
every trial (from the recorded fingerprints, else from the test ids and labels); anything
else gets the hierarchical bootstrap, and forcing the t-test where it does not apply is an
error that says why."""
from __future__ import annotations

import numpy as np
import pytest

from mmtk.compare_stats import choose_test, describe_test, own_test_sets
from mmtk.errors import MmtkError
from mmtk.predictions import SplitPredictions

CONDS, MEAN_OVER = ["a", "t", "at"], ["a", "t"]


def split(labels: np.ndarray, prefix: str = "s") -> SplitPredictions:
    n = len(labels)
    mask = np.ones((len(CONDS), n, 2), bool)
    return SplitPredictions([f"{prefix}{i}" for i in range(n)], labels, None, CONDS, MEAN_OVER, mask,
                            labels.copy(), None)


def trials_of(kind: str, n_trials: int = 3) -> list[list[SplitPredictions]]:
    """``shared``: one test set; ``own ids``: each trial its own samples; ``own labels``: the
    same ids with labels drawn per seed (latent_views' test split)."""
    rng = np.random.default_rng(0)
    shared = rng.integers(0, 4, 50)
    out = []
    for t in range(n_trials):
        if kind == "shared":
            sp = split(shared)
        elif kind == "own ids":
            sp = split(shared, prefix=f"seed{t}-")
        else:
            sp = split(rng.integers(0, 4, 50))
        out.append([sp, split(sp.labels, sp.ids[0][:-1])])
    return out


def facts(n: int, fold=None, prints=None) -> list[dict]:
    return [{"fold": fold if not isinstance(fold, list) else fold[i],
             **({"test_fingerprint": prints[i]} if prints else {})} for i in range(n)]


@pytest.mark.parametrize("kind", ["own ids", "own labels"])
def test_own_test_sets_without_fingerprints_from_ids_and_labels(kind):
    assert own_test_sets(trials_of(kind), facts(3)) and not own_test_sets(trials_of("shared"), facts(3))


def test_fingerprints_decide_when_every_trial_has_one():
    # same ids and labels, but the recorded fingerprints say the features differ: own sets
    assert own_test_sets(trials_of("shared"), facts(3, prints=["x", "y", "z"]))
    assert not own_test_sets(trials_of("own labels"), facts(3, prints=["x", "x", "z"]))
    # one older trial without a fingerprint: fall back to ids and labels for all
    assert not own_test_sets(trials_of("shared"), facts(3, prints=["x", "y", None]))


def test_auto_picks_the_seed_level_test_only_where_it_is_valid():
    test, why = choose_test("auto", trials_of("own ids"), facts(3))
    assert test == "seed-t" and why == "3 trials, each scored on a test set of its own, no folds"
    test, why = choose_test("auto", trials_of("shared"), facts(3))
    assert test == "bootstrap" and "share a test set" in why
    test, why = choose_test("auto", trials_of("own ids"), facts(3, fold=[0, 1, 2]))
    assert test == "bootstrap" and "folds" in why
    test, why = choose_test("auto", trials_of("own ids", 1), facts(1))
    assert test == "bootstrap" and "one trial" in why
    assert choose_test("bootstrap", trials_of("own ids"), facts(3))[0] == "bootstrap"   # forced


def test_a_forced_seed_level_test_that_cannot_apply_says_why():
    with pytest.raises(MmtkError, match=r"--stat-test seed-t: .* because trials share a test set .*"
                                        r"use --stat-test bootstrap"):
        choose_test("seed-t", trials_of("shared"), facts(3))
    with pytest.raises(MmtkError, match="not a test; use one of auto, bootstrap, seed-t"):
        choose_test("welch", trials_of("shared"), facts(3))
    assert choose_test("seed-t", trials_of("own labels"), facts(3))[0] == "seed-t"


def test_captions_name_the_test():
    assert describe_test("seed-t", 5, 2000, 0) == ("paired t-test over the 5 seeds, each scored on a test set "
                                                   "of its own (4 df); 95 % t CI")
    assert "hierarchical paired bootstrap" in describe_test("bootstrap", 5, 2000, 3) and "B = 2000, seed 3" in \
        describe_test("bootstrap", 5, 2000, 3)
