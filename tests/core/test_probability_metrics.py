"""Metrics that read the class probabilities (log_loss, brier): their values, selection on
them (lower is better), the saved predictions rescored to the same numbers, and the paired
statistics resampling them exactly."""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import RECIPES, control_data, fails_with
from mmtk import MmtkError
from mmtk.metrics import Metric, brier, log_loss, score_all
from mmtk.predictions import load_predictions
from mmtk.stats import trial_values

PROBABILITY_METRICS = {"log_loss": Metric(log_loss, reads="probabilities", higher_is_better=False, percent=False),
                       "brier": Metric(brier, reads="probabilities", higher_is_better=False, percent=False)}


def test_values_per_sample_match_their_definitions():
    prob = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.5, 0.5, 0.0]])
    labels = torch.tensor([0, 1, 2])
    np.testing.assert_allclose(log_loss(prob, labels).numpy(),
                               [-math.log(0.7), -math.log(0.1), -math.log(1e-12)])
    np.testing.assert_allclose(brier(prob, labels).numpy(),
                               [0.09 + 0.04 + 0.01, 0.01 + 0.81 + 0.64, 0.25 + 0.25 + 1.0])
    # the metric is the mean over the samples it scores: labelled, shown a modality
    shown = torch.tensor([True, True, False])
    out = score_all(PROBABILITY_METRICS, 3, prob.argmax(1), torch.tensor([0, 1, -1]), None, shown, prob)
    assert out["log_loss"] == pytest.approx(-(math.log(0.7) + math.log(0.1)) / 2)
    assert out["brier"] == pytest.approx((0.14 + 1.46) / 2)


def test_scoring_without_probabilities_is_a_clear_error():
    with pytest.raises(MmtkError, match="log_loss.*class probabilities"):
        score_all(PROBABILITY_METRICS, 3, torch.tensor([0, 1]), torch.tensor([0, 1]), None)


def test_a_regression_recipe_rejects_them(capsys):
    fails_with(capsys, ["validate", str(RECIPES / "baseline-mosi.yaml"), "--set", "eval.metrics=[mae, log_loss]"],
               "eval.metrics[1]", "log_loss")


@pytest.fixture(scope="module")
def selected_on_log_loss(tmp_path_factory) -> Path:
    from mmtk.cli import main

    out = tmp_path_factory.mktemp("logloss") / "runs"
    code = main(["run", str(RECIPES / "baseline.yaml"), "--quiet", "--seeds", "0", "1",
                 "--set", "train.epochs=8", "--set", "train.patience=3", "--set", control_data(300),
                 "--set", "train.monitor=log_loss", "--set", "eval.metrics=[uar, log_loss, brier]",
                 "--set", f"output.dir={out}"])
    assert code == 0
    return next((out / "baseline").iterdir())


@pytest.mark.slow
def test_selection_keeps_the_epoch_of_lowest_validation_log_loss(selected_on_log_loss):
    for trial in ("seed0", "seed1"):
        history = json.loads((selected_on_log_loss / f"trials/{trial}/history-main.json").read_text())
        losses = [row["val/log_loss"] for row in history]
        metrics = json.loads((selected_on_log_loss / f"trials/{trial}/metrics.json").read_text())
        # the selected model is re-evaluated on val: its log loss is the history's minimum
        assert metrics["val"]["mean"]["log_loss"] == pytest.approx(min(losses), rel=1e-5)
        assert min(losses) < losses[0]     # it learned, so lower really is what was kept


@pytest.mark.slow
def test_saved_probabilities_rescore_to_the_saved_metrics(selected_on_log_loss, capsys):
    from mmtk.cli import main

    assert main(["eval", str(selected_on_log_loss), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert not again["mismatches"]
    saved = json.loads((selected_on_log_loss / "trials/seed0/metrics.json").read_text())
    assert again["trials"]["seed0"]["test"]["atv"]["log_loss"] == pytest.approx(saved["test"]["atv"]["log_loss"])


@pytest.mark.slow
def test_the_paired_resampling_of_a_probability_metric_is_exact(selected_on_log_loss):
    first = load_predictions(selected_on_log_loss / "trials/seed0/predictions.npz").splits["test"]
    # a second "method" on the same test set: the same model at temperature 2
    tempered = np.sqrt(first.prob)
    preds = [first, dataclasses.replace(first, prob=tempered / tempered.sum(-1, keepdims=True))]
    saved = json.loads((selected_on_log_loss / "trials/seed0/metrics.json").read_text())
    n = len(preds[0].ids)
    full = trial_values(preds, PROBABILITY_METRICS, 4, np.ones((1, n)))["log_loss"]
    for c, cond in enumerate(preds[0].conditions):
        assert full[0, 0, c] == pytest.approx(saved["test"][cond]["log_loss"], rel=1e-6)
        assert full[0, 1, c] != pytest.approx(full[0, 0, c])
    # a resample (sample counts) equals the metric on the explicitly repeated samples
    counts = np.random.default_rng(0).multinomial(n, np.full(n, 1 / n), size=2).astype(np.float64)
    drawn = trial_values(preds, PROBABILITY_METRICS, 4, counts)["brier"]
    for b in range(2):
        idx = np.repeat(np.arange(n), counts[b].astype(np.int64))
        for m, split in enumerate(preds):
            c = split.conditions.index("a")
            keep = split.mask[c][idx].any(-1)
            expected = brier(torch.from_numpy(split.prob[c][idx][keep]), torch.from_numpy(split.labels[idx][keep]))
            assert drawn[b, m, c] == pytest.approx(float(expected.double().mean()), rel=1e-9)
