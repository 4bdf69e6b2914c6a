"""The model's part of the thread policy (mmtk.thread_probe): which counts are tried, how the
fastest is picked, and that probing a stage's model changes nothing the run computes."""
from __future__ import annotations

import json
import time

import pytest
import torch

from conftest import RECIPES, prepare, tiny_overrides
from mmtk import thread_probe, threads
from mmtk.run import Run
from mmtk.rundir import load_torch


@pytest.fixture(autouse=True)
def fresh_cache():
    thread_probe.clear_cache()
    before = torch.get_num_threads()
    yield
    thread_probe.clear_cache()
    torch.set_num_threads(before)


@pytest.mark.parametrize("limit, expected", [(1, [1]), (2, [1, 2]), (3, [1, 2, 3]), (6, [1, 2, 4, 6]),
                                             (8, [1, 2, 4, 8])])
def test_candidates_double_up_to_the_limit(limit, expected):
    assert thread_probe.candidates(limit) == expected


@pytest.mark.parametrize("ms, expected", [
    ({1: [10.0], 2: [9.5]}, 1),                  # 5 % faster is within the probe's noise: keep one
    ({1: [10.0], 2: [8.0]}, 2),                  # 20 % faster
    ({1: [10.0], 2: [8.0], 4: [7.5]}, 2),        # 4 is only 6 % faster than 2
    ({1: [10.0], 2: [11.0], 4: [5.0]}, 4),       # 2 loses, 4 wins by half
    ({1: [3.0], 2: [4.0]}, 1),                   # the small-MLP case: more threads are slower
    ({1: [10.0, 10.0, 10.0], 2: [7.0, 12.0, 7.0]}, 1),   # a clear median, but one round lost
    ({1: [10.0, 30.0, 10.0], 2: [8.0, 25.0, 8.0]}, 2),   # a noisy round that every count felt
    ({1: [10.0, 10.0, 10.0], 2: [1.0, 9.9, 9.9]}, 1),    # one lucky round does not carry it
])
def test_choose_count_takes_more_threads_only_for_a_clear_gain(ms, expected):
    assert thread_probe.choose_count(ms) == expected


def test_measure_times_each_count_and_settle_caches_per_model():
    calls = {1: 0, 2: 0}

    def step():  # a "model" that is three times faster on 2 threads
        n = torch.get_num_threads()
        calls[n] += 1
        time.sleep(0.006 if n == 1 else 0.002)

    result = thread_probe.settle("model-a", 2, lambda: step)
    assert result.count == 2 and torch.get_num_threads() == 2 and not result.cached
    assert result.ms_per_step[1] > 2 * result.ms_per_step[2]   # medians of the rounds
    assert calls[1] == calls[2] >= 2 + thread_probe.ROUNDS    # warm-up and alternating rounds alike
    torch.set_num_threads(1)
    again = thread_probe.settle("model-a", 2, lambda: pytest.fail("a cached model is not copied or re-timed"))
    assert again.cached and again.count == 2 and torch.get_num_threads() == 2
    assert "measured earlier" in again.note(2) and "measured on this model" in result.note(2)


def _execute(system, tmp_path, name, recipe, count, monkeypatch, fake_ms=None):
    """Run a tiny recipe either with ``--threads count`` or under auto forced to offer two
    threads, with the probe's timings replaced by ``fake_ms`` (its steps still run)."""
    if fake_ms is not None:
        real_measure = thread_probe.measure

        def measure(step, counts):
            real_measure(step, counts)   # the real steps on the copy: they must change nothing
            return fake_ms
        monkeypatch.setattr(thread_probe, "measure", measure)
        monkeypatch.setattr(threads, "choose", lambda setting, jobs=1: threads.ThreadChoice(2, "auto", "test"))
    events = []
    # 500 test samples (not 10,000): the runs are compared bit for bit, not scored
    tree = prepare(system, RECIPES / recipe, tmp_path / name, tiny_overrides(3) + ["data.n_test=500"])
    run = Run.create(tree, system, threads="auto" if fake_ms is not None else count,
                     progress=lambda event, **info: events.append((event, info)))
    results = run.execute()
    monkeypatch.undo()
    trial = run.directory / "trials" / "seed0"
    history = json.loads(next(trial.glob("history-*.json")).read_text())
    model = load_torch(trial / "model.pt")
    notes = [n for e, i in events if e == "stage_start" for n in i.get("notes") or ()]
    return results, history, model, notes


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["baseline.yaml", "cmarr.yaml"])
def test_a_probed_run_trains_exactly_as_one_given_the_chosen_count(system, tmp_path, monkeypatch, recipe):
    probed, history, model, notes = _execute(system, tmp_path, "probed", recipe, None, monkeypatch,
                                             fake_ms={1: [1.0], 2: [5.0]})
    given, given_history, given_model, given_notes = _execute(system, tmp_path, "given", recipe, 1, monkeypatch)
    assert [r["threads"] for r in history] == [1, 1, 1]          # the chosen count, recorded per epoch
    assert any(n.startswith("threads: 1 of 2") for n in notes)   # and said at the stage's start
    assert not any(n.startswith("threads:") for n in given_notes)  # a given count is not probed
    assert probed["summary"] == given["summary"]                 # bit for bit: the probe moved nothing
    assert [{k: v for k, v in r.items() if k != "train_seconds"} for r in history] == \
           [{k: v for k, v in r.items() if k != "train_seconds"} for r in given_history]
    assert all(torch.equal(model[k], given_model[k]) for k in model)


@pytest.mark.slow
def test_the_probe_can_choose_more_threads(system, tmp_path, monkeypatch):
    _, history, _, notes = _execute(system, tmp_path, "two", "baseline.yaml", None, monkeypatch,
                                    fake_ms={1: [5.0], 2: [1.0]})
    assert [r["threads"] for r in history] == [2, 2, 2]
    assert any(n.startswith("threads: 2 of 2") for n in notes)


def test_no_probe_when_only_one_thread_is_offered(system, tmp_path, monkeypatch):
    monkeypatch.setattr(thread_probe, "measure", lambda step, counts: pytest.fail("probed one core"))
    monkeypatch.setattr(threads, "choose", lambda setting, jobs=1: threads.ThreadChoice(1, "auto", "test"))
    tree = prepare(system, RECIPES / "baseline.yaml", tmp_path, tiny_overrides(1))
    run = Run.create(tree, system, threads="auto")
    run.execute()
    history = json.loads(next(run.directory.rglob("history-*.json")).read_text())
    assert [r["threads"] for r in history] == [1]


class Interrupt(Exception):
    pass


@pytest.mark.slow
def test_a_resumed_stage_keeps_the_count_its_epochs_ran_with(system, tmp_path, monkeypatch):
    monkeypatch.setattr(thread_probe, "measure", lambda step, counts: {1: 5.0, 2: 1.0})
    monkeypatch.setattr(threads, "choose", lambda setting, jobs=1: threads.ThreadChoice(2, "auto", "test"))

    def kill_after_one_epoch(event, **info):
        if event == "epoch_end" and info["epoch"] == 1:
            raise Interrupt

    over = tiny_overrides(3) + ["train.patience=null", "train.checkpoint_seconds=0"]
    run = Run.create(prepare(system, RECIPES / "baseline.yaml", tmp_path, over), system, threads="auto",
                     progress=kill_after_one_epoch)
    with pytest.raises(Interrupt):
        run.execute()
    # the resumed stage is not probed again (a probe now could pick another count)
    monkeypatch.setattr(thread_probe, "measure", lambda step, counts: pytest.fail("re-probed on resume"))
    events = []
    Run.resume(run.directory, system, threads="auto",
               progress=lambda event, **info: events.append((event, info))).execute()
    history = json.loads((run.directory / "trials/seed0/history-main.json").read_text())
    assert [r["threads"] for r in history] == [2, 2, 2]
    notes = [n for e, i in events if e == "stage_start" for n in i.get("notes") or ()]
    assert "threads: 2, as this stage's earlier epochs ran" in notes
