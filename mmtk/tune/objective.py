"""The objective of one Optuna trial: the recipe's monitored validation metric, averaged over
the (fold, seed) trials the recipe names. Test data is never evaluated here.

Each (fold, seed) is trained by the ordinary :class:`~mmtk.trainer.Trainer` with its final
evaluation restricted to the validation split; afterwards the trial's ``evaluation.json``
(which records every split each evaluation read) is checked, so a change that made a trial
read test would fail loudly instead of leaking. Per-epoch validation values go to Optuna's
pruner through the trainer's progress events.
"""
from __future__ import annotations

import math
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import MmtkError
from .space import Param, suggest

WORKER = f"{socket.gethostname()}:{os.getpid()}"


class SplitLeakError(MmtkError):
    """A tuning trial read the test split: a bug, reported as such."""


@dataclass
class TrialSetup:
    """What every trial of a study needs (the same in every worker)."""

    params: list[Param]
    make_recipe: Callable[[dict[str, Any]], Any]   # chosen values -> resolved Recipe
    registry: Any
    system: Any
    trials_dir: Path
    monitor: str
    device: str | None = None


def trial_setup_note(definition: dict) -> str:
    """One line saying what a trial optimises (printed when a study starts)."""
    return (f"objective: validation {definition['monitor']} ({definition['direction']}), the mean "
            "over the recipe's seeds and folds; test is never evaluated inside a trial")


def trial_directory(trials_dir: Path, number: int) -> Path:
    return trials_dir / f"{number:04d}"


def validation_score(results: dict, monitor: str) -> float:
    """The monitored metric of a trial's final validation evaluation (mean over conditions)."""
    val = results["val"]
    return float(val["mean" if "mean" in val else next(iter(val))][monitor])


def assert_no_test_read(directory: Path) -> None:
    """Refuses a trial whose evaluations read any split but validation."""
    from ..rundir import read_json

    reads = read_json(directory / "evaluation.json", "evaluation record").get("reads", {})
    touched = sorted({split for phase in reads.values() for split in phase if split != "val"})
    if touched:
        raise SplitLeakError(f"the tuning trial in {directory} evaluated {', '.join(touched)} "
                            f"(reads: {reads}); a tuning trial may read validation only. This is "
                            "a bug in mmtk: please report it")


def warmup_epochs(patience: int | None, epochs: int | None) -> int:
    """Epochs of a stage in which no trial is pruned (EpochReporter): its patience, at most
    half the stage (a short stage must still be prunable); a quarter without patience."""
    half = int(epochs or 0) // 2
    if patience is not None:
        return min(int(patience), half)
    return int(epochs or 0) // 4


class EpochReporter:
    """A trainer progress callback: each epoch's validation value to ``trial.report``, and
    ``TrialPruned`` when the pruner says so.

    The pruner compares trials at equal report steps, so a step must mean the same amount of
    training in every trial: it counts the stage's optimizer steps so far (epochs x steps per
    epoch, from the stage's start event), inside a block of its own per (seed or fold, stage).
    Counting epochs instead would compare a trial with 2 steps per epoch against one with 25
    after equal epochs, i.e. after a tenth of the training, whenever a search varies
    ``train.epoch_steps`` or ``train.batch_size``: it pruned the short epochs.

    No trial is pruned during a stage's warm-up: its first ``patience`` epochs (the window the
    trainer itself waits before giving up on a stage) but at most half the stage, or a quarter
    of its epochs where it has no patience. The values are still reported, so later trials are
    compared with them. Without it a study on the default benchmark pruned 7 of its 12 trials,
    6 after their first or second epoch, where 20 validation samples put every trial at chance."""

    # One block per (seed, stage); 10**7 steps each keeps 200 blocks inside the 32-bit step
    # column of Optuna's PostgreSQL storage.
    BLOCK = 10_000_000

    def __init__(self, trial: Any, optuna: Any, monitor: str, index: int, stages: list[str]):
        self.trial, self.optuna, self.monitor = trial, optuna, monitor
        self.blocks = {name: (index * len(stages) + position) * self.BLOCK
                       for position, name in enumerate(stages)}
        self.steps_per_epoch: dict[str, int] = {}
        self.warmup_epochs: dict[str, int] = {}

    def __call__(self, event: str, **info: Any) -> None:
        stage = info.get("stage", "")
        if event == "stage_start":
            self.steps_per_epoch[stage] = max(1, int(info.get("steps") or 1))
            self.warmup_epochs[stage] = warmup_epochs(info.get("patience"), info.get("epochs"))
            return
        key = f"val/{self.monitor}"
        if event != "epoch_end" or key not in info:
            return
        value = float(info[key])
        if not math.isfinite(value):
            return
        done = int(info["epoch"]) * self.steps_per_epoch.get(stage, 1)
        step = self.blocks.get(stage, 0) + min(done, self.BLOCK - 1)
        self.trial.report(value, step)
        if int(info["epoch"]) < self.warmup_epochs.get(stage, 0):
            return
        if self.trial.should_prune():
            raise self.optuna.TrialPruned(f"pruned after epoch {info['epoch']} of {info.get('trial')} "
                                          f"({key} = {value:.4g})")


def run_objective(trial: Any, setup: TrialSetup, optuna: Any) -> float:
    """Trains the trial's configuration on every (fold, seed); the mean validation score."""
    from ..run import trials_of
    from ..trainer import Trainer

    values = {p.path: suggest(trial, p) for p in setup.params}
    recipe = setup.make_recipe(values)
    directory = trial_directory(setup.trials_dir, trial.number)
    specs = trials_of(recipe, setup.system, directory)
    stages = [stage.name for stage in recipe.stages]
    scores = []
    for index, spec in enumerate(specs):
        reporter = EpochReporter(trial, optuna, setup.monitor, index, stages)
        trainer = Trainer(recipe, setup.registry, setup.device, reporter)
        trainer.final_splits = ("val",)
        results = trainer.run(spec)
        assert_no_test_read(spec.directory)
        scores.append(validation_score(results, setup.monitor))
        trial.set_user_attr(f"val/{spec.key}", scores[-1])
    return sum(scores) / len(scores)
