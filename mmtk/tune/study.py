"""One study: its definition (stored with it, so ``--join`` needs only its name), its trial
budget, and the tally of its trials.

Budget: ``--trials N`` counts trials that completed, were pruned, or crashed (an exception in
the trial). A trial whose worker was killed is marked failed ("interrupted") and does not
count, so rerunning the command fills the budget again. Starting a trial is serialised by a
lock file in the tuning folder, so the workers of one machine never overshoot N. Workers on
other machines (``--join``) share no lock: when two start the study's last trial at once, the
one whose trial number comes later marks its trial "surplus" (FAIL, no parameters drawn,
not counted) and stops, so the study never holds more than N counted trials.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from .engine import TuneError
from .storage import shown

DEFINITION = "mmtk_definition"
BUDGET = "mmtk_trials"
SURPLUS = "surplus"   # user attribute of a trial a racing machine started beyond the budget
DEFINING = ("tree", "overrides", "space", "sampler", "pruner", "monitor", "direction")


def study_name(definition: dict) -> str:
    """``<recipe name>-<hash of what defines the study>``: the same command (same recipe
    content, overrides, space and search settings) names the same study on any machine."""
    text = json.dumps({k: definition[k] for k in DEFINING}, sort_keys=True, default=str)
    return f"{definition['tree'].get('name', 'run')}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"


def open_study(optuna: Any, storage: Any, url: str, name: str, definition: dict | None,
               budget: int | None, sampler: Any, pruner: Any) -> tuple[Any, dict, int]:
    """Creates or continues the study ``name``; with ``definition`` None (``--join``) it must
    exist. Returns the study, its stored definition and its trial budget."""
    if definition is None:
        try:
            study = optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
        except KeyError:
            known = optuna.get_all_study_names(storage)
            raise TuneError(f"--join: no study '{name}' in {shown(url)} (studies there: "
                            f"{', '.join(known) or 'none'}); start it with mmtk tune RECIPE --space "
                            "... --storage URL first") from None
    else:
        study = optuna.create_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner,
                                    direction=definition["direction"], load_if_exists=True)
    stored = study.user_attrs.get(DEFINITION)
    if definition is not None:
        if stored is None:
            study.set_user_attr(DEFINITION, definition)
            stored = definition
        elif {k: stored.get(k) for k in DEFINING} != {k: definition.get(k) for k in DEFINING}:
            raise TuneError(f"study '{name}' in {shown(url)} was started with another recipe, space "
                            "or search settings; give a new --study NAME (or drop --study)")
        if budget is not None and study.user_attrs.get(BUDGET) != budget:
            study.set_user_attr(BUDGET, budget)   # a rerun may grow (or shrink) the budget
    if stored is None:
        raise TuneError(f"study '{name}' in {shown(url)} was not created by mmtk tune (it has no "
                        "stored recipe); --join works only on studies mmtk tune started")
    return study, stored, int(study.user_attrs.get(BUDGET) or 0)


@dataclass
class Tally:
    complete: int = 0
    pruned: int = 0
    failed: int = 0          # crashed trials (counted in the budget)
    interrupted: int = 0     # killed workers' trials (not counted)
    surplus: int = 0         # started beyond the budget by a racing machine, never run (not counted)
    running: int = 0

    @property
    def counted(self) -> int:
        return self.complete + self.pruned + self.failed


def tally(study: Any, optuna: Any) -> Tally:
    state = optuna.trial.TrialState
    t = Tally()
    for trial in study.get_trials(deepcopy=False):
        if trial.state == state.COMPLETE:
            t.complete += 1
        elif trial.state == state.PRUNED:
            t.pruned += 1
        elif trial.state == state.FAIL:
            if not _uncounted(trial, state):
                t.failed += 1
            elif SURPLUS in trial.user_attrs:
                t.surplus += 1
            else:
                t.interrupted += 1
        else:
            t.running += 1
    return t


def _uncounted(trial: Any, state: Any) -> bool:
    """A failed trial outside the budget: its worker was killed, or it was surplus (only a
    trial that raised keeps an ``error`` and counts)."""
    return trial.state == state.FAIL and "error" not in trial.user_attrs


def beyond_budget(study: Any, number: int, budget: int, optuna: Any) -> bool:
    """Whether the trials numbered before ``number`` that count or still run already fill the
    budget. Storages number a study's trials consecutively in creation order, so of two
    machines that started the last trial at once exactly the later one gets True."""
    state = optuna.trial.TrialState
    ahead = sum(1 for trial in study.get_trials(deepcopy=False)
                if trial.number < number and not _uncounted(trial, state))
    return ahead >= budget


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:  # a killed child its parent has not reaped yet is a zombie: gone as well
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return False


def fail_orphaned_trials(study: Any, storage: Any, optuna: Any) -> list[int]:
    """Marks FAIL ("interrupted") the RUNNING trials whose worker process on this machine is
    gone; trials of live or remote workers are left alone (the heartbeat covers those)."""
    host = socket.gethostname()
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        worker = str(trial.user_attrs.get("worker", ""))
        name, _, pid = worker.rpartition(":")
        if name != host or not pid.isdigit() or not _process_gone(int(pid)):
            continue
        try:  # FrozenTrial's id is the storage's key (Optuna has no public accessor)
            storage.set_trial_user_attr(trial._trial_id, "interrupted", f"worker {worker} was gone")
            storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
            failed.append(trial.number)
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # another worker got there first
    with warnings.catch_warnings():   # experimental since Optuna 2.9, and what optimize() calls
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # the heartbeat's verdict (RDB storages)
    return failed


@contextmanager
def budget_lock(folder: Path) -> Iterator[None]:
    """Serialises 'count the trials, then start one' among this machine's workers."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".budget.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
