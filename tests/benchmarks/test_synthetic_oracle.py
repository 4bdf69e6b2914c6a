"""The synthetic control's Bayes bound: the closed form the dataset reports agrees with
benchmarks/synthetic_oracle.py's Monte Carlo of the same Bayes rule, and it bounds what a
method learns."""
from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

import numpy as np
import pytest

from mmtk import condition_code
from mmtk.builder import Builder
from mmtk.plugins import load_plugins

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "synthetic_oracle.py"
REG = load_plugins().registry


def _oracle():
    spec = importlib.util.spec_from_file_location("synthetic_oracle", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("separation", [0.6, 1.2, 2.0])
def test_the_closed_form_bound_matches_the_monte_carlo_oracle(separation):
    ds = Builder(REG).dataset({"type": "synthetic", "separation": separation})
    bound = ds.bayes_bound()
    n, oracle = 200_000, _oracle()
    se = (0.25 / n) ** 0.5 * 2   # UAR averages 4 recalls of ~n/4 samples each: about 2x a proportion's SE
    rng = np.random.default_rng(0)
    for keep in itertools.product([False, True], repeat=3):
        if any(keep):
            present = tuple(m for m, k in zip(ds.modalities, keep) if k)
            code = condition_code(ds.modalities, keep)
            assert oracle.oracle_uar(present, n, separation, rng) == pytest.approx(bound[code], abs=4 * se), code
    assert bound["mean"] == pytest.approx(np.mean([bound[c] for c in ("a", "t", "v", "at", "av", "tv")]))


def test_the_bound_is_reported_with_the_data_and_orders_the_conditions():
    splits = Builder(REG).dataset({"type": "synthetic", "n_samples": 200}).load()
    bound = splits.info["bayes_bound"]["uar"]
    assert set(bound) == {"a", "t", "v", "at", "av", "tv", "atv", "mean"}
    assert "upper bound" in splits.info["bayes_bound_method"]
    assert bound["atv"] > bound["at"] > bound["a"] > 0.25   # more views, more information
    assert bound["a"] == pytest.approx(bound["t"])          # audio and text blur mirror images


def test_a_nearest_mean_classifier_on_the_features_stays_below_the_bound():
    """The bound is of the views before mixing and feature noise, so a rule fitted on the
    features (here nearest class mean on all three, 20,000 test samples) cannot exceed it."""
    import torch

    splits = Builder(REG).dataset({"type": "synthetic", "n_samples": 3000, "n_test": 20000, "sample_seed": 3}).load()
    x_train = torch.cat([splits.train.inputs[m] for m in splits.modalities], 1)
    x_test = torch.cat([splits.test.inputs[m] for m in splits.modalities], 1)
    means = torch.stack([x_train[splits.train.labels == k].mean(0) for k in range(4)])
    pred = torch.cdist(x_test, means).argmin(1)
    y = splits.test.labels
    uar = torch.stack([(pred[y == k] == k).float().mean() for k in range(4)]).mean().item()
    assert 0.4 < uar < splits.info["bayes_bound"]["uar"]["atv"]
