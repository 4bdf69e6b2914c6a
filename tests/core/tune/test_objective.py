"""The objective: validation only, pruning reports, and the check that no trial read test."""
from __future__ import annotations

import json

import optuna
import pytest

from mmtk.evaluate import Evaluator
from mmtk.tune.objective import (
    EpochReporter,
    SplitLeakError,
    TrialSetup,
    assert_no_test_read,
    run_objective,
    validation_score,
    warmup_epochs,
)
from mmtk.tune.setup import build_definition, trial_setup


class FakeTrial:
    """Records what the reporter tells Optuna; prunes from a given step on."""

    def __init__(self, prune_from: int | None = None):
        self.reports: list[tuple[float, int]] = []
        self.prune_from = prune_from

    def report(self, value, step):
        self.reports.append((value, step))

    def should_prune(self):
        return self.prune_from is not None and self.reports[-1][1] >= self.prune_from


def test_reporter_steps_count_optimizer_steps_in_a_block_per_seed_and_stage():
    trial = FakeTrial()
    block = EpochReporter.BLOCK
    second_seed = EpochReporter(trial, optuna, "uar", 1, ["teacher", "student"])
    second_seed("stage_start", stage="teacher", steps=3)
    second_seed("epoch_end", stage="teacher", epoch=2, **{"val/uar": 0.4})
    second_seed("stage_start", stage="student", steps=5)
    second_seed("epoch_end", stage="student", epoch=1, **{"val/uar": 0.5})
    second_seed("epoch_end", stage="student", epoch=1, **{"val/war": 0.9})   # another monitor: ignored
    assert trial.reports == [(0.4, 2 * block + 2 * 3), (0.5, 3 * block + 1 * 5)]


def test_trials_with_other_epoch_lengths_are_compared_after_equal_training():
    """2 steps per epoch against 5: they share report steps only where both have trained
    10 steps (epoch 5 against epoch 2), never after equal epochs."""
    short, long = FakeTrial(), FakeTrial()
    for trial, steps, epochs in ((short, 2, 5), (long, 5, 2)):
        reporter = EpochReporter(trial, optuna, "uar", 0, ["main"])
        reporter("stage_start", stage="main", steps=steps)
        for epoch in range(1, epochs + 1):
            reporter("epoch_end", stage="main", epoch=epoch, **{"val/uar": 0.1 * epoch})
    assert {s for _, s in short.reports} & {s for _, s in long.reports} == {10}


def test_the_median_pruner_keeps_a_short_epoch_trial_that_is_on_course():
    """A finished trial of 25 steps per epoch reached 0.6 after one epoch; a trial of 2 steps
    per epoch at 0.3 after its first epoch has trained 2 steps, not 25: nothing to compare
    with yet, so it is not pruned (counting epochs, it was)."""
    study = optuna.create_study(direction="maximize",
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0))

    def train(steps_per_epoch, values):
        trial = study.ask()
        reporter = EpochReporter(trial, optuna, "uar", 0, ["main"])
        reporter("stage_start", stage="main", steps=steps_per_epoch)
        for epoch, value in enumerate(values, start=1):
            reporter("epoch_end", stage="main", epoch=epoch, trial="seed0", **{"val/uar": value})
        study.tell(trial, values[-1])

    train(25, [0.6, 0.62])
    train(2, [0.3])   # would raise TrialPruned if compared with the other's epoch 1
    train(2, [0.3, 0.4, 0.5])


def test_reporter_raises_trial_pruned_when_the_pruner_says_so():
    reporter = EpochReporter(FakeTrial(prune_from=2), optuna, "uar", 0, ["main"])
    reporter("epoch_end", stage="main", epoch=1, trial="seed0", **{"val/uar": 0.3})
    with pytest.raises(optuna.TrialPruned, match="pruned after epoch 2 of seed0"):
        reporter("epoch_end", stage="main", epoch=2, trial="seed0", **{"val/uar": 0.2})


def test_no_trial_is_pruned_in_a_stage_s_first_patience_epochs_but_every_epoch_is_reported():
    trial = FakeTrial(prune_from=0)            # the pruner would stop it at any step
    reporter = EpochReporter(trial, optuna, "uar", 0, ["main"])
    reporter("stage_start", stage="main", steps=1, epochs=40, patience=3)
    for epoch in (1, 2):
        reporter("epoch_end", stage="main", epoch=epoch, trial="seed0", **{"val/uar": 0.3})
    assert len(trial.reports) == 2
    with pytest.raises(optuna.TrialPruned, match="pruned after epoch 3 of seed0"):
        reporter("epoch_end", stage="main", epoch=3, trial="seed0", **{"val/uar": 0.3})


def test_the_warm_up_is_at_most_half_the_stage_and_a_quarter_without_patience():
    assert warmup_epochs(None, 40) == 10 and warmup_epochs(8, 40) == 8 and warmup_epochs(0, 40) == 0
    assert warmup_epochs(8, 4) == 2          # a short stage stays prunable
    trial = FakeTrial(prune_from=0)
    reporter = EpochReporter(trial, optuna, "uar", 0, ["main"])
    reporter("stage_start", stage="main", steps=1, epochs=8, patience=None)
    reporter("epoch_end", stage="main", epoch=1, trial="seed0", **{"val/uar": 0.3})
    with pytest.raises(optuna.TrialPruned):
        reporter("epoch_end", stage="main", epoch=2, trial="seed0", **{"val/uar": 0.3})


def test_a_record_of_a_test_read_is_refused(tmp_path):
    (tmp_path / "evaluation.json").write_text(json.dumps(
        {"reads": {"training": {"val": 3}, "final": {"val": 1}}}))
    assert_no_test_read(tmp_path)
    (tmp_path / "evaluation.json").write_text(json.dumps(
        {"reads": {"training": {"val": 3}, "final": {"val": 1, "test": 1}}}))
    with pytest.raises(SplitLeakError, match="evaluated test"):
        assert_no_test_read(tmp_path)


def test_validation_score_reads_the_mean_over_conditions():
    assert validation_score({"val": {"a": {"uar": 0.1}, "mean": {"uar": 0.3}}}, "uar") == 0.3
    assert validation_score({"val": {"all": {"uar": 0.2}}}, "uar") == 0.2


@pytest.mark.slow
def test_a_trial_never_evaluates_test(system, tiny_recipe, space_file, tmp_path, monkeypatch):
    """Every evaluation a trial makes, caught at the evaluator, is of the validation split;
    the trial's own records say the same; the objective is the mean over both seeds."""
    seen: list[str] = []
    original = Evaluator.evaluate

    def spy(self, model, data, plan, keep=None):
        seen.append(self.split_names.get(id(data), "other"))
        return original(self, model, data, plan, keep)

    monkeypatch.setattr(Evaluator, "evaluate", spy)
    definition, _ = build_definition(str(tiny_recipe), ["seed=[0, 1]"], str(space_file), system,
                                     {"sampler": "random", "sampler_seed": 0, "pruner": "none"})
    assert definition["pruner"] == {"type": "none", "startup_trials": 5}
    setup: TrialSetup = trial_setup(definition, system, tmp_path / "tune", None)
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    value = run_objective(trial, setup, optuna)
    assert seen and set(seen) == {"val"}
    per_seed = [trial.user_attrs["val/seed0"], trial.user_attrs["val/seed1"]]
    assert value == pytest.approx(sum(per_seed) / 2)
    for key in ("seed0", "seed1"):
        record = json.loads((tmp_path / "tune/trials/0000/trials" / key / "evaluation.json").read_text())
        assert set(record["reads"]["final"]) == {"val"}
        results = json.loads((tmp_path / "tune/trials/0000/trials" / key / "metrics.json").read_text())
        assert set(results) == {"val"}
