"""Result tables: rich on a terminal, plain text otherwise, CSV for files."""
from __future__ import annotations

import csv
import io
from pathlib import Path


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
                 info: dict | None = None) -> tuple[list[str], list[list[str]]]:
    """One row per metric (default: every metric in the summary), one column per condition.
    ``info`` is a run's ``metrics_info`` (which metrics are rates shown in %)."""
    conds = condition_order(list(summary.get(split, {})))
    header = ["metric"] + conds
    rows = []
    for m in metrics or (list(summary[split][conds[0]]) if conds else []):
        if conds and m in summary[split][conds[0]]:
            rows.append([metric_label(info, m)] +
                        [fmt(summary[split][c][m], is_percent(info, m)) for c in conds])
    return header, rows


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
        Console(file=buf, force_terminal=True, width=200).print(table)
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


def write_csv(path: Path, per_trial: dict, summary: dict) -> None:
    """One row per (trial or summary, split, condition, metric)."""
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
    from .rundir import atomic_write_text  # imports torch: not at module level, so listings stay fast
    atomic_write_text(path, buf.getvalue())
