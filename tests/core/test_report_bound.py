"""A dataset's Bayes bound (DataSplits.info['bayes_bound']) shown with the results: the run's
summary table and metrics.csv, and mmtk compare's table, CSV and plot. The core only shows
what the dataset gives; without one, every table is as before."""
from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from mmtk.compare import Entry
from mmtk.compare_tables import comparison_rows, csv_text, plot_metric
from mmtk.metrics import summarize_trials
from mmtk.report import BOUND_LABEL, dataset_bounds, summary_rows, write_csv

TRIAL = {"test": {"a": {"war": 0.5, "uar": 0.4}, "at": {"war": 0.6, "uar": 0.55},
                  "mean": {"war": 0.5, "uar": 0.4}}}
BOUND = {"uar": {"a": 0.61, "at": 0.7512, "mean": 0.61}}


def test_summary_table_gets_one_row_per_bounded_metric():
    summary = summarize_trials([TRIAL])
    header, rows = summary_rows(summary, "test", bounds=BOUND)
    assert header == ["metric", "a", "at", "mean"]
    assert rows[-1] == [f"UAR: {BOUND_LABEL}", "61.00", "75.12", "61.00"]
    assert len(rows) == 3                                         # WAR, UAR, and the bound of UAR
    assert summary_rows(summary, "test") == (header, rows[:2])    # no bound: the table as before
    partial = summary_rows(summary, "test", bounds={"uar": {"at": 0.7}})[1][-1]
    assert partial[1:] == ["-", "70.00", "-"]                     # a condition it does not cover
    assert len(summary_rows(summary, "test", metrics=["war"], bounds=BOUND)[1]) == 1  # UAR not shown


def _trial(root, key: str, bound: dict | None, mean_over: list[str] | None = None) -> None:
    folder = root / "trials" / key
    folder.mkdir(parents=True, exist_ok=True)
    info = {"dataset": "x"} if bound is None else {"dataset": "x", "bayes_bound": bound}
    (folder / "data.json").write_text(json.dumps(info))
    if mean_over is not None:   # what a trial's predictions.npz records of its 'mean'
        np.savez(folder / "predictions.npz", **{"test.mean_over": np.array(mean_over, dtype=str)})


def test_bounds_are_read_from_the_trials_data_files(tmp_path):
    _trial(tmp_path, "seed0", {"uar": {"a": 0.6, "t": 0.5, "mean": 0.99}})
    _trial(tmp_path, "seed1", {"uar": {"a": 0.7, "t": 0.5, "mean": 0.99}})
    (tmp_path / "trials" / "seed2").mkdir()                       # no data.json: skipped
    got = dataset_bounds(tmp_path, ["seed0", "seed1", "seed2"])
    assert list(got) == ["uar"] and got["uar"]["a"] == pytest.approx(0.65)
    assert "mean" not in got["uar"]               # the dataset's own 'mean' is never taken as it is
    _trial(tmp_path, "seed0", None)
    _trial(tmp_path, "seed1", None)
    assert dataset_bounds(tmp_path, ["seed0", "seed1"]) == {}


def test_the_bound_mean_follows_the_runs_own_mean(tmp_path):
    bound = {"uar": {"a": 0.6, "t": 0.5, "at": 0.8, "mean": 0.55}}
    _trial(tmp_path, "six", bound, ["a", "t"])
    assert dataset_bounds(tmp_path, ["six"])["uar"]["mean"] == pytest.approx(0.55)
    _trial(tmp_path, "fixed", bound, ["at"])                     # e.g. the fixed protocol 'at'
    assert dataset_bounds(tmp_path, ["fixed"])["uar"]["mean"] == pytest.approx(0.8)
    _trial(tmp_path, "rate", bound, ["eta0.3"])                  # a condition the bound lacks
    assert "mean" not in dataset_bounds(tmp_path, ["rate"])["uar"]


def test_metrics_csv_has_the_bound_rows(tmp_path):
    per_trial = {"seed0": TRIAL}
    write_csv(tmp_path / "m.csv", per_trial, summarize_trials([TRIAL]), BOUND)
    rows = list(csv.DictReader(io.StringIO((tmp_path / "m.csv").read_text())))
    bound = [r for r in rows if r["trial"] == "bayes_bound"]
    assert [(r["condition"], r["metric"], float(r["value"])) for r in bound] == \
        [("a", "uar", 0.61), ("at", "uar", 0.7512), ("mean", "uar", 0.61)]
    write_csv(tmp_path / "plain.csv", per_trial, summarize_trials([TRIAL]))
    assert "bayes_bound" not in (tmp_path / "plain.csv").read_text()


def _entry(name: str, bound: dict | None) -> Entry:
    results = {"trials": {"seed0": TRIAL}, "summary": summarize_trials([TRIAL]), "metrics_info": {}}
    if bound:
        results["bayes_bound"] = bound
    return Entry(f"{name}.yaml", None, name, None, results)


def test_comparison_table_csv_and_plot_show_the_bound(tmp_path):
    entries = [_entry("a", BOUND), _entry("b", BOUND)]
    header, rows = comparison_rows(entries, ["war", "uar"], None, {})
    assert rows[-1] == [BOUND_LABEL, "-", "- / 61.00", "- / 75.12", "- / 61.00"]
    assert len(rows) == 3
    plain = comparison_rows([_entry("a", None), _entry("b", None)], ["war", "uar"], None, {})[1]
    assert [r[0] for r in plain] == ["a", "b"]
    lines = list(csv.DictReader(io.StringIO(csv_text(entries, ["war", "uar"], None))))
    bound = [r for r in lines if r["method"] == "bayes_bound"]
    assert [(r["condition"], r["uar_mean"], r["war_mean"]) for r in bound] == \
        [("a", "0.610000", ""), ("at", "0.751200", ""), ("mean", "0.610000", "")]
    assert plot_metric(entries, tmp_path / "uar.png", "uar", {}).stat().st_size > 0
