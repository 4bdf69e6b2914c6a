"""Independent trials (seeds x folds) in worker processes, ``--jobs`` at a time.

Threads are split between the workers. A failed trial is reported and the others finish.
Workers never outlive the process that started them: each asks the kernel to kill it when
its parent dies (Linux ``PR_SET_PDEATHSIG``) and also watches its parent id, so a ``kill -9``
of ``mmtk run`` leaves no process behind writing into the run folder.
"""
from __future__ import annotations

import ctypes
import os
import queue as queue_mod
import signal
import threading
import time
from typing import Any

from .recipe import Recipe
from .threads import ThreadChoice
from .trainer import Trainer, TrialSpec

_events: Any = None


def _die_with_parent(parent: int) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: the kernel kills us with our parent
    except (OSError, AttributeError):
        pass

    def watch() -> None:  # the portable fallback: the parent id changes when it dies
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="mmtk-parent-watch").start()


def _init_worker(events: Any, parent: int, choice: ThreadChoice) -> None:
    from . import threads

    global _events
    _events = events
    _die_with_parent(parent)
    if os.getppid() != parent:  # the parent died before we got here
        os._exit(1)
    threads.apply(choice)  # under auto each worker's stages still probe up to this count


def _trial_worker(recipe: Recipe, spec: TrialSpec, device: str | None, plugins_dir: str | None) -> dict:
    """Runs one trial in a worker; progress events go back through the queue."""
    from .plugins import load_plugins

    system = load_plugins(plugins_dir=plugins_dir)
    for item in recipe.imports:  # absolute since the recipe was resolved
        system.load_file(item)
    trainer = Trainer(recipe, system.registry, device, lambda event, **info: _events.put((event, info)))
    return trainer.run(spec)


def run_trials_in_parallel(run: Any, trials: list[TrialSpec]) -> tuple[dict, dict]:
    """(results per trial key, error per failed trial key), in the order of ``trials``."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    ctx = mp.get_context("spawn")
    events = ctx.Queue()
    choice = run.thread_choice  # the thread policy's count for each of --jobs workers
    per_trial, failed = {}, {}

    def drain(timeout: float | None) -> None:
        try:
            while True:
                event, info = events.get(timeout=timeout) if timeout else events.get_nowait()
                run.progress(event, **info)
                timeout = None
        except queue_mod.Empty:
            pass

    with ProcessPoolExecutor(max_workers=run.jobs, mp_context=ctx, initializer=_init_worker,
                             initargs=(events, os.getpid(), choice)) as pool:
        futures = {pool.submit(_trial_worker, run.recipe, spec, run.device, run.plugins_dir): spec
                   for spec in trials}
        for spec in trials:
            run.progress("trial_start", trial=spec.key)
        pending = set(futures)
        while pending:
            drain(0.2)
            for fut in [f for f in pending if f.done()]:
                pending.discard(fut)
                spec = futures[fut]
                try:
                    per_trial[spec.key] = fut.result()
                except Exception as exc:  # reported, and the other trials go on
                    failed[spec.key] = f"{type(exc).__name__}: {exc}"
                    run.progress("trial_failed", trial=spec.key, error=failed[spec.key])
    drain(None)
    order = [t.key for t in trials]
    return {k: per_trial[k] for k in order if k in per_trial}, failed
