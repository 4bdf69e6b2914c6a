"""What a person looks at: progress lines, the top trials, parameter importances, plots."""
from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path
from typing import Any

from .study import SURPLUS, Tally

TOP = 10


def progress_line(t: Tally, budget: int, best: tuple[int, float] | None) -> str:
    best_text = f"best {best[1]:.4g} (trial {best[0]})" if best else "best -"
    interrupted = f", interrupted {t.interrupted}" if t.interrupted else ""
    surplus = f", surplus {t.surplus} (not run)" if t.surplus else ""
    return (f"tune: {t.counted}/{budget} trials done (complete {t.complete}, pruned {t.pruned}, "
            f"failed {t.failed}{interrupted}{surplus}), running {t.running}; {best_text}")


def best_so_far(study: Any, optuna: Any) -> tuple[int, float] | None:
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not done:
        return None
    pick = max if study.direction == optuna.study.StudyDirection.MAXIMIZE else min
    best = pick(done, key=lambda tr: tr.value)
    return best.number, float(best.value)


def _shown(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else json.dumps(value)


def _note(trial: Any) -> str:
    attrs = trial.user_attrs
    return str(attrs.get("error") or attrs.get("pruned") or attrs.get("interrupted") or attrs.get(SURPLUS) or "")


def trial_rows(study: Any, paths: list[str]) -> list[list[str]]:
    """One row per trial, in trial order: number, state, value, each parameter, note."""
    rows = []
    for tr in study.get_trials(deepcopy=False):
        value = "" if tr.value is None else f"{tr.value:.6g}"
        rows.append([str(tr.number), tr.state.name, value, *[json.dumps(tr.params.get(p)) for p in paths],
                     _note(tr)])
    return rows


def write_trials_csv(path: Path, study: Any, paths: list[str]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["trial", "state", "value", *paths, "note"])
        writer.writerows(trial_rows(study, paths))


def top_table(study: Any, optuna: Any, paths: list[str], monitor: str, rich_output: bool) -> str:
    from ..report import render_table

    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    reverse = study.direction == optuna.study.StudyDirection.MAXIMIZE
    ranked = sorted(done, key=lambda tr: tr.value, reverse=reverse)[:TOP]
    rows = [[str(tr.number), f"{tr.value:.6g}", *[_shown(tr.params.get(p)) for p in paths]]
            for tr in ranked]
    title = f"top {len(rows)} of {len(done)} completed trial(s), by validation {monitor}"
    return render_table(["trial", f"val {monitor}", *paths], rows, title, rich_output=rich_output)


def importances(study: Any, optuna: Any) -> tuple[dict[str, float], str | None]:
    """Optuna's parameter importances (its default evaluator, no extra dependency), or why
    none can be computed."""
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(done) < 2:
        return {}, f"needs at least 2 completed trials ({len(done)} completed)"
    try:
        return {k: float(v) for k, v in optuna.importance.get_param_importances(study).items()}, None
    except Exception as exc:  # e.g. every completed trial has the same parameters
        return {}, f"{type(exc).__name__}: {exc}"


def write_plots(study: Any, optuna: Any, folder: Path, monitor: str) -> list[Path] | str:
    """Optimisation history and objective vs each parameter as PNG, or why there are none."""
    try:
        import matplotlib
    except ImportError:
        return "install the plot extra (pip install \"mmtk[plot]\") for PNG plots"
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not done:
        return "no completed trial to plot"
    vis = optuna.visualization.matplotlib
    written = []
    for name, draw in (("history", vis.plot_optimization_history), ("params", vis.plot_slice)):
        with warnings.catch_warnings():  # one trial or one value: matplotlib widens the axis itself
            warnings.simplefilter("ignore", UserWarning)
            axes = draw(study, target_name=f"val {monitor}")
        first = axes.flat[0] if hasattr(axes, "flat") else axes
        if hasattr(axes, "flat"):  # one panel per parameter: room for their long recipe paths
            first.figure.set_size_inches(5.5 * len(axes.flat), 4.5)
        path = folder / f"{name}.png"
        first.figure.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(first.figure)
        written.append(path)
    return written
