"""mmtk compare: one protocol, one table; refusals name the differing field; failures reported;
paired differences to a reference with CIs, p-values and Holm marks; unpaired rows refused."""
from __future__ import annotations

import copy
import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import RECIPES, control_data, fails_with
from mmtk.builder import Builder
from mmtk.cli import main
from mmtk.compare import Entry, StatsOptions, check_same_protocol, statistics
from mmtk.compare_stats import check_options, load_paired, require_predictions
from mmtk.compare_tables import write_outputs
from mmtk.errors import MmtkError
from mmtk.metrics import describe, summarize_trials
from mmtk.predictions import SplitPredictions, TrialPredictions, save_predictions, score_predictions
from mmtk.rundir import write_json
from mmtk.threads import ThreadChoice


def test_refuses_different_protocols(system, tmp_path):
    from mmtk.recipe import resolve
    a = resolve(RECIPES / "baseline.yaml", system)
    b = resolve(RECIPES / "baseline.yaml", system, ["data.labels=500"])
    with pytest.raises(MmtkError, match=r"differ in data.labels \(200 vs 500\)"):
        check_same_protocol([Entry("a.yaml", a, "a"), Entry("b.yaml", b, "b")], system.registry)
    c = resolve(RECIPES / "baseline.yaml", system, ["missing.eval={type: fixed, condition: at}"])
    with pytest.raises(MmtkError, match="missing.eval.type"):
        check_same_protocol([Entry("a.yaml", a, "a"), Entry("c.yaml", c, "c")], system.registry)


@pytest.mark.slow
def test_compare_runs_reuses_and_reports_failures(tmp_path, capsys):
    other = tmp_path / "small-head.yaml"
    other.write_text(f"extends: {RECIPES / 'baseline.yaml'}\nname: small-head\n"
                     "model:\n  head: {type: mlp, hidden: [16]}\n")
    broken = tmp_path / "broken.yaml"
    broken.write_text(f"extends: {RECIPES / 'baseline.yaml'}\nname: broken\n"
                      "train:\n  optimizer: {type: adam, lr: 1.0e+30}\n  grad_clip: null\n")
    # 500 test samples, not control_data's 10,000: no score is asserted, only what runs and is reused
    common = ["--set", "train.epochs=1", "--set", control_data(200), "--set", "data.n_test=500",
              "--set", f"output.dir={tmp_path / 'runs'}", "--seeds", "0", "1"]
    code = main(["compare", str(RECIPES / "baseline.yaml"), str(other), str(broken), "--jobs", "2", "--json", *common])
    out = json.loads(capsys.readouterr().out)
    assert code == 1                                          # one run failed ...
    assert out["runs"]["broken"]["error"] and "non-finite loss" in out["runs"]["broken"]["error"]
    assert out["runs"]["small-head"]["summary"]["test"]["mean"]["uar"]["n"] == 2   # ... the others finished
    table = (tmp_path / "runs").glob("compare/*/comparison.md")
    text = next(table).read_text()
    assert "| baseline |" in text and "| small-head |" in text and "failed" in text
    first_dir = out["runs"]["baseline"]["directory"]
    assert main(["compare", str(RECIPES / "baseline.yaml"), str(other), "--json", *common]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["runs"]["baseline"]["directory"] == first_dir   # finished run reused, not redone
    # sample_seed: trial, so each seed has its own test set: auto picks the seed-level t-test
    assert again["statistics"]["test"] == "seed-t" and again["statistics"]["trials"] == 2
    assert main(["compare", str(RECIPES / "baseline.yaml"), str(other), "--json", "--stat-test", "bootstrap",
                 *common]) == 0
    forced = json.loads(capsys.readouterr().out)["statistics"]
    assert forced["test"] == "bootstrap" and forced["test_reason"] == "requested with --stat-test bootstrap"


# ------------------------------------------------------------------ paired statistics ---
CONDS, MEAN_OVER, K = ["a", "t", "at"], ["a", "t"], 4


def fake_split(labels, accuracy: float, rng, ids=None) -> SplitPredictions:
    """Test predictions right on a random ``accuracy`` share of the samples, per condition."""
    n = len(labels)
    correct = rng.random((len(CONDS), n)) < accuracy
    pred = np.where(correct, labels, (labels + rng.integers(1, K, (len(CONDS), n))) % K).astype(np.int64)
    mask = np.stack([np.tile([c != "t", c != "a"], (n, 1)) for c in CONDS])
    return SplitPredictions(ids or [f"s{i:03d}" for i in range(n)], labels, None, list(CONDS), list(MEAN_OVER),
                            mask, pred, None)


def fake_run(root: Path, name: str, splits: dict[str, SplitPredictions], metrics: dict) -> Entry:
    """A finished run folder with one predictions.npz per trial, its results scored from them."""
    run_dir = root / name / "20260101-000000"
    per_trial = {}
    for key, sp in splits.items():
        save_predictions(run_dir / "trials" / key / "predictions.npz",
                         TrialPredictions(["audio", "text"], "labels", K, [], {"test": sp}))
        write_json(run_dir / "trials" / key / "data.json", {"fold": None})   # as the trainer writes it
        per_trial[key] = {"test": score_predictions(sp, metrics, K)}
    results = {"trials": per_trial, "summary": summarize_trials(list(per_trial.values())),
               "metrics_info": describe(metrics)}
    return Entry(f"{name}.yaml", None, name, run_dir, results)


@pytest.fixture
def three_methods(system, tmp_path):
    """a (reference), b (15 points better), c (a's very predictions), seeds 0-2, 300 samples."""
    metrics = Builder(system.registry).metrics(["war", "uar"])
    rng = np.random.default_rng(0)
    labels = rng.integers(0, K, 300)
    a = {f"seed{s}": fake_split(labels, 0.55, rng) for s in range(3)}
    b = {k: fake_split(labels, 0.70, rng) for k in a}
    return [fake_run(tmp_path, "a", a, metrics), fake_run(tmp_path, "b", b, metrics),
            fake_run(tmp_path, "c", a, metrics)]


def test_difference_tables_in_markdown_and_csv(system, tmp_path, three_methods):
    stats, note = statistics(three_methods, system.registry, ["war", "uar"], StatsOptions(n_boot=600))
    assert note == "" and stats.reference == "a" and stats.metric == "uar"   # default: the second shown
    paths = write_outputs(three_methods, tmp_path, ["war", "uar"], stats)
    md = paths["markdown"].read_text()
    assert "Note: with B" not in md
    assert "| method | n | a | t | at | mean |" in md and "### b − a" in md and "### c − a" in md
    b_mean = next(line for line in md.split("### b − a")[1].splitlines() if line.startswith("| mean |"))
    assert b_mean.endswith("| 0.003 | 0.027 | * |")     # p = 2 / (B + 1): no draw at or below 0; Holm x 8
    c_mean = next(line for line in md.split("### c − a")[1].splitlines() if line.startswith("| mean |"))
    assert "| +0.00 | [0.00, 0.00] | 1.000 | 1.000 |  |" in c_mean      # identical predictions
    a_row = next(line for line in md.splitlines() if line.startswith("| a | 3 |"))
    assert a_row.count("[") == 8                                          # a CI per metric and column
    rows = list(csv.DictReader(io.StringIO(paths["csv"].read_text())))
    diffs = [r for r in rows if r["diff"]]
    assert len(diffs) == 8 and {r["method"] for r in diffs} == {"b", "c"}  # 2 methods x (3 conditions + mean)
    b_rows = [r for r in diffs if r["method"] == "b"]
    assert all(r["significant"] == "true" and float(r["ci_low"]) > 0 for r in b_rows)
    assert all(float(r["p_holm"]) >= float(r["p"]) for r in diffs)
    summary = [r for r in rows if not r["diff"]]
    assert len(summary) == 12 and all(float(r["uar_ci_low"]) <= float(r["uar_mean"]) <= float(r["uar_ci_high"])
                                      for r in summary)


def test_too_few_draws_for_the_comparisons_are_reported(system, tmp_path, three_methods):
    stats, _ = statistics(three_methods, system.registry, ["war", "uar"], StatsOptions(n_boot=300))
    md = write_outputs(three_methods, tmp_path, ["war", "uar"], stats)["markdown"].read_text()
    assert "with B = 300 draws no Holm-adjusted p can fall below 0.053; rerun with --bootstrap 640" in md
    assert not any(d.significant for d in stats.differences)


def test_reference_option_and_failed_reference(system, three_methods):
    stats, _ = statistics(three_methods, system.registry, ["war", "uar"],
                          StatsOptions(reference="b", metric="war", n_boot=50))
    assert stats.reference == "b" and stats.metric == "war"
    assert [d.method for d in stats.differences][::4] == ["a", "c"]
    assert all(d.diff < 0 for d in stats.differences)
    three_methods[1].results, three_methods[1].error = None, "exit status 1"
    stats, note = statistics(three_methods, system.registry, ["war", "uar"], StatsOptions(reference="b"))
    assert stats is None and note == "the reference 'b' failed"


def test_bootstrap_zero_keeps_the_plain_table(system, tmp_path, three_methods):
    stats, note = statistics(three_methods, system.registry, ["war", "uar"], StatsOptions(n_boot=0))
    paths = write_outputs(three_methods, tmp_path, ["war", "uar"], stats, note)
    assert paths["csv"].read_text().splitlines()[0] == "method,condition,war_mean,war_std,uar_mean,uar_std,n"
    assert "No paired statistics: turned off (--bootstrap 0)" in paths["markdown"].read_text()


def _pair(system, tmp_path, change) -> None:
    """Run load_paired on a and a copy of a whose seed1 predictions ``change`` altered."""
    metrics = Builder(system.registry).metrics(["war", "uar"])
    rng = np.random.default_rng(1)
    labels = rng.integers(0, K, 20)
    a = {k: fake_split(labels, 0.6, rng) for k in ("seed0", "seed1")}
    b = {k: copy.deepcopy(v) for k, v in a.items()}
    change(b)
    runs = {e.name: (e.run_dir, e.results) for e in (fake_run(tmp_path, "a", a, metrics),
                                                     fake_run(tmp_path, "b", b, metrics))}
    load_paired(runs)


def _set(obj, **kw):
    for k, v in kw.items():
        setattr(obj, k, v)


@pytest.mark.parametrize("change, message", [
    (lambda b: _set(b["seed1"], ids=b["seed1"].ids[::-1]),
     r"'b' with 'a' in trial seed1: their test samples differ \(20 vs 20 samples; position 0 is 's019' vs 's000'\)"),
    (lambda b: [_set(b["seed1"], ids=b["seed1"].ids[:19], labels=b["seed1"].labels[:19], mask=b["seed1"].mask[:, :19],
                     pred=b["seed1"].pred[:, :19])],
     r"trial seed1: their test samples differ \(19 vs 20 samples; position 19 is 'nothing' vs 's019'\)"),
    (lambda b: _set(b["seed0"], labels=(b["seed0"].labels + 1) % K),
     "trial seed0: sample 's000' has a different label"),
    (lambda b: b["seed1"].mask.__setitem__((1, 3, 0), True),
     "trial seed1: the evaluation masks of condition 't' differ \\(first at sample 's003'\\)"),
    (lambda b: _set(b["seed0"], mean_over=["a"]), "trial seed0: their evaluation conditions differ"),
    (lambda b: b.pop("seed1"), r"their finished trials differ \(seed0 vs seed0, seed1\)"),
])
def test_unpaired_rows_are_refused(system, tmp_path, change, message):
    with pytest.raises(MmtkError, match=message) as info:
        _pair(system, tmp_path, change)
    assert "cannot pair 'b' with 'a'" in str(info.value)


def test_runs_without_predictions_and_bad_options_are_refused(tmp_path, three_methods):
    (three_methods[1].run_dir / "trials" / "seed2" / "predictions.npz").unlink()
    with pytest.raises(MmtkError, match=r"'b': its finished run .* has no per-sample predictions .*--no-reuse.*"
                                        r"--bootstrap 0"):
        require_predictions("b", three_methods[1].run_dir, three_methods[1].results)
    with pytest.raises(MmtkError, match=r"--reference bb: not one of the compared methods \(a, b\) \(did you mean 'b'"):
        check_options(["a", "b"], ["war", "uar"], StatsOptions(reference="bb"))
    with pytest.raises(MmtkError, match=r"--stat-metric uarr: not among .* \(did you mean 'uar'"):
        check_options(["a", "b"], ["war", "uar"], StatsOptions(metric="uarr"))


@pytest.mark.slow
def test_compare_cli_reports_paired_differences(tmp_path, capsys):
    other = tmp_path / "small-head.yaml"
    other.write_text(f"extends: {RECIPES / 'baseline.yaml'}\nname: small-head\n"
                     "model:\n  head: {type: mlp, hidden: [16]}\n")
    # 500 test samples (not 10,000): the tables' shape and consistency are asserted, not a score
    common = [str(RECIPES / "baseline.yaml"), str(other), "--set", control_data(300), "--set", "data.n_test=500",
              "--set", "train.epochs=1", "--set", f"output.dir={tmp_path / 'runs'}", "--seeds", "0", "1",
              "--bootstrap", "300"]
    assert main(["compare", *common, "--jobs", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    stats = out["statistics"]
    assert stats["reference"] == "baseline" and stats["metric"] == "uar" and stats["bootstrap"] == 300
    assert [d["condition"] for d in stats["differences"]] == ["a", "t", "v", "at", "av", "tv", "atv", "mean"]
    assert all(d["ci_low"] <= d["diff"] <= d["ci_high"] and d["p"] <= d["p_holm"] <= 1 for d in stats["differences"])
    folder = Path(out["table"]["markdown"]).parent
    md = (folder / "comparison.md").read_text()
    assert "### small-head − baseline" in md and "| condition | difference | 95 % CI | p | p (Holm) | sig. |" in md
    assert "| baseline | 2 |" in md
    assert sum(1 for line in (folder / "comparison.csv").read_text().splitlines() if line.startswith("small-head,")
               and line.endswith(("true", "false"))) == 8
    assert main(["compare", *common, "--reference", "small-head"]) == 0          # reused: plain output
    printed = capsys.readouterr().out
    assert "Paired differences to small-head" in printed and "baseline − small-head" in printed
    assert "Protocol cards agree: 2 trial(s) per row, selection on val" in md
    run = Path(out["runs"]["baseline"]["directory"])
    card = yaml.safe_load((run / "card.yaml").read_text())
    card["data"]["normalisation"] = "none"
    (run / "card.yaml").write_text(yaml.safe_dump(card))
    fails_with(capsys, ["compare", *common], "protocol cards differ in data.normalisation")
    card["data"]["normalisation"], card["test split"]["read while training"]["seed0"] = \
        "standardised with statistics of each fold's training split", 1
    (run / "card.yaml").write_text(yaml.safe_dump(card))
    fails_with(capsys, ["compare", *common], "'baseline' read its test split while training")
    (run / "trials" / "seed1" / "predictions.npz").unlink()
    fails_with(capsys, ["compare", *common], "'baseline'", "no per-sample predictions", "--no-reuse")


def test_thread_note_reads_the_counts_the_epochs_ran_with(tmp_path):
    from mmtk.compare_tables import thread_note

    (tmp_path / "environment.json").write_text(json.dumps({"threads": 2}))
    assert thread_note(tmp_path) == " (2 torch threads)"          # an older run: its environment
    for trial, counts in (("seed0", [1, 1]), ("seed1", [1])):
        (tmp_path / "trials" / trial).mkdir(parents=True)
        (tmp_path / "trials" / trial / "history-main.json").write_text(
            json.dumps([{"epoch": i + 1, "threads": c} for i, c in enumerate(counts)]))
    assert thread_note(tmp_path) == " (1 torch thread)"           # what the probe chose, not the ceiling
    (tmp_path / "trials" / "seed1" / "history-second.json").write_text(json.dumps([{"epoch": 1, "threads": 2}]))
    assert thread_note(tmp_path) == " (1–2 torch threads)"
    assert thread_note(tmp_path / "nothing") == ""


def test_a_run_with_failed_trials_is_not_reused(system, tmp_path):
    from mmtk.compare import find_finished_run
    from mmtk.recipe import resolve

    recipe = resolve(RECIPES / "baseline.yaml", system, [f"output.dir={tmp_path}"])
    run = tmp_path / recipe.name / "20260101-000000"
    run.mkdir(parents=True)
    (run / "recipe.yaml").write_text(yaml.safe_dump(recipe.tree), encoding="utf-8")
    (run / "metrics.json").write_text(json.dumps({"trials": {}, "failed": {"seed0": "BrokenProcessPool"}}))
    assert find_finished_run(recipe) is None        # its trials would be missing from a comparison
    (run / "metrics.json").write_text(json.dumps({"trials": {"seed0": {}}}))
    assert find_finished_run(recipe) == run


@pytest.mark.parametrize("setting, child, cap", [("auto", "auto", "1"), (1, "1", "1")])
def test_child_runs_get_auto_under_a_ceiling(monkeypatch, tmp_path, setting, child, cap):
    """Under auto each child run probes its own model up to its share of the cores (the
    ceiling travels as OMP_NUM_THREADS); a number is passed on as it is."""
    import mmtk.compare as compare_mod

    seen = []

    class FakeChild:
        def __init__(self, cmd, env, **_):
            seen.append((cmd, env))
            self.stdout, self.stderr, self.returncode = io.StringIO(json.dumps({"directory": str(tmp_path)})), [], 0

        def wait(self):
            return 0

    monkeypatch.setattr(compare_mod.subprocess, "Popen", FakeChild)
    monkeypatch.setattr(compare_mod, "choose_threads",
                        lambda setting, jobs: ThreadChoice(1, str(setting), "test"))
    entries = [Entry("a.yaml", None, "a"), Entry("b.yaml", None, "b")]
    compare_mod.run_entries(entries, [], 2, None, lambda e, msg: None, setting)
    for cmd, env in seen:
        assert cmd[cmd.index("--threads") + 1] == child and env["OMP_NUM_THREADS"] == cap
