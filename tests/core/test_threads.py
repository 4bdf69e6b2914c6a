"""The thread policy: what `auto` chooses, that the choice is applied and recorded, and that
results do not depend on the thread count beyond float noise."""
from __future__ import annotations

import argparse
import json

import pytest
import torch

from conftest import RECIPES, prepare, tiny_overrides
from mmtk import threads
from mmtk.cli import main
from mmtk.run import Run


@pytest.mark.parametrize("cores, load, jobs, expected", [
    (2, 0.0, 1, 2),     # idle machine: every core
    (2, 0.6, 1, 2),     # a little background work does not cost a core
    (2, 1.0, 1, 1),     # one core busy elsewhere
    (2, 7.5, 1, 1),     # overloaded: never fewer than one
    (16, 2.0, 4, 3),    # 14 idle cores split across 4 workers
    (16, 0.0, 32, 1),   # more workers than cores
])
def test_auto_counts_idle_cores_and_splits_them(cores, load, jobs, expected, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    choice = threads.choose("auto", jobs=jobs, cores=cores, load=load)
    assert choice.count == expected
    assert choice.setting == "auto" and f"{load:.2f} busy elsewhere" in choice.reason


def test_busy_cores_sees_processes_running_now():
    import multiprocessing as mp
    import time

    def spin():
        while True:
            pass

    quiet = threads.busy_cores()
    hogs = [mp.get_context("fork").Process(target=spin, daemon=True) for _ in range(2)]
    for h in hogs:
        h.start()
    try:
        time.sleep(0.3)
        busy = threads.busy_cores()
    finally:
        for h in hogs:
            h.terminate()
    assert busy >= 1.0 and busy >= quiet   # the two spinning processes are seen at once


def test_auto_never_exceeds_omp_num_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    choice = threads.choose("auto", cores=8, load=0.0)
    assert choice.count == 1 and "capped by OMP_NUM_THREADS=1" in choice.reason
    monkeypatch.setenv("OMP_NUM_THREADS", "16")   # a cap above the idle cores changes nothing
    assert threads.choose("auto", cores=8, load=0.0).count == 8
    monkeypatch.setenv("OMP_NUM_THREADS", "lots")  # not a number: ignored
    assert threads.choose("auto", cores=8, load=0.0).count == 8


def test_a_number_is_taken_as_given():
    assert threads.choose(3, jobs=4, cores=2, load=9.0).count == 3


@pytest.mark.parametrize("text, expected", [("auto", "auto"), ("1", 1), ("12", 12)])
def test_parse_setting(text, expected):
    assert threads.parse_setting(text) == expected


@pytest.mark.parametrize("text", ["0", "-1", "two", "1.5", ""])
def test_parse_setting_refuses(text):
    with pytest.raises(argparse.ArgumentTypeError):
        threads.parse_setting(text)


def test_recipe_threads_value_is_checked(system, tmp_path, capsys):
    code = main(["validate", str(RECIPES / "baseline.yaml"), "--set", "train.threads=0"])
    assert code == 2 and "threads" in capsys.readouterr().err


def _run(system, tmp_path, count):
    before = torch.get_num_threads()
    try:
        run = Run.create(prepare(system, RECIPES / "baseline.yaml", tmp_path / str(count),
                                 tiny_overrides(3)), system, threads=count)
        results = run.execute()
        applied = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    env = json.loads((run.directory / "environment.json").read_text())
    return results, applied, env


@pytest.mark.slow
def test_choice_is_applied_recorded_and_results_agree_across_counts(system, tmp_path):
    one, applied_one, env_one = _run(system, tmp_path, 1)
    two, applied_two, env_two = _run(system, tmp_path, 2)
    assert (applied_one, applied_two) == (1, 2)
    assert env_one["threads"] == 1 and env_one["thread_policy"][-1]["setting"] == "1"
    assert env_two["threads"] == 2
    # float noise only: a different summation order may flip a rare borderline prediction
    for cond, metrics in one["summary"]["test"].items():
        for name, value in metrics.items():
            assert value["mean"] == pytest.approx(two["summary"]["test"][cond][name]["mean"], abs=0.02), \
                (cond, name)


@pytest.mark.slow
def test_cli_threads_option_and_recipe_key(tmp_path):
    out = tmp_path / "runs"
    code = main(["run", str(RECIPES / "baseline.yaml"), "--quiet", "--threads", "1",
                 *[a for o in tiny_overrides(1) + ["data.n_test=500", f"output.dir={out}"] for a in ("--set", o)]])
    assert code == 0
    env = json.loads(next(out.rglob("environment.json")).read_text())
    assert env["threads"] == 1 and env["thread_policy"][0]["reason"] == "set by the recipe or --threads"


def test_a_finished_run_is_reused_whatever_its_thread_count():
    from mmtk.compare import _comparable

    one = {"name": "x", "train": {"epochs": 3, "threads": 1}, "stages": [{"train": {"threads": 2}}],
           "output": {"dir": "a"}}
    auto = {"name": "x", "train": {"epochs": 3, "threads": "auto"}, "stages": [{"train": {}}],
            "output": {"dir": "b"}}
    assert _comparable(one) == _comparable(auto)
    assert one["train"]["threads"] == 1 and one["stages"][0]["train"] == {"threads": 2}  # not modified
    assert _comparable(one) != _comparable({**auto, "train": {"epochs": 4}})
