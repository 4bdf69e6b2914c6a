"""Terminal output: rich progress bars and tables on a TTY, plain lines otherwise."""
from __future__ import annotations

import sys
from typing import Any


def is_terminal() -> bool:
    return sys.stdout.isatty()


def excluded_note(excluded: dict[str, int]) -> str:
    """One line saying which samples were not scored (they were shown no modality)."""
    parts = ", ".join(f"{where}: {n}" for where, n in excluded.items())
    return f"not scored (shown no modality): {parts} sample(s)"


class PlainProgress:
    """One line per epoch and per trial on stderr; nothing per step."""

    def __init__(self, stream: Any = None):
        self.stream = stream or sys.stderr

    def __call__(self, event: str, **info: Any) -> None:
        if event == "run_start":
            print(f"run directory: {info['directory']} ({info['trials']} trial(s))", file=self.stream)
        elif event == "stage_start":
            print(f"[{info['trial']}] stage '{info['stage']}': up to {info['epochs']} epochs", file=self.stream)
        elif event == "trial_failed":
            print(f"[{info['trial']}] FAILED: {info['error']}", file=self.stream)
        elif event == "trial_end" and info.get("excluded"):
            print(f"[{info['trial']}] {excluded_note(info['excluded'])}", file=self.stream)
        elif event == "epoch_end":
            losses = " ".join(f"{k[5:]}={v:.3f}" for k, v in info.items() if k.startswith("loss/"))
            val = " ".join(f"{k}={v:.4f}" for k, v in info.items() if k.startswith("val/"))
            print(f"[{info['trial']}] {info['stage']} epoch {info['epoch']}: {losses} {val} "
                  f"({info['train_seconds']:.2f}s)", file=self.stream)
        self.stream.flush()

    def close(self) -> None:
        pass


class RichProgress:
    """A live progress bar per stage with the latest validation score."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[score]}"), TimeElapsedColumn(), transient=False)
        self.progress.start()
        self.task: Any = None

    def __call__(self, event: str, **info: Any) -> None:
        if event == "run_start":
            self.progress.console.print(f"run directory: {info['directory']}")
        elif event == "stage_start":
            self.task = self.progress.add_task(f"{info['trial']} {info['stage']}", total=info["epochs"],
                                               completed=info.get("start", 0), score="")
        elif event == "epoch_end" and self.task is not None:
            val = " ".join(f"{k}={v:.4f}" for k, v in info.items() if k.startswith("val/"))
            self.progress.update(self.task, completed=info["epoch"], score=val)
        elif event == "trial_end" and self.task is not None:
            self.progress.update(self.task, completed=self.progress.tasks[-1].total)
            if info.get("excluded"):
                self.progress.console.print(f"[{info['trial']}] {excluded_note(info['excluded'])}")

    def close(self) -> None:
        self.progress.stop()


def make_progress(quiet: bool = False, plain: bool = False) -> Any:
    """Rich bars on a terminal; plain lines on stderr otherwise (or when stdout carries JSON)."""
    if quiet:
        return lambda *a, **k: None
    return RichProgress() if is_terminal() and not plain else PlainProgress()
