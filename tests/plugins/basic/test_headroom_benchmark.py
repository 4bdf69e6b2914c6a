"""benchmarks/headroom.py: its grid, setting selection, and a tiny end-to-end run that writes
the table (paired differences, oracle reconstruction, Bayes bound), the CSV and the plot."""
from __future__ import annotations

import csv
import importlib.util
import io
import sys
from pathlib import Path

import pytest

from mmtk import MmtkError
from mmtk.recipe import resolve

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "headroom.py"


@pytest.fixture(scope="module")
def headroom():
    spec = importlib.util.spec_from_file_location("headroom", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["headroom"] = module   # its dataclass resolves annotations through sys.modules
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("headroom", None)


def test_grid_and_selection(headroom):
    grid = headroom.all_settings()
    assert len(grid) == 25 and len({s.name for s in grid}) == 25
    assert grid[-1].name == "control-synthetic" and "type: synthetic" in grid[-1].data_block(100)
    chosen = headroom.select_settings(["L200-rho1-*"])
    assert len(chosen) == 4 and all(s.labels == 200 and s.rho == 1 for s in chosen)
    assert [s.name for s in headroom.select_settings(headroom.QUICK_SETTINGS)] == sorted(
        headroom.QUICK_SETTINGS, key=[s.name for s in grid].index)
    with pytest.raises(MmtkError, match="matches no setting"):
        headroom.select_settings(["L999-*"])


def test_every_setting_resolves_for_every_default_recipe(headroom, system):
    setting = headroom.Setting(200, 1.0, 3000, 0.5)
    for recipe in headroom.DEFAULT_RECIPES:
        tree = resolve(recipe, system, [f"data={setting.data_block(500)}"])
        data = tree.data.dataset
        assert data.type == "latent_views" and data.params["complete_fraction"] == 0.5
    args = headroom.parse_args(["--quick"])
    assert args.seeds == [0, 1] and args.epochs_override == ["train.epochs=3"] and args.n_test == 2000


@pytest.mark.slow
def test_a_tiny_benchmark_writes_its_table_csv_and_plot(headroom, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    code = headroom.main(["--recipes", "modality-dropout", "zero-impute", "--settings", "L200-rho0-pool0-miss0",
                          "--seeds", "0", "1", "--epochs", "1", "--n-test", "300", "--bootstrap", "200",
                          "--set", "model.latent_dim=16", "--out", str(tmp_path)])
    assert code == 0
    rows = list(csv.DictReader(io.StringIO((tmp_path / "headroom.csv").read_text())))
    methods = [r["method"] for r in rows]
    assert methods == ["modality-dropout", "zero-impute", "oracle reconstruction (modality-dropout on atv)",
                       "Bayes bound (six-condition mean)", "Bayes bound (atv)"]
    zero = rows[1]
    assert float(zero["ci_low"]) <= float(zero["diff"]) <= float(zero["ci_high"]) and zero["p_holm"]
    assert float(rows[3]["uar_mean"]) == pytest.approx(0.6991, abs=1e-3)    # the default task's bound
    assert (tmp_path / "headroom.png").stat().st_size > 0
    md = (tmp_path / "headroom.md").read_text()
    assert "| L200-rho0-pool0-miss0 | zero-impute |" in md
    # every seed draws its own test set: the seed-level t-test, so no bootstrap floor to warn about
    assert "paired t-test over the 2 seeds" in md and "Note: with B" not in md
    # a second call reuses the finished runs (nothing retrained: same rows)
    headroom.main(["--recipes", "modality-dropout", "zero-impute", "--settings", "L200-rho0-pool0-miss0",
                   "--seeds", "0", "1", "--epochs", "1", "--n-test", "300", "--bootstrap", "200",
                   "--set", "model.latent_dim=16", "--out", str(tmp_path)])
    assert len(list((tmp_path / "runs" / "L200-rho0-pool0-miss0" / "modality-dropout").iterdir())) == 1
    summary = (tmp_path / "headroom-summary.md").read_text()
    assert "| zero-impute − modality-dropout |" in summary and "| L200-rho0-pool0-miss0 |" in summary


def test_the_summary_has_a_row_per_method_and_a_column_per_setting(headroom):
    def method(setting, name, uar, diff=None, significant=False):
        return {"setting": setting, "method": name, "uar_mean": uar, "diff": diff, "significant": significant}
    rows = []
    for s, (ref, d, sig, bound) in {"A": (0.50, 0.021, True, 0.66), "B": (0.55, -0.004, False, 0.70)}.items():
        rows += [method(s, "dropout", ref), method(s, "cmarr", ref + d, d, sig),
                 method(s, "oracle reconstruction (dropout on atv)", 0.6, 0.6 - ref),
                 method(s, "Bayes bound (six-condition mean)", bound, bound - ref)]
    lines = headroom.summary_markdown(rows).splitlines()
    assert lines[0] == "| method | A | B |"
    assert lines[2] == "| dropout (UAR) | 50.00 | 55.00 |"
    assert lines[3] == "| cmarr − dropout | +2.10 * | -0.40 |"
    assert lines[4] == "| oracle reconstruction − reference | +10.00 | +5.00 |"
    assert lines[5] == "| Bayes bound (six-condition mean UAR) | 66.00 | 70.00 |"
