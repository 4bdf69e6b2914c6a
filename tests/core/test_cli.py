"""The command line end to end (in-process)."""
from __future__ import annotations

import json

import pytest

from conftest import RECIPES
from mmtk.cli import main


def test_list_components_plugins_recipes(capsys):
    assert main(["list", "components", "--kind", "encoder"]) == 0
    out = capsys.readouterr().out
    assert "lstm" in out and "textcnn" in out and "basic" in out and "fuser" not in out
    assert main(["list", "components", "*conditions*", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["six_conditions"]
    assert main(["list", "plugins"]) == 0
    assert "basic" in capsys.readouterr().out
    assert main(["list", "recipes"]) == 0
    assert "baseline" in capsys.readouterr().out


def test_show_component(capsys):
    assert main(["show", "component", "encoder/lstm"]) == 0
    out = capsys.readouterr().out
    assert "bidirectional: bool  (default False)" in out
    assert "in_dim: int  (supplied by mmtk)" in out and "provider: basic" in out
    assert main(["show", "component", "encoder/lstmm"]) == 2
    assert "did you mean 'lstm'" in capsys.readouterr().err


@pytest.mark.slow
def test_run_dry_run_then_run_and_eval(tmp_path, capsys):
    base = ["--set", "train.epochs=1", "--set", "data.n_samples=200", "--set", f"output.dir={tmp_path}"]
    assert main(["run", str(RECIPES / "baseline.yaml"), "--dry-run", *base]) == 0
    assert "parameters" in capsys.readouterr().out
    assert not any(tmp_path.iterdir())                      # a dry run writes nothing
    assert main(["run", "baseline", "--seeds", "0", "1", "--quiet", *base]) == 0
    out = capsys.readouterr().out
    assert "UAR" in out and "mean" in out and "± " in out
    run_dir = next(tmp_path.glob("baseline/*"))
    assert main(["eval", str(run_dir), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert set(res["trials"]) == {"seed0", "seed1"}


def test_resume_refuses_overrides(tmp_path, capsys):
    assert main(["run", "--resume", str(tmp_path), "--set", "train.epochs=2"]) == 2
    assert "cannot change" in capsys.readouterr().err
    assert main(["run", "--resume", str(tmp_path)]) == 2
    assert "not an mmtk run directory" in capsys.readouterr().err
