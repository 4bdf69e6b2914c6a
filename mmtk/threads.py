"""The thread policy: how many threads torch uses for one run (or each ``--jobs`` worker).

torch's default is one intra-op thread per core. For the model sizes mmtk trains on a CPU
that is right only on an idle machine: with anything else running, threads that wait for a
core turn an epoch of seconds into minutes (measured: benchmarks/threads.py, README). So
``auto`` counts the cores nobody else is using (cores minus the tasks other processes have
running now, at least 1) and splits them across the run's worker processes, never more than an
``OMP_NUM_THREADS`` set in the environment. A number is taken as given.
Results do not depend on the count beyond float noise (different summation orders).

Under ``auto`` that count is a ceiling: each training stage then times a few steps of its own
model at 1, 2, 4 ... threads up to it and keeps the fastest (``mmtk.thread_probe``), because
small models run slower on more threads even on an idle machine.

Inter-op threads are set to 1: mmtk's eager models never run independent ops in parallel,
and a second pool would only compete with the first.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Literal, Union

ThreadSetting = Union[int, Literal["auto"]]


@dataclass(frozen=True)
class ThreadChoice:
    count: int            # intra-op threads per process
    setting: str          # what was asked: "auto" or the number
    reason: str           # one line, shown in environment.json and by --threads

    def as_record(self) -> dict:
        return {"count": self.count, "setting": self.setting, "reason": self.reason}


def usable_cores() -> int:
    """Cores this process may run on (the affinity mask, e.g. under taskset or a container)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def busy_cores() -> float:
    """Cores other processes keep busy right now: the median of a few reads of the kernel's
    count of runnable tasks, less this process (Linux ``/proc/stat``); elsewhere the 1-minute
    load average. The load average alone lags: right after a run it still counts that run, and
    a quiet machine would get one thread."""
    samples = []
    for i in range(5):
        try:
            with open("/proc/stat", encoding="ascii") as stat:
                line = next(x for x in stat if x.startswith("procs_running"))
            samples.append(int(line.split()[1]))
        except (OSError, StopIteration, ValueError, IndexError):
            break
        if i < 4:
            time.sleep(0.01)
    if samples:
        return float(max(0, sorted(samples)[len(samples) // 2] - 1))
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


def choose(setting: ThreadSetting = "auto", jobs: int = 1, cores: int | None = None,
           load: float | None = None) -> ThreadChoice:
    """The thread count for each of ``jobs`` processes."""
    jobs = max(1, jobs)
    if setting != "auto":
        return ThreadChoice(int(setting), str(setting), "set by the recipe or --threads")
    cores = usable_cores() if cores is None else cores
    load = busy_cores() if load is None else load
    idle = max(1, min(cores, cores - int(load + 0.25)))  # a core is busy from a load of 0.75
    count = max(1, idle // jobs)
    reason = f"{cores} core(s), {load:.2f} busy elsewhere -> {idle} idle, {jobs} process(es) -> {count} thread(s) each"
    cap = _env_cap()
    if cap is not None and cap < count:   # the user (or a parent mmtk) asked for fewer
        count, reason = cap, f"{reason}, capped by OMP_NUM_THREADS={cap}"
    return ThreadChoice(count, "auto", reason)


def _env_cap() -> int | None:
    """OMP_NUM_THREADS as a whole number >= 1, if set."""
    text = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(text) if text.isdigit() and int(text) >= 1 else None


def parse_setting(text: str) -> ThreadSetting:
    """``--threads`` as typed: ``auto`` or a whole number >= 1 (an argparse type)."""
    import argparse

    if text == "auto":
        return "auto"
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a whole number >= 1, got {text!r}")
    return int(text)


_applied: ThreadChoice | None = None


def applied() -> ThreadChoice | None:
    """The choice :func:`apply` last set in this process (None: torch's own default)."""
    return _applied


def apply(choice: ThreadChoice) -> None:
    """Set torch's thread pools in this process (and the env for its children)."""
    import torch

    global _applied
    _applied = choice

    torch.set_num_threads(choice.count)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # only settable before the first parallel op; then it stays as it was
        pass
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(choice.count)
