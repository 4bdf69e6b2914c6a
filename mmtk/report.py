"""Result tables: rich on a terminal, plain text otherwise, CSV for files.

A dataset may know the best score any model can reach on it (a synthetic one whose
distribution is known): it puts ``{metric: {condition: rate}}`` in ``DataSplits.info
["bayes_bound"]``, the trial records it in its ``data.json``, the run in ``metrics.json``
(:func:`dataset_bounds`), and every table shows it as one more row, :data:`BOUND_LABEL`. The
core neither computes nor interprets it: it shows what the dataset provides.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

BOUND_KEY = "bayes_bound"
BOUND_LABEL = "Bayes bound (from the dataset)"


def condition_order(conds: list[str]) -> list[str]:
    """Missing conditions by size then name, then the full set, then 'mean' last."""
    special = [c for c in conds if c == "mean"]
    rest = sorted((c for c in conds if c != "mean"), key=lambda c: (len(c.split("+")) if "+" in c else len(c), c))
    return rest + special


def fmt(stat: dict | float, percent: bool = True) -> str:
    """A rate in % with 2 decimals; other values (MAE, correlation) as they are, 3 decimals."""
    scale, digits = (100.0, 2) if percent else (1.0, 3)
    if isinstance(stat, dict):
        if stat.get("n", 1) > 1:
            return f"{stat['mean'] * scale:.{digits}f} ± {stat['std'] * scale:.{digits}f}"
        return f"{stat['mean'] * scale:.{digits}f}"
    return f"{stat * scale:.{digits}f}"


def is_percent(info: dict | None, metric: str) -> bool:
    """Whether a metric is a rate shown in % (results without metric facts: classification)."""
    return bool(((info or {}).get(metric) or {}).get("percent", True))


def metric_label(info: dict | None, metric: str) -> str:
    return metric.upper() + ("" if is_percent(info, metric) else " (raw)")


def summary_rows(summary: dict, split: str = "test", metrics: list[str] | None = None,
                 info: dict | None = None, bounds: dict | None = None) -> tuple[list[str], list[list[str]]]:
    """One row per metric (default: every metric in the summary), one column per condition.
    ``info`` is a run's ``metrics_info`` (which metrics are rates shown in %); ``bounds`` its
    dataset's bound (``results["bayes_bound"]``), shown as one more row per bounded metric."""
    conds = condition_order(list(summary.get(split, {})))
    header = ["metric"] + conds
    rows, shown = [], []
    for m in metrics or (list(summary[split][conds[0]]) if conds else []):
        if conds and m in summary[split][conds[0]]:
            rows.append([metric_label(info, m)] +
                        [fmt(summary[split][c][m], is_percent(info, m)) for c in conds])
            shown.append(m)
    for m in shown:
        if m in (bounds or {}):
            label = f"{metric_label(info, m)}: {BOUND_LABEL}"
            rows.append([label] + bound_cells(bounds[m], conds, is_percent(info, m)))
    return header, rows


def bound_cells(bound: dict[str, float], conds: list[str], percent: bool = True) -> list[str]:
    """A bound's value per column; '-' where the dataset gives none (e.g. another protocol's
    condition names)."""
    return [fmt(bound[c], percent) if c in bound else "-" for c in conds]


def dataset_bounds(directory: Path, trial_keys: list[str]) -> dict[str, dict[str, float]]:
    """``{metric: {condition: rate}}``: the bound the dataset gave in each trial's
    ``data.json``, averaged over the trials that have one (it is one value per task: trials
    that redraw samples of the same task agree). Its ``mean`` is computed here, over the
    conditions the trial's own ``mean`` averages (whatever the protocol), never taken from
    the dataset. Empty when the dataset gives none."""
    given: dict[str, dict[str, list[float]]] = {}
    for key in trial_keys:
        trial = Path(directory) / "trials" / key
        try:
            bound = json.loads((trial / "data.json").read_text(encoding="utf-8")).get(BOUND_KEY)
        except (OSError, ValueError, AttributeError):
            continue   # no data.json (e.g. not the main DDP rank): nothing to show
        averaged = _mean_over(trial)
        for metric, conds in (bound or {}).items():
            values = {c: float(v) for c, v in (conds or {}).items() if isinstance(v, (int, float)) and c != "mean"}
            if averaged and all(c in values for c in averaged):
                values["mean"] = sum(values[c] for c in averaged) / len(averaged)
            for cond, value in values.items():
                given.setdefault(metric, {}).setdefault(cond, []).append(value)
    return {m: {c: sum(v) / len(v) for c, v in conds.items()} for m, conds in given.items()}


def _mean_over(trial: Path) -> list[str]:
    """The conditions a trial's test ``mean`` averages, from its kept predictions ([] if none)."""
    import numpy as np

    try:
        with np.load(trial / "predictions.npz", allow_pickle=False) as arrays:
            return [str(c) for c in arrays["test.mean_over"]]
    except (OSError, KeyError, ValueError):
        return []


TABLE_WIDTH = 120   # the widest table a compact listing (e.g. mmtk compare's) may print


def terminal_width() -> int:
    import shutil
    return shutil.get_terminal_size((TABLE_WIDTH, 24)).columns


def table_width(header: list[str], rows: list[list[str]], rich_output: bool = False) -> int:
    """Characters per line of the table as :func:`render_table` draws it."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    return sum(widths) + (3 * len(widths) + 1 if rich_output else 2 * (len(widths) - 1))


def first_that_fits(tables: list[tuple[list[str], list[list[str]]]], limit: int,
                    rich_output: bool = False) -> int:
    """The index of the first (most detailed) table that fits in ``limit`` columns, else the last."""
    for i, (header, rows) in enumerate(tables):
        if table_width(header, rows, rich_output) <= limit:
            return i
    return len(tables) - 1


def render_table(header: list[str], rows: list[list[str]], title: str = "", rich_output: bool = False) -> str:
    if rich_output:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title or None)
        for h in header:
            table.add_column(h, justify="right" if h != header[0] else "left")
        for r in rows:
            table.add_row(*r)
        buf = io.StringIO()
        # the terminal's own width: a wider table folds its cells instead of wrapping its lines
        Console(file=buf, force_terminal=True, width=terminal_width()).print(table)
        return buf.getvalue()
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    lines = [title] if title else []
    lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(lines) + "\n"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out) + "\n"


def write_csv(path: Path, per_trial: dict, summary: dict, bounds: dict | None = None) -> None:
    """One row per (trial or summary, split, condition, metric); then the dataset's bound, if
    it gives one (trial ``bayes_bound``, no split: it holds for any sample of the data)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["trial", "split", "condition", "metric", "value", "std", "n"])
    for key, res in per_trial.items():
        for split, conds in res.items():
            for cond, metrics in conds.items():
                for m, v in metrics.items():
                    w.writerow([key, split, cond, m, f"{v:.6f}", "", 1])
    for split, conds in summary.items():
        for cond, metrics in conds.items():
            for m, s in metrics.items():
                w.writerow(["summary", split, cond, m, f"{s['mean']:.6f}", f"{s['std']:.6f}", s["n"]])
    for m, conds in (bounds or {}).items():
        for cond, v in conds.items():
            w.writerow([BOUND_KEY, "", cond, m, f"{v:.6f}", "", ""])
    from .rundir import atomic_write_text  # imports torch: not at module level, so listings stay fast
    atomic_write_text(path, buf.getvalue())
