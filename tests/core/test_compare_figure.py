"""mmtk compare's figure (grouped bars per condition, one colour per method, error bars =
CI or std) and its compact terminal table (fits in 120 columns)."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import control_data, hide_matplotlib
from mmtk.compare import Entry
from mmtk.compare_figure import bar_values, draw_condition_figure
from mmtk.compare_stats import ComparisonStats
from mmtk.compare_tables import print_comparison, shown_metrics
from mmtk.metrics import summarize_trials

mpimg = pytest.importorskip("matplotlib.image")

CONDS = ["a", "t", "v", "at", "av", "tv", "atv", "mean"]
TAB10 = [(31, 119, 180), (255, 127, 14), (44, 160, 44)]   # matplotlib's first three colours


def entry(name: str, level: float, spread: float = 0.02, conds: list[str] = CONDS) -> Entry:
    trials = [{"test": {c: {"war": level + 0.01 * i + spread * s, "uar": level + 0.02 * i + spread * s}
                        for i, c in enumerate(conds)}} for s in (-1, 0, 1)]
    results = {"trials": {}, "summary": summarize_trials(trials), "metrics_info": {}}
    return Entry(f"{name}.yaml", None, name, None, results)


def stats_for(entries: list[Entry]) -> ComparisonStats:
    ci = {e.name: {"uar": {c: (s["uar"]["mean"] - 0.05, s["uar"]["mean"] + 0.03)
                           for c, s in e.results["summary"]["test"].items()}} for e in entries}
    return ComparisonStats(entries[0].name, "uar", 500, 0, 0.05, ci, [])


def test_bar_values_use_the_ci_when_there_are_statistics_else_the_std():
    entries = [entry("baseline", 0.55), entry("cmarr", 0.60)]
    conds, means, errors, what = bar_values(entries, "uar", {})
    assert conds == CONDS and list(means) == ["baseline", "cmarr"]
    assert means["cmarr"][0] == pytest.approx(60.0) and what == "± 1 std over trials"
    assert errors["cmarr"][0] == pytest.approx((2.0, 2.0))           # std of 0.58, 0.60, 0.62 in points
    conds, means, errors, what = bar_values(entries, "uar", {}, stats_for(entries))
    assert what == "95 % bootstrap CI of the mean" and errors["baseline"][3] == pytest.approx((5.0, 3.0))
    seed_t = stats_for(entries)
    seed_t.test = "seed-t"
    assert bar_values(entries, "uar", {}, seed_t)[3] == "95 % t CI of the mean over seeds"   # names the test


def test_every_method_has_its_own_colour_beyond_twenty():
    import matplotlib.pyplot as plt

    from mmtk.compare_figure import method_colours
    for n in (3, 10, 11, 20, 25, 60):
        colours = method_colours(plt, n)
        assert len(colours) == n and len(set(colours)) == n


def test_figure_is_a_real_picture_with_one_colour_per_method(tmp_path):
    entries = [entry("baseline", 0.55), entry("zero-impute", 0.60), entry("cmarr", 0.52)]
    path = draw_condition_figure(entries, tmp_path / "comparison-uar.png", "uar", {}, stats_for(entries),
                                 bound={"a": 0.7, "mean": 0.75})
    pixels = mpimg.imread(path)
    assert pixels.ndim == 3 and pixels.shape[1] >= 800 and pixels.shape[0] >= 300
    assert pixels.var() > 0
    rgb = (pixels[..., :3] * 255).round().astype(int).reshape(-1, 3)
    colours = {tuple(c) for c in np.unique(rgb, axis=0)}
    assert len(colours) > 10
    for colour in TAB10:                                   # every method's bars are there
        share = (np.abs(rgb - colour).max(axis=1) <= 2).mean()
        assert share > 0.005, colour


def test_without_matplotlib_the_figure_is_not_silently_skipped(tmp_path, monkeypatch, capsys):
    hide_matplotlib(monkeypatch)
    assert draw_condition_figure([entry("a", 0.5)], tmp_path / "x.png", "uar", {}) is None
    err = capsys.readouterr().err
    assert "no comparison figure (x.png)" in err and "pip install 'mmtk[plot]'" in err and err.count("\n") == 1


def test_terminal_table_fits_in_120_columns_and_shows_uar_by_default(tmp_path, capsys):
    entries = [entry(name, 0.5 + 0.01 * i) for i, name in enumerate(
        ["baseline", "zero-impute", "mean-impute", "cmarr_no_refine", "mmin-utterance"])]
    assert shown_metrics(entries) == ["war", "uar"][1:]            # the second evaluated: UAR
    paths = {"markdown": tmp_path / "comparison.md"}
    for metrics in (["uar"], ["war", "uar"]):
        print_comparison(entries, paths, False, metrics, stats_for(entries))
        table = capsys.readouterr().out.split("\n\n")[0].splitlines()
        assert max(len(line) for line in table) <= 120, table
        assert table[0].startswith(" / ".join(m.upper() for m in metrics) + " on test")
        assert any(line.startswith("cmarr_no_refine") for line in table)
    assert "(full cells in comparison.md)" in table[0]
    few = [entry("baseline", 0.5, conds=["a", "at", "mean"]), entry("cmarr", 0.6, conds=["a", "at", "mean"])]
    print_comparison(few, paths, False, ["uar"], stats_for(few))
    wide = capsys.readouterr().out.splitlines()
    assert wide[0] == "UAR on test, mean ± std [95 % CI]"           # room for the CIs: they are shown
    assert wide[3].split("  ")[2] == "50.00 ± 2.00 [45.00, 53.00]"


@pytest.mark.slow
def test_compare_writes_the_figure_next_to_the_table(tmp_path, capsys):
    from conftest import RECIPES
    from mmtk.cli import main

    other = tmp_path / "other.yaml"
    other.write_text(f"extends: {RECIPES / 'baseline.yaml'}\nname: small-head\n"
                     "model:\n  head: {type: mlp, hidden: [16]}\n")
    assert main(["compare", str(RECIPES / "baseline.yaml"), str(other), "--seeds", "0", "1", "--bootstrap", "200",
                 "--jobs", "2", "--set", "train.epochs=1", "--set", control_data(200), "--set", "data.n_test=500",
                 "--set", f"output.dir={tmp_path / 'runs'}"]) == 0   # a figure, not precise scores
    out = capsys.readouterr().out
    (folder,) = (tmp_path / "runs" / "compare").iterdir()
    assert f"plot: {folder / 'comparison-uar.png'}" in out and (folder / "comparison.md").is_file()
    assert out.startswith("UAR on test, ")
    assert max(len(line) for line in out.split("\n\n")[0].splitlines()) <= 120
    pixels = mpimg.imread(folder / "comparison-uar.png")
    assert pixels.var() > 0 and len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 10
