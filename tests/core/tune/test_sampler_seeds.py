"""Workers of one study never repeat each other's draws: each worker's sampler seed mixes the
study's seed, the worker and the trials already in the study."""
from __future__ import annotations

import pytest

optuna = pytest.importorskip("optuna")

from mmtk.tune.workers import make_sampler  # noqa: E402


def _draw(study, sampler) -> float:
    study.sampler = sampler
    trial = study.ask()
    value = trial.suggest_float("x", 0.0, 1.0)
    study.tell(trial, value)
    return value


@pytest.mark.parametrize("kind", ["tpe", "random"])
def test_two_workers_opening_one_trial_apart_draw_different_trials(kind):
    """The collision that doubled every trial: worker 1 opens the empty study, worker 0 opens
    it after one trial (the old seed, study seed + trials + worker index, was 1 for both)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    spec = {"type": kind, "seed": 0}
    late_worker = make_sampler(optuna, spec, worker=2, existing=0)
    first = _draw(study, late_worker)
    early_worker = make_sampler(optuna, spec, worker=1, existing=len(study.trials))
    a = [first] + [_draw(study, late_worker) for _ in range(3)]
    b = [_draw(study, early_worker) for _ in range(4)]
    assert not set(a) & set(b)


def test_the_same_worker_and_study_state_give_the_same_draws():
    spec = {"type": "random", "seed": 3}
    draws = []
    for _ in range(2):
        study = optuna.create_study()
        draws.append([_draw(study, make_sampler(optuna, spec, worker=1, existing=0)) for _ in range(3)])
    assert draws[0] == draws[1]
    study = optuna.create_study()
    assert [_draw(study, make_sampler(optuna, {"type": "random", "seed": None}, 1, 0))] != draws[0][:1]
