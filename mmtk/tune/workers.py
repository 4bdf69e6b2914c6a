"""Workers: each takes trials from the shared study until its budget is spent.

One worker runs in the command's own process; ``--jobs K`` starts K worker processes that
share the study through its storage (each with its share of the idle cores, mmtk.threads) while the
command prints progress. A trial that raises is marked FAIL with its error and the worker goes
on; a pruned trial is PRUNED. Workers die with the command (as ``mmtk run --jobs`` workers do).
"""
from __future__ import annotations

import math
import os
import threading
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from ..errors import MmtkError
from ..threads import ThreadChoice
from .objective import WORKER, TrialSetup, run_objective, trial_directory
from .study import SURPLUS, Tally, beyond_budget, budget_lock, fail_orphaned_trials, tally


@dataclass
class WorkerConfig:
    """What a worker process needs to rebuild everything (picklable)."""

    url: str
    study: str
    folder: str
    device: str | None
    plugins_dir: str | None
    threads: ThreadChoice   # the thread policy's choice for each worker
    index: int


def make_sampler(optuna: Any, spec: dict, worker: int, existing: int) -> Any:
    """The study's sampler for one worker. Its seed mixes the study's seed, the worker (0 = the
    command's own process, K = --jobs worker K, a pid for --join) and the trials already in the
    study, so no two workers, and no resumed worker, repeat each other's draws. (Adding the two
    numbers did collide: worker 1 opening an empty study and worker 0 opening it one trial later
    drew identical trials throughout the sampler's random start-up.)"""
    import numpy as np

    seed = None if spec.get("seed") is None else int(
        np.random.SeedSequence([int(spec["seed"]), worker, existing]).generate_state(1)[0])
    if spec["type"] == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def make_pruner(optuna: Any, spec: dict) -> Any:
    if spec["type"] == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=int(spec["startup_trials"]), n_warmup_steps=0)


@contextmanager
def heartbeat(storage: Any, trial: Any) -> Iterator[None]:
    """Records the trial's heartbeat while it runs (RDB storages), as ``study.optimize`` does."""
    interval = getattr(storage, "get_heartbeat_interval", lambda: None)()
    if not interval:
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            storage.record_heartbeat(trial._trial_id)  # Trial has no public id
            stop.wait(interval)

    thread = threading.Thread(target=beat, daemon=True, name="mmtk-tune-heartbeat")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, MmtkError) else f"{type(exc).__name__}: {exc}"


def run_one(study: Any, storage: Any, trial: Any, setup: TrialSetup, optuna: Any) -> None:
    """One trial to its end: COMPLETE, PRUNED, or FAIL with the error kept on the trial."""
    with heartbeat(storage, trial):
        try:
            value = run_objective(trial, setup, optuna)
            if not math.isfinite(value):
                raise MmtkError(f"the objective is {value} (non-finite)")
        except optuna.TrialPruned as exc:
            trial.set_user_attr("pruned", str(exc))
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            return
        except KeyboardInterrupt:
            trial.set_user_attr("interrupted", "Ctrl-C")
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            raise
        except Exception as exc:
            directory = trial_directory(setup.trials_dir, trial.number)
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "error.txt").write_text(traceback.format_exc())
            trial.set_user_attr("error", _describe(exc))
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            return
    study.tell(trial, value)


def work(study: Any, storage: Any, setup: TrialSetup, folder: Path, optuna: Any,
         after_trial: Callable[[Tally], None] = lambda _: None) -> None:
    """Starts trials until the study's budget (read afresh each time) is spent."""
    from .study import BUDGET

    while True:
        with budget_lock(folder):
            fail_orphaned_trials(study, storage, optuna)
            budget = int(study.user_attrs.get(BUDGET) or 0)
            t = tally(study, optuna)
            if t.counted + t.running >= budget:
                return
            trial = study.ask()
            trial.set_user_attr("worker", WORKER)
        if beyond_budget(study, trial.number, budget, optuna):   # another machine took the last one
            trial.set_user_attr(SURPLUS, f"trial {trial.number} started beyond the budget of {budget}")
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            return
        run_one(study, storage, trial, setup, optuna)
        after_trial(tally(study, optuna))


def worker_main(config: WorkerConfig) -> None:
    """The body of a ``--jobs`` worker process."""
    from .. import threads
    from ..parallel import _die_with_parent
    from .setup import open_shared_study

    _die_with_parent(os.getppid())
    threads.apply(config.threads)   # under auto each trial's stages probe up to this count
    opened = open_shared_study(config.url, config.study, Path(config.folder), config.device,
                               config.plugins_dir, worker=config.index + 1)
    work(opened.study, opened.storage, opened.setup, Path(config.folder), opened.optuna)


def run_processes(configs: list[WorkerConfig], poll: Callable[[], None], seconds: float = 1.0) -> list[int]:
    """Starts one process per config, calls ``poll`` while they run; their exit codes."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=worker_main, args=(c,), name=f"mmtk-tune-{c.index}") for c in configs]
    for p in procs:
        p.start()
    try:
        while any(p.is_alive() for p in procs):
            poll()
            time.sleep(seconds)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
            p.join()
    poll()
    return [p.exitcode or 0 for p in procs]
