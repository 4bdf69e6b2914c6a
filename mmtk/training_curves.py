"""``mmtk eval RUN_DIR --plot``: training curves from a run's per-epoch history.

Each trial's stage loop writes ``trials/<key>/history-<stage>.json`` (one record per epoch:
``loss/<name>`` averaged over the epoch's steps, ``val/<monitor>``), and the trial's
``evaluation.json`` says which epoch each stage selected. The figure has one row per stage:
the losses per epoch on the left, the validation metric per epoch on the right with the
selected epoch of every trial marked.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import MmtkError

NO_MATPLOTLIB = ("drawing figures needs matplotlib: pip install 'mmtk[plot]' (or pip install "
                 "matplotlib)")


@dataclass
class StageCurves:
    """One stage's history in every trial: trial -> its epoch records, and the epoch it kept."""

    name: str
    histories: dict[str, list[dict]] = field(default_factory=dict)
    selected: dict[str, int | None] = field(default_factory=dict)

    def losses(self) -> list[str]:
        keys = {k for records in self.histories.values() for r in records for k in r if k.startswith("loss/")}
        return sorted(keys, key=lambda k: (k != "loss/task", k))   # the task loss first

    def monitors(self) -> list[str]:
        return sorted({k for records in self.histories.values() for r in records for k in r
                       if k.startswith("val/")})

    def records(self) -> list[dict]:
        """Every trial's epoch records, trial after trial."""
        return [r for records in self.histories.values() for r in records]


def samples_per_second(records: list[dict]) -> float:
    """Training throughput of epoch records: samples shown / seconds in the train loop
    (validation and snapshots excluded, as the stage loop times them); the benchmarks' figure."""
    seconds = sum(r["train_seconds"] for r in records)
    return sum(r["train_samples"] for r in records) / seconds if seconds else 0.0


def _read(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise MmtkError(f"cannot read the {what} {path} ({type(exc).__name__}: {exc}); the training "
                        "curves need it (rerun the trial if it is damaged)") from None


def read_curves(run_dir: Path) -> list[StageCurves]:
    """Every stage's histories, in the order the stages ran (the first trial's file times)."""
    stages: dict[str, StageCurves] = {}
    for trial in sorted(p for p in (run_dir / "trials").glob("*") if p.is_dir()):
        evaluation = trial / "evaluation.json"
        chosen = _read(evaluation, "trial evaluation file").get("selected", {}) if evaluation.is_file() else {}
        for path in sorted(trial.glob("history-*.json"), key=lambda p: p.stat().st_mtime):
            name = path.stem[len("history-"):]
            records = _read(path, "stage history")
            if not isinstance(records, list):
                raise MmtkError(f"{path} is not a stage history (a list of epoch records)")
            curves = stages.setdefault(name, StageCurves(name))
            curves.histories[trial.name] = records
            curves.selected[trial.name] = (chosen.get(name) or {}).get("epoch")
    if not stages:
        raise MmtkError(f"{run_dir} has no training history (trials/*/history-<stage>.json): no stage "
                        "of any trial has finished yet, so there are no curves to draw")
    return list(stages.values())


def _series(records: list[dict], key: str) -> tuple[list[int], list[float]]:
    pairs = [(r["epoch"], r[key]) for r in records if key in r and r[key] is not None]
    return [e for e, _ in pairs], [float(v) for _, v in pairs]


def _draw_losses(ax: Any, stage: StageCurves, colours: Any) -> None:
    values = []
    for i, key in enumerate(stage.losses()):
        for j, (trial, records) in enumerate(stage.histories.items()):
            epochs, ys = _series(records, key)
            values += ys
            ax.plot(epochs, ys, color=colours(i % 10), alpha=1.0 if j == 0 else 0.45,
                    label=key[len("loss/"):] if j == 0 else None)
    if values and min(values) > 0 and max(values) / min(values) > 50:
        ax.set_yscale("log")   # auxiliary losses can be orders of magnitude below the task loss
    ax.set_title(f"stage '{stage.name}': training losses (mean per epoch)", fontsize=9)
    ax.set_xlabel("epoch")
    ax.legend(fontsize=7)


def _draw_validation(ax: Any, stage: StageCurves, colours: Any) -> None:
    for key in stage.monitors():
        for j, (trial, records) in enumerate(stage.histories.items()):
            epochs, ys = _series(records, key)
            colour = colours(j % 10)
            ax.plot(epochs, ys, color=colour, label=trial)
            best = stage.selected.get(trial)
            if best in epochs:
                ax.axvline(best, color=colour, linestyle="--", linewidth=0.8)
                ax.plot([best], [ys[epochs.index(best)]], marker="*", markersize=12, color=colour)
        ax.set_ylabel(f"val {key[len('val/'):].upper()}")
    ax.set_title(f"stage '{stage.name}': validation metric (* = selected epoch)", fontsize=9)
    ax.set_xlabel("epoch")
    ax.legend(fontsize=7, title="trial", title_fontsize=7)


def plot_training_curves(run_dir: str | Path, path: Path) -> Path:
    """Draw the run's curves into ``path`` (a PNG); an error says how to get matplotlib."""
    run_dir = Path(run_dir)
    stages = read_curves(run_dir)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MmtkError(f"--plot: {NO_MATPLOTLIB}") from None
    colours = plt.get_cmap("tab10")
    fig, axes = plt.subplots(len(stages), 2, figsize=(11, 3.4 * len(stages)), squeeze=False)
    from matplotlib.ticker import MaxNLocator

    for row, stage in zip(axes, stages):
        _draw_losses(row[0], stage, colours)
        _draw_validation(row[1], stage, colours)
        for ax in row:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))   # epochs are whole numbers
    fig.suptitle(f"{run_dir.parent.name} ({run_dir.name})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
