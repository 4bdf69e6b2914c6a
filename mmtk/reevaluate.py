"""``mmtk eval RUN_DIR``: every metric recomputed from the trials' kept predictions.

Nothing is retrained and the saved ``metrics.json`` is not trusted: each finished trial's
``predictions.npz`` is scored again with the run's metrics (plus any asked for with
``--metrics``), and a value that differs from the one saved when the run ended is reported.
Confusion matrices per condition are summed over trials.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .builder import Builder
from .errors import MmtkError
from .metrics import Metric, describe, summarize_trials
from .predictions import FILE, TrialPredictions, confusion_matrices, load_predictions, score_predictions
from .rundir import read_json
from .task import metric_reads


def trial_dirs(run_dir: Path) -> list[Path]:
    """Finished trials (those with predictions), in trial-key order."""
    found = sorted(p.parent for p in (run_dir / "trials").glob(f"*/{FILE}"))
    if not found:
        raise MmtkError(f"'{run_dir}' has no trial with kept predictions (trials/*/{FILE}): it is not "
                        "an mmtk run folder, it has not finished a trial, or it was made before mmtk "
                        f"kept predictions (then rerun it); resume an unfinished one with "
                        f"mmtk run --resume {run_dir}")
    return found


def run_metric_names(run_dir: Path) -> list[str]:
    """The metrics the run evaluated (its saved recipe's eval.metrics)."""
    saved = run_dir / "recipe.yaml"
    try:
        recipe = yaml.safe_load(saved.read_text(encoding="utf-8"))
        return list(recipe["eval"]["metrics"])
    except (OSError, yaml.YAMLError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise MmtkError(f"cannot read the metrics of the run from {saved} ({type(exc).__name__}: "
                        f"{exc}); name them with --metrics") from None


def checked_metrics(names: list[str], registry: Any, target: str) -> dict[str, Metric]:
    metrics = Builder(registry).metrics(names)
    wrong = [n for n, m in metrics.items() if m.reads not in metric_reads(target)]
    if wrong:
        kind, other = (("a regression score", "class predictions") if target == "scores"
                       else ("classes", "a regression score"))
        raise MmtkError(f"--metrics {', '.join(wrong)}: this run predicts {kind}, but these metrics "
                        f"read {other}")
    return metrics


def reevaluate(run_dir: str | Path, registry: Any, extra: list[str] | None = None) -> dict:
    """A results dict like the run's ``metrics.json``, recomputed from predictions, with
    ``mismatches``: (trial, split, condition, metric, saved, recomputed) that differ."""
    run_dir = Path(run_dir)
    dirs = trial_dirs(run_dir)
    loaded = {d.name: load_predictions(d / FILE) for d in dirs}
    target = next(iter(loaded.values())).target
    names = list(dict.fromkeys(run_metric_names(run_dir) + list(extra or [])))
    metrics = checked_metrics(names, registry, target)
    per_trial, mismatches = {}, []
    for key, preds in loaded.items():
        per_trial[key] = {split: score_predictions(sp, metrics, preds.num_classes)
                          for split, sp in preds.splits.items()}
        mismatches += _compare_saved(run_dir / "trials" / key, key, per_trial[key])
    return {"name": run_dir.parent.name, "directory": str(run_dir), "trials": per_trial,
            "summary": summarize_trials(list(per_trial.values())), "metrics_info": describe(metrics),
            "mismatches": mismatches, "recomputed_from": FILE}


def _compare_saved(trial_dir: Path, key: str, recomputed: dict) -> list[tuple]:
    saved_path = trial_dir / "metrics.json"
    if not saved_path.is_file():
        return []
    saved = read_json(saved_path, "trial results file")
    out = []
    for split, conds in saved.items():
        for cond, values in conds.items():
            for name, value in values.items():
                new = recomputed.get(split, {}).get(cond, {}).get(name)
                if new is not None and not math.isclose(new, value, rel_tol=1e-9, abs_tol=1e-12):
                    out.append((key, split, cond, name, value, new))
    return out


def summed_confusions(run_dir: str | Path, split: str = "test") -> tuple[dict[str, np.ndarray], TrialPredictions]:
    """Confusion matrices per condition, summed over the run's trials."""
    dirs = trial_dirs(Path(run_dir))
    total: dict[str, np.ndarray] = {}
    first = None
    for d in dirs:
        preds = load_predictions(d / FILE)
        first = first or preds
        if preds.target == "scores":
            raise MmtkError("--confusion needs a classification run; this run predicts regression scores")
        for cond, cm in confusion_matrices(preds.splits[split], preds.num_classes).items():
            total[cond] = total.get(cond, 0) + cm
    assert first is not None
    return total, first


def confusion_tables(total: dict[str, np.ndarray],
                     class_names: list[str]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) per condition: rows are true classes, columns predicted."""
    k = next(iter(total.values())).shape[0]
    names = class_names if len(class_names) == k else [str(i) for i in range(k)]
    return [(f"condition {cond} (rows: true class, columns: predicted)", ["true \\ pred", *names],
             [[names[i], *map(str, cm[i].tolist())] for i in range(k)]) for cond, cm in total.items()]


def plot_confusions(total: dict[str, np.ndarray], class_names: list[str], path: Path) -> Path | None:
    """One heat map per condition, row-normalised (needs the optional matplotlib)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    conds = list(total)
    k = total[conds[0]].shape[0]
    names = class_names if len(class_names) == k else [str(i) for i in range(k)]
    fig, axes = plt.subplots(1, len(conds), figsize=(2.6 * len(conds), 3.6), squeeze=False)
    for ax, cond in zip(axes[0], conds):
        cm = total[cond].astype(float)
        rates = cm / np.maximum(cm.sum(1, keepdims=True), 1)
        ax.imshow(rates, vmin=0, vmax=1, cmap="Blues")
        ax.set_title(cond)
        ax.set_xticks(range(k), names, rotation=90, fontsize=7)
        ax.set_yticks(range(k), names if ax is axes[0][0] else [""] * k, fontsize=7)
        for i in range(k):
            for j in range(k):
                ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=6,
                        color="white" if rates[i, j] > 0.5 else "black")
    fig.supxlabel("predicted class", fontsize=8)
    fig.supylabel("true class", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
