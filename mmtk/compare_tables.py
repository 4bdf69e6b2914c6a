"""The tables of ``mmtk compare``: Markdown, CSV, the terminal and a bar plot.

The main table: per method and condition, mean ± std over trials and the 95 % CI of that
mean (:func:`mmtk.compare_stats.choose_test`: a t interval over seeds, or the bootstrap's),
and the number of trials. Then, per compared method, its paired difference to the reference
with CI, p-value, Holm-adjusted p-value and a mark when significant. With
``--missing-rates``, the robustness section and files of :mod:`mmtk.compare_robustness`.
"""
from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .compare_robustness import Robustness, print_robustness, robustness_markdown, write_robustness
from .compare_stats import ComparisonStats, Difference, ci_label, describe_test
from .report import (
    BOUND_KEY,
    BOUND_LABEL,
    TABLE_WIDTH,
    bound_cells,
    condition_order,
    first_that_fits,
    fmt,
    is_percent,
    markdown_table,
    render_table,
    terminal_width,
)
from .rundir import atomic_write_text

if TYPE_CHECKING:
    from .compare import Entry

SPLIT = "test"


def shown_metrics(entries: list[Entry], chosen: list[str] | None = None) -> list[str]:
    """The metrics a comparison shows: ``chosen`` (``--metrics``), else one, so the table fits
    a terminal: the recipes' selection metric (``train.monitor``, e.g. UAR) when evaluated,
    else the second evaluated (the recipe's ``eval.metrics`` order), else the first."""
    if chosen:
        return list(chosen)
    done = [e for e in entries if e.results]
    summary = done[0].results["summary"][SPLIT] if done else {}
    recipe = entries[0].resolved if entries else None
    evaluated = (list(next(iter(summary.values()))) if summary else
                 list(recipe.eval.metrics) if recipe is not None else [])
    monitor = recipe.last_stage.train.monitor if recipe is not None else None
    if monitor in evaluated:
        return [monitor]
    return evaluated[1:2] or evaluated[:1]


def metrics_info(entries: list[Entry]) -> dict:
    return next((e.results.get("metrics_info") or {} for e in entries if e.results), {})


def dataset_bound(entries: list[Entry]) -> dict:
    """The bound the compared runs' dataset gives (the same data in every row: checked)."""
    return next((e.results[BOUND_KEY] for e in entries if e.results and e.results.get(BOUND_KEY)), {})


# cell styles of the terminal table, most detailed first ("tight" drops the spaces around ±)
CELL_STYLES = {"full": "mean ± std [95 % CI]", "std": "mean ± std", "tight": "mean±std", "mean": "mean",
               "short": "mean, rounded"}


def _cell(stat: dict, ci: tuple[float, float] | None, percent: bool, style: str = "full") -> str:
    if style == "mean":
        return fmt(stat["mean"], percent)
    if style == "short":   # one decimal fewer than fmt's
        return f"{stat['mean'] * 100:.1f}" if percent else f"{stat['mean']:.2f}"
    text = fmt(stat, percent)
    if style == "tight":
        return text.replace(" ± ", "±")
    return text if ci is None or style != "full" else f"{text} [{fmt(ci[0], percent)}, {fmt(ci[1], percent)}]"


def comparison_rows(entries: list[Entry], metrics: list[str], stats: ComparisonStats | None,
                    info: dict, style: str = "full") -> tuple[list[str], list[list[str]]]:
    done = [e for e in entries if e.results]
    conds = condition_order(list(done[0].results["summary"][SPLIT])) if done else []
    rows = []
    for e in entries:
        if not e.results:
            rows.append([e.name, "-"] + ["failed"] * len(conds))
            continue
        s = e.results["summary"][SPLIT]
        ci = stats.ci.get(e.name, {}) if stats else {}
        n = str(s[conds[0]][metrics[0]]["n"]) if conds else "0"
        sep = "/" if style in ("tight", "mean", "short") else " / "
        rows.append([e.name, n] + [sep.join(_cell(s[c][m], ci.get(m, {}).get(c), is_percent(info, m), style)
                                              for m in metrics) if c in s else "-" for c in conds])
    bound = dataset_bound(entries)
    if any(m in bound for m in metrics):
        per_metric = [bound_cells(bound.get(m, {}), conds, is_percent(info, m)) for m in metrics]
        rows.append([BOUND_LABEL, "-"] + [" / ".join(cells) for cells in zip(*per_metric)])
    return ["method", "n"] + conds, rows


def difference_rows(stats: ComparisonStats, method: str, info: dict) -> tuple[list[str], list[list[str]]]:
    percent = is_percent(info, stats.metric)
    diffs = {d.condition: d for d in stats.differences if d.method == method}
    rows = []
    for cond in condition_order(list(diffs)):
        d = diffs[cond]
        sign = "+" if d.diff >= 0 else ""
        rows.append([cond, sign + fmt(d.diff, percent), f"[{fmt(d.ci_low, percent)}, {fmt(d.ci_high, percent)}]",
                     _p(d.p), _p(d.p_holm), "*" if d.significant else ""])
    return ["condition", "difference", "95 % CI", "p", "p (Holm)", "sig."], rows


def _p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def stats_heading(stats: ComparisonStats, info: dict) -> str:
    better = "higher" if (info.get(stats.metric) or {}).get("higher_is_better", True) else "lower"
    unit = " in %" if is_percent(info, stats.metric) else ""
    return (f"Paired differences to {stats.reference} ({stats.metric.upper()}{unit}, method − reference; "
            f"{better} is better): {describe_test(stats.test, stats.n_trials, stats.n_boot, stats.seed)}; "
            f"p two-sided; * = Holm-adjusted p < {stats.alpha:g} over the {len(stats.differences)} comparisons "
            f"(test chosen because {stats.test_reason})." + _floor_warning(stats))


def _floor_warning(stats: ComparisonStats) -> str:
    """A bootstrap p-value is at least 2 / (B + 1), so with many comparisons and few draws
    nothing can be significant after Holm: say so rather than let 'no *' read as 'no effect'."""
    if stats.test != "bootstrap":
        return ""
    m = len(stats.differences)
    floor = m * 2 / (stats.n_boot + 1)
    if floor < stats.alpha:
        return ""
    needed = int(2 * m / stats.alpha * 2)
    return (f" Note: with B = {stats.n_boot} draws no Holm-adjusted p can fall below {min(floor, 1):.3f}; "
            f"rerun with --bootstrap {needed} or more to be able to detect differences.")


def thread_note(run_dir: Path) -> str:
    """`` (N torch threads)``: how a reused run ran. The counts its epochs recorded (under
    ``auto`` each stage's probe picks its own), else the count in its environment.json."""
    counts: set[int] = set()
    for history in Path(run_dir).glob("trials/*/history-*.json"):
        try:
            counts |= {r["threads"] for r in json.loads(history.read_text()) if isinstance(r.get("threads"), int)}
        except (OSError, ValueError, AttributeError, TypeError):
            continue
    if not counts:
        try:
            threads = json.loads((Path(run_dir) / "environment.json").read_text()).get("threads")
        except (OSError, ValueError, AttributeError):
            return ""
        if not isinstance(threads, int):
            return ""
        counts = {threads}
    text = "–".join(str(c) for c in sorted({min(counts), max(counts)}))
    return f" ({text} torch thread{'s' if counts != {1} else ''})"


def markdown(entries: list[Entry], metrics: list[str], stats: ComparisonStats | None, note: str,
             info: dict, cards: str = "", robustness: Robustness | None = None) -> str:
    units = ", ".join(f"{m.upper()}{' in %' if is_percent(info, m) else ''}" for m in metrics)
    ci = f" [{ci_label(stats.test)}]" if stats else ""
    text = (f"Cells: {' / '.join(m.upper() for m in metrics)} ({units}), mean ± std over trials (seeds and "
            f"folds){ci}; n = trials; split: {SPLIT}; 'mean' = mean over the missing conditions.\n\n")
    text += markdown_table(*comparison_rows(entries, metrics, stats, info))
    if stats:
        text += "\n" + stats_heading(stats, info) + "\n"
        for method in dict.fromkeys(d.method for d in stats.differences):
            text += f"\n### {method} − {stats.reference}\n\n" + markdown_table(*difference_rows(stats, method, info))
    elif note:
        text += f"\nNo paired statistics: {note}\n"
    if robustness:
        text += robustness_markdown(robustness, info)
    runs = "\n".join(f"- {e.name}: {e.run_dir}{thread_note(e.run_dir)}" if e.run_dir
                     else f"- {e.name}: FAILED: {e.error}" for e in entries)
    return text + (f"\n{cards.capitalize()}.\n" if cards else "") + "\nRuns:\n" + runs + "\n"


def csv_text(entries: list[Entry], metrics: list[str], stats: ComparisonStats | None) -> str:
    """One row per (method, condition) with mean, std, n (and CIs); then, with statistics, one
    row per difference to the reference (its own columns filled, the others empty)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    head = ["method", "condition"] + [f"{m}_{s}" for m in metrics for s in ("mean", "std")] + ["n"]
    diff_cols = ["reference", "metric", "diff", "ci_low", "ci_high", "p", "p_holm", "significant"]
    if stats:
        head += [f"{m}_ci_{s}" for m in metrics for s in ("low", "high")] + diff_cols
    w.writerow(head)
    for e in (e for e in entries if e.results):
        ci = stats.ci.get(e.name, {}) if stats else {}
        for c, st in e.results["summary"][SPLIT].items():
            row = [e.name, c] + [f"{st[m][k]:.6f}" for m in metrics for k in ("mean", "std")] + [st[metrics[-1]]["n"]]
            if stats:
                row += [f"{v:.6f}" for m in metrics for v in ci[m][c]] + [""] * len(diff_cols)
            w.writerow(row)
    for d in stats.differences if stats else []:
        w.writerow([d.method, d.condition] + [""] * (len(head) - 2 - len(diff_cols)) + _diff_cells(stats, d))
    bound = dataset_bound(entries)   # one row per condition, method "bayes_bound", the means filled
    for c in sorted({c for m in metrics for c in bound.get(m, {})}):
        cells = [x for m in metrics for x in (f"{bound[m][c]:.6f}" if c in bound.get(m, {}) else "", "")]
        w.writerow([BOUND_KEY, c] + cells + [""] * (len(head) - 2 - len(cells)))
    return buf.getvalue()


def _diff_cells(stats: ComparisonStats, d: Difference) -> list[str]:
    return [stats.reference, stats.metric, f"{d.diff:.6f}", f"{d.ci_low:.6f}", f"{d.ci_high:.6f}",
            f"{d.p:.6f}", f"{d.p_holm:.6f}", str(d.significant).lower()]


def write_outputs(entries: list[Entry], directory: Path, metrics: list[str], stats: ComparisonStats | None,
                  note: str = "", cards: str = "", robustness: Robustness | None = None) -> dict[str, Path]:
    info = metrics_info(entries)
    paths = {"markdown": directory / "comparison.md", "csv": directory / "comparison.csv"}
    if robustness:   # first: it notes in the curves when the plot could not be drawn
        paths.update(write_robustness(robustness, directory, info))
    atomic_write_text(paths["markdown"], markdown(entries, metrics, stats, note, info, cards, robustness))
    atomic_write_text(paths["csv"], csv_text(entries, metrics, stats))
    shown = stats.metric if stats and stats.metric in metrics else metrics[-1]   # the one with CIs
    png = plot_metric(entries, directory / f"comparison-{shown}.png", shown, info, stats)
    if png:
        paths["plot"] = png
    return paths


def plot_metric(entries: list[Entry], path: Path, metric: str, info: dict,
                stats: ComparisonStats | None = None) -> Path | None:
    """Per-condition values of one metric per method as grouped bars with error bars, the
    dataset's bound marked (:mod:`mmtk.compare_figure`; needs the optional matplotlib)."""
    from .compare_figure import draw_condition_figure
    return draw_condition_figure(entries, path, metric, info, stats, dataset_bound(entries).get(metric, {}))


def print_comparison(entries: list[Entry], paths: dict[str, Path], terminal: bool, metrics: list[str],
                     stats: ComparisonStats | None, note: str = "", cards: str = "",
                     robustness: Robustness | None = None) -> None:
    info = metrics_info(entries)
    # the most detailed cells that fit the terminal (at most TABLE_WIDTH): the table never wraps
    tables = [comparison_rows(entries, metrics, stats, info, style) for style in CELL_STYLES]
    limit = min(TABLE_WIDTH, terminal_width()) if terminal else TABLE_WIDTH
    chosen = list(CELL_STYLES)[first_that_fits(tables, limit, terminal)]
    shown = CELL_STYLES[chosen] if stats or chosen != "full" else CELL_STYLES["std"]
    more = "" if chosen == "full" else f" (full cells in {paths['markdown'].name})" if "markdown" in paths else ""
    title = " / ".join(m.upper() for m in metrics) + f" on {SPLIT}, {shown}{more}"
    print(render_table(*tables[list(CELL_STYLES).index(chosen)], title, rich_output=terminal))
    if stats:
        print(stats_heading(stats, info))
        for method in dict.fromkeys(d.method for d in stats.differences):
            print(render_table(*difference_rows(stats, method, info), f"{method} − {stats.reference}",
                               rich_output=terminal))
    elif note:
        print(f"No paired statistics: {note}")
    if robustness:
        print_robustness(robustness, info, terminal)
    if cards:
        print(cards)
    for kind, p in paths.items():
        print(f"{kind}: {p}")
    for e in (e for e in entries if e.error):
        print(f"FAILED {e.name}: {e.error}", file=sys.stderr)
