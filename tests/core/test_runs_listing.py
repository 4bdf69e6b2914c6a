"""Runs are easy to find and continue: `mmtk runs`, statuses, latest / NAME@latest, and
`mmtk eval` refusing what is not a finished run with the real resume command."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import RECIPES, tiny_overrides
from mmtk.cli import main
from mmtk.errors import MmtkError
from mmtk.runs_listing import list_runs, require_finished, resolve_run_dir, resume_command, run_status


def fake_run(root: Path, name: str, stamp: str, done: tuple[str, ...] = ("seed0", "seed1"),
             finished: bool = True, failed: bool = False, status: dict | None = None) -> Path:
    """A run folder as mmtk lays it out, with two seeds and `done` trials finished."""
    d = root / name / stamp
    (d / "trials").mkdir(parents=True)
    (d / "recipe.yaml").write_text(yaml.safe_dump({"name": name, "seed": [0, 1], "data": {"folds": None},
                                                   "train": {"monitor": "uar"}}))
    (d / "environment.json").write_text(json.dumps(
        {"command": ["mmtk", "--plugins-dir", "my plugins", "run", "x.yaml", "--device", "cpu"]}))
    for key in done:
        (d / "trials" / key).mkdir()
        (d / "trials" / key / "metrics.json").write_text("{}")
    if finished:
        results = {"summary": {"test": {"a": {"uar": {"mean": 0.5, "std": 0.0, "n": 2}},
                                        "mean": {"uar": {"mean": 0.6427, "std": 0.008, "n": 2}}}},
                   "metrics_info": {"uar": {"percent": True}}, "trials": {}}
        if failed:
            results["failed"] = {"seed1": "non-finite loss"}
        (d / "metrics.json").write_text(json.dumps(results))
    if status is not None:
        (d / "status.json").write_text(json.dumps(status))
    return d


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_status_of_each_kind_of_run(tmp_path):
    host = platform.node()
    assert run_status(fake_run(tmp_path, "m", "20260101-000001")) == "finished"
    assert run_status(fake_run(tmp_path, "m", "20260101-000002", failed=True)) == "failed"
    assert run_status(fake_run(tmp_path, "m", "20260101-000003", finished=False,
                               status={"status": "failed", "error": "x"})) == "failed"
    assert run_status(fake_run(tmp_path, "m", "20260101-000004", finished=False)) == "interrupted"
    assert run_status(fake_run(tmp_path, "m", "20260101-000005", finished=False,
                               status={"status": "running", "pid": os.getpid(), "host": host})) == "running"
    # a killed process leaves 'running' behind: its pid is gone, so the run is interrupted
    assert run_status(fake_run(tmp_path, "m", "20260101-000006", finished=False,
                               status={"status": "running", "pid": dead_pid(), "host": host})) == "interrupted"


def test_listing_names_time_status_trials_and_headline(tmp_path):
    fake_run(tmp_path, "cmarr", "20260102-101500")
    fake_run(tmp_path, "baseline", "20260101-090000", done=("seed0",), finished=False)
    runs = list_runs(tmp_path)
    assert [(r.name, r.started, r.status, r.trials_done, r.trials_total) for r in runs] == [
        ("baseline", "2026-01-01 09:00:00", "interrupted", 1, 2),
        ("cmarr", "2026-01-02 10:15:00", "finished", 2, 2)]
    assert runs[1].headline == "test mean UAR 64.27 ± 0.80"
    assert runs[0].headline == ""
    assert [r.name for r in list_runs(tmp_path, "cm*")] == ["cmarr"]
    assert [r.name for r in list_runs(tmp_path, "base")] == ["baseline"]


def test_latest_and_name_at_latest(tmp_path):
    old = fake_run(tmp_path, "cmarr", "20260101-000000")
    new = fake_run(tmp_path, "cmarr", "20260103-000000")
    other = fake_run(tmp_path, "baseline", "20260102-000000")
    assert resolve_run_dir("latest", tmp_path) == new
    assert resolve_run_dir("cmarr@latest", tmp_path) == new
    assert resolve_run_dir("baseline@latest", tmp_path) == other
    assert resolve_run_dir(str(old), tmp_path) == old
    with pytest.raises(MmtkError, match="no run of 'mmin' under"):
        resolve_run_dir("mmin@latest", tmp_path)


def test_resume_command_keeps_plugins_dir_and_device(tmp_path):
    d = fake_run(tmp_path, "m", "20260101-000000", finished=False)
    assert resume_command(d) == f"mmtk --plugins-dir 'my plugins' run --resume {d} --device cpu"


def test_eval_refuses_an_unfinished_run_and_a_folder_that_is_not_a_run(tmp_path):
    d = fake_run(tmp_path, "m", "20260101-000000", done=("seed0",), finished=False)
    with pytest.raises(MmtkError) as err:
        require_finished(d)
    assert "did not finish (interrupted; 1 of 2 trial(s) done)" in str(err.value)
    assert f"continue it with: mmtk --plugins-dir 'my plugins' run --resume {d} --device cpu" in str(err.value)
    with pytest.raises(MmtkError, match="is not an mmtk run folder .*give one of them, or m@latest"):
        require_finished(tmp_path / "m")
    with pytest.raises(MmtkError, match="is not an mmtk run folder"):
        require_finished(tmp_path)
    assert require_finished(fake_run(tmp_path, "m", "20260102-000000", failed=True)) == "failed"


def test_cli_runs_lists_filters_and_says_when_nothing_matches(tmp_path, capsys):
    fake_run(tmp_path, "cmarr", "20260102-101500")
    assert main(["runs", "--runs-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "cmarr" in out and "finished" in out and "2/2" in out and "test mean UAR 64.27 ± 0.80" in out
    assert main(["runs", "zzz", "--runs-dir", str(tmp_path)]) == 1
    assert "no runs named like 'zzz'" in capsys.readouterr().err
    assert main(["runs", "--json", "--runs-dir", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out)[0]["status"] == "finished"


def test_cli_eval_of_an_unfinished_run_prints_the_resume_command(tmp_path, capsys):
    d = fake_run(tmp_path, "m", "20260101-000000", finished=False)
    assert main(["eval", "m@latest", "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "did not finish" in err and f"run --resume {d}" in err and "Traceback" not in err


@pytest.mark.slow
def test_a_real_run_is_listed_evaluated_and_resumed_by_name_at_latest(tmp_path, capsys):
    runs = tmp_path / "runs"
    tiny = [a for o in tiny_overrides(2) + ["data.n_test=500"] for a in ("--set", o)]   # listed, not scored
    assert main(["run", str(RECIPES / "baseline.yaml"), *tiny, "--set", f"output.dir={runs}", "--quiet"]) == 0
    capsys.readouterr()
    (run_dir,) = list((runs / "baseline").iterdir())
    assert json.loads((run_dir / "status.json").read_text())["status"] == "finished"
    assert main(["runs", "--runs-dir", str(runs)]) == 0
    assert "finished" in capsys.readouterr().out
    assert main(["eval", "baseline@latest", "--runs-dir", str(runs)]) == 0
    assert f"results: {run_dir}" in capsys.readouterr().out
    assert main(["run", "--resume", "latest", "--runs-dir", str(runs), "--quiet"]) == 0
    assert main(["audit", "baseline@latest", "--runs-dir", str(runs)]) == 0
    assert f"{run_dir}: OK" in capsys.readouterr().out
