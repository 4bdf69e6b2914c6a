"""The study's trial budget when workers on different machines (no shared lock) race for the
last trial: the later trial number is marked surplus and never runs."""
from __future__ import annotations

import optuna
import pytest

from mmtk.tune import workers
from mmtk.tune.study import BUDGET, SURPLUS, beyond_budget, tally

State = optuna.trial.TrialState


@pytest.fixture
def study():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    s = optuna.create_study(storage=optuna.storages.InMemoryStorage(), direction="maximize")
    s.set_user_attr(BUDGET, 2)
    return s


def test_beyond_budget_counts_only_earlier_trials_that_count(study):
    killed = study.ask()
    killed.set_user_attr("interrupted", "worker gone")
    study.tell(killed, state=State.FAIL)                 # a killed worker's trial does not count
    crashed = study.ask()
    crashed.set_user_attr("error", "boom")
    study.tell(crashed, state=State.FAIL)                # a crashed one does
    running, extra = study.ask(), study.ask()
    assert not beyond_budget(study, running.number, 2, optuna)
    assert beyond_budget(study, extra.number, 2, optuna)


def test_racing_machines_never_exceed_the_budget(study, tmp_path, monkeypatch):
    ran = []

    def fake_run_one(study_, storage, trial, setup, optuna_):
        ran.append(trial.number)
        study_.tell(trial, 1.0)

    monkeypatch.setattr(workers, "run_one", fake_run_one)
    study.tell(study.ask(), 0.5)                         # one of the two trials done already
    real_ask = study.ask
    other_machine = []

    def racing_ask(*args, **kwargs):
        # both machines counted 1 of 2 before either asked: the other machine's ask lands first
        if not other_machine:
            other_machine.append(real_ask())
        return real_ask(*args, **kwargs)

    monkeypatch.setattr(study, "ask", racing_ask)
    workers.work(study, None, None, tmp_path / "machine-a", optuna)
    assert ran == []                                     # this machine's trial was surplus
    trials = study.get_trials(deepcopy=False)
    assert [t.number for t in trials] == [0, 1, 2]
    assert trials[2].state == State.FAIL and SURPLUS in trials[2].user_attrs and not trials[2].params
    t = tally(study, optuna)
    assert (t.counted, t.running, t.surplus, t.failed, t.interrupted) == (1, 1, 1, 0, 0)
    study.tell(other_machine[0], 0.7)                    # the other machine finishes its trial
    assert tally(study, optuna).counted == 2
    monkeypatch.setattr(study, "ask", real_ask)
    workers.work(study, None, None, tmp_path / "machine-a", optuna)   # budget full: starts nothing
    assert ran == [] and len(study.get_trials(deepcopy=False)) == 3
