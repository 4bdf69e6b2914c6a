"""Terminal output: rich progress bars and tables on a TTY, plain lines otherwise.

Progress events (sent by the run, the trainer and the stage loop): ``run_start``,
``trial_start``, ``stage_start`` (epochs, steps per epoch, an optional one-line ``hint``,
``notes``: lines saying what the stage chose, e.g. for its unlabelled samples),
``step`` (throttled by the stage loop), ``epoch_end`` (losses, validation metric),
``stage_end`` (last epoch run, the selected epoch and its validation value), ``final_eval``,
``trial_end`` and ``trial_failed``.
"""
from __future__ import annotations

import sys
import time
from typing import Any

PLAIN_STEP_SECONDS = 10.0   # a log file gets a step line only when an epoch is slow


def is_terminal() -> bool:
    return sys.stdout.isatty()


def unlabeled_note(unlabeled: dict[str, int]) -> str:
    """One line saying how many samples of each split had no label (never scored)."""
    parts = ", ".join(f"{split}: {n}" for split, n in unlabeled.items())
    return f"unlabelled (trained on by label-free losses only, never scored): {parts} sample(s)"


def excluded_note(excluded: dict[str, int]) -> str:
    """One line saying which samples were not scored (they were shown no modality)."""
    parts = ", ".join(f"{where}: {n}" for where, n in excluded.items())
    return f"not scored (shown no modality): {parts} sample(s)"


def stage_end_text(info: dict) -> str:
    """'stopped at epoch 12, selected epoch 4 (val UAR 0.64)' (early stopping), or 'ran all 30
    epochs, ...'."""
    chosen = f"selected epoch {info['selected']} (val {info['monitor'].upper()} {info['value']:.4g})"
    if info["epoch"] < info["epochs"]:
        return f"stopped at epoch {info['epoch']}, {chosen}"   # early stopping (the bar shows of how many)
    return f"ran all {info['epochs']} epochs, {chosen}"


def first_epoch_warning(info: dict) -> str:
    """A stage that kept its first epoch's weights after training more is usually an accident
    of a small validation split (one lucky epoch, then patience runs out), and its test
    figures describe a barely trained model: say so where the user reads the selection."""
    if info["selected"] != 1 or info["epoch"] <= 1:
        return ""
    return ("warning: the kept weights are the first epoch's, so this model is barely trained"
            " (if that is not intended, raise train.min_epochs or train.patience, chosen on validation)")


def validation_text(info: dict) -> str:
    return " ".join(f"val {k[4:].upper()} {v:.4f}" for k, v in info.items() if k.startswith("val/"))


def final_text(info: dict, monitor: str | None) -> str:
    """The trial's headline: the monitored metric's mean over conditions on test."""
    test = (info.get("results") or {}).get("test") or {}
    cond = "mean" if "mean" in test else next(iter(test), None)
    value = (test.get(cond) or {}).get(monitor) if cond and monitor else None
    if value is None:
        return "final evaluation done"
    return f"final evaluation done: test {cond} {monitor.upper()} {value:.4f}"  # type: ignore[union-attr]


class PlainProgress:
    """One line per stage, epoch and trial on stderr; a step line only when an epoch is slow."""

    def __init__(self, stream: Any = None, step_seconds: float = PLAIN_STEP_SECONDS):
        self.stream = stream or sys.stderr
        self.step_seconds = step_seconds
        self.steps: dict[str, int] = {}
        self.monitor: dict[str, str] = {}
        self.last_line = time.monotonic()

    def say(self, trial: str, text: str) -> None:
        print(f"[{trial}] {text}", file=self.stream)
        self.last_line = time.monotonic()

    def __call__(self, event: str, **info: Any) -> None:
        if event == "run_start":
            print(f"run directory: {info['directory']} ({info['trials']} trial(s))", file=self.stream)
        elif event == "stage_start":
            self.steps[info["trial"]] = info.get("steps") or 0
            self.say(info["trial"], f"stage '{info['stage']}': up to {info['epochs']} epochs"
                     + (f" of {info['steps']} steps" if info.get("steps") else ""))
            for note in info.get("notes") or ():
                self.say(info["trial"], note)
            if info.get("hint"):
                self.say(info["trial"], f"hint: {info['hint']}")
        elif event == "step" and time.monotonic() - self.last_line >= self.step_seconds:
            total = self.steps.get(info["trial"])
            self.say(info["trial"], f"{info['stage']} epoch {info['epoch']}: step {info['step']}"
                     + (f"/{total}" if total else ""))
        elif event == "epoch_end":
            losses = " ".join(f"{k[5:]}={v:.3f}" for k, v in info.items() if k.startswith("loss/"))
            val = " ".join(f"{k}={v:.4f}" for k, v in info.items() if k.startswith("val/"))
            self.say(info["trial"], f"{info['stage']} epoch {info['epoch']}: {losses} {val} "
                     f"({info['train_seconds']:.2f}s)")
        elif event == "stage_end":
            warning = first_epoch_warning(info)
            text = f"stage '{info['stage']}': {stage_end_text(info)}"
            self.say(info["trial"], f"{text}; {warning}" if warning else text)
        elif event == "final_eval":
            self.monitor[info["trial"]] = info["monitor"]
            self.say(info["trial"], f"final evaluation of the selected model on {' and '.join(info['splits'])}")
        elif event == "trial_failed":
            self.say(info["trial"], f"FAILED: {info['error']}")
        elif event == "trial_end":
            if info.get("excluded"):
                self.say(info["trial"], excluded_note(info["excluded"]))
            if info.get("unlabeled"):
                self.say(info["trial"], unlabeled_note(info["unlabeled"]))
            self.say(info["trial"], final_text(info, self.monitor.get(info["trial"])))
        self.stream.flush()

    def close(self) -> None:
        pass


class RichProgress:
    """A live bar per trial and stage that moves with the steps; the validation metric per
    epoch beside it; an early stop says so and leaves the bar where the stage ended."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
        from rich.table import Column

        # the bar and the time keep their width; the (long) score text comes last and is cut
        # short on a narrow terminal rather than squeezing them
        self.progress = Progress(
            TextColumn("{task.description}", table_column=Column(min_width=22, no_wrap=True)),
            BarColumn(bar_width=24, table_column=Column(min_width=24, no_wrap=True)),
            TextColumn("{task.fields[at]}", table_column=Column(min_width=11, no_wrap=True)),
            TimeElapsedColumn(table_column=Column(min_width=7, no_wrap=True)),
            TextColumn("{task.fields[score]}", table_column=Column(ratio=1, overflow="ellipsis", no_wrap=True)),
            transient=False)
        self.progress.start()
        self.tasks: dict[str, Any] = {}     # trial -> its current bar
        self.steps: dict[str, int] = {}     # trial -> steps per epoch of its current stage
        self.epochs: dict[str, int] = {}
        self.monitor: dict[str, str] = {}

    def line(self, text: str) -> None:
        """A line above the bars, printed as it is (no rich markup: ``[seed0]`` stays)."""
        self.progress.console.print(text, markup=False)

    def __call__(self, event: str, **info: Any) -> None:
        trial = info.get("trial", "")
        task = self.tasks.get(trial)
        if event == "run_start":
            self.line(f"run directory: {info['directory']}")
        elif event == "stage_start":
            steps = self.steps[trial] = max(1, info.get("steps") or 1)
            self.epochs[trial] = info["epochs"]
            self.tasks[trial] = self.progress.add_task(
                f"{trial} {info['stage']}", total=info["epochs"] * steps,
                completed=info.get("start", 0) * steps, score="", at=f"epoch {info.get('start', 0)}/{info['epochs']}")
            for note in info.get("notes") or ():
                self.line(f"[{trial}] {note}")
            if info.get("hint"):
                self.line(f"[{trial}] hint: {info['hint']}")
        elif event == "step" and task is not None:
            done = (info["epoch"] - 1) * self.steps[trial] + info["step"]
            self.progress.update(task, completed=done, at=f"epoch {info['epoch']}/{self.epochs[trial]}")
        elif event == "epoch_end" and task is not None:
            self.progress.update(task, completed=info["epoch"] * self.steps[trial],
                                 at=f"epoch {info['epoch']}/{self.epochs[trial]}",
                                 score=f"epoch {info['epoch']}: {validation_text(info)}")
        elif event == "stage_end" and task is not None:
            if info["epoch"] >= info["epochs"]:
                self.progress.update(task, completed=info["epochs"] * self.steps[trial])
            self.progress.update(task, score=stage_end_text(info))
            self.progress.stop_task(task)
            if warning := first_epoch_warning(info):   # too long for the bar's score column
                self.line(f"[{trial}] {warning}")
        elif event == "final_eval":
            self.monitor[trial] = info["monitor"]
            self.tasks[trial] = self.progress.add_task(f"{trial} final evaluation", total=1, score="",
                                                       at="val, test")
        elif event == "trial_end":
            if task is not None:
                self.progress.update(task, completed=1, score=final_text(info, self.monitor.get(trial)))
            if info.get("excluded"):
                self.line(f"[{trial}] {excluded_note(info['excluded'])}")
            if info.get("unlabeled"):
                self.line(f"[{trial}] {unlabeled_note(info['unlabeled'])}")
        elif event == "trial_failed":
            self.line(f"[{trial}] FAILED: {info['error']}")

    def close(self) -> None:
        self.progress.stop()


def make_progress(quiet: bool = False, plain: bool = False) -> Any:
    """Rich bars on a terminal; plain lines on stderr otherwise (or when stdout carries JSON)."""
    if quiet:
        return lambda *a, **k: None
    return RichProgress() if is_terminal() and not plain else PlainProgress()
