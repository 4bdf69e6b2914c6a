"""The figure of ``mmtk compare``: one metric per condition as grouped bars.

One group per evaluation condition (in the tables' order, ``mean`` last), one colour per
method, error bars = the 95 % CI of the mean over trials from the comparison's paired test
(a t interval over seeds, or the bootstrap's) when the statistics were computed, else ± one
standard deviation over trials. A dataset's known bound (e.g. the Bayes bound of synthetic
data) is a dashed line over its condition. The value axis starts just below the lowest bar,
so the axis range is written on the figure.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from .compare_stats import ci_label
from .report import condition_order, is_percent

if TYPE_CHECKING:
    from .compare import Entry
    from .compare_stats import ComparisonStats

SPLIT = "test"
NO_MATPLOTLIB = "pip install 'mmtk[plot]' (or pip install matplotlib)"


def bar_values(entries: list[Entry], metric: str, info: dict, stats: ComparisonStats | None = None
               ) -> tuple[list[str], dict[str, list[float]], dict[str, list[tuple[float, float]]], str]:
    """(conditions, method -> mean per condition, method -> (below, above) error per
    condition, what the error bars are), on the figure's scale (% for rates)."""
    done = [e for e in entries if e.results]
    conds = condition_order(list(done[0].results["summary"][SPLIT])) if done else []   # type: ignore[index]
    scale = 100.0 if is_percent(info, metric) else 1.0
    use_ci = stats is not None and all(metric in stats.ci.get(e.name, {}) for e in done)
    means: dict[str, list[float]] = {}
    errors: dict[str, list[tuple[float, float]]] = {}
    for e in done:
        summary = e.results["summary"][SPLIT]   # type: ignore[index]
        means[e.name] = [scale * summary[c][metric]["mean"] if c in summary else float("nan") for c in conds]
        if use_ci:
            ci = stats.ci[e.name][metric]   # type: ignore[union-attr]
            errors[e.name] = [(m - scale * ci[c][0], scale * ci[c][1] - m) if c in ci else (0.0, 0.0)
                              for m, c in zip(means[e.name], conds)]
        else:
            errors[e.name] = [(scale * summary[c][metric]["std"],) * 2 if c in summary else (0.0, 0.0)
                              for c in conds]
    what = ci_label(stats.test) if use_ci and stats is not None else "± 1 std over trials"
    return conds, means, errors, what


def draw_condition_figure(entries: list[Entry], path: Path, metric: str, info: dict,
                          stats: ComparisonStats | None = None, bound: dict[str, float] | None = None
                          ) -> Path | None:
    """Write the figure to ``path``; None (and one line on stderr saying how to get it) when
    matplotlib is missing, or when no run finished."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"mmtk: note: no comparison figure ({path.name}): drawing it needs matplotlib: {NO_MATPLOTLIB}",
              file=sys.stderr)
        return None
    conds, means, errors, what = bar_values(entries, metric, info, stats)
    if not means:
        return None
    scale = 100.0 if is_percent(info, metric) else 1.0
    fig, ax = plt.subplots(figsize=(min(16.0, 2.0 + len(conds) * (0.35 + 0.2 * len(means))), 4.2))
    _bars(ax, conds, means, errors, method_colours(plt, len(means)))
    if bound:
        _bound_lines(ax, conds, {c: scale * v for c, v in bound.items()}, len(means))
    _axes(ax, conds, means, errors, metric, scale,
          [scale * v for c, v in (bound or {}).items() if c in conds])
    ax.set_title(f"{metric.upper()} on {SPLIT} per condition; error bars: {what}", fontsize=9)
    ax.legend(fontsize=7, ncol=min(len(means) + bool(bound), 4), loc="upper left", bbox_to_anchor=(0, -0.12))
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def method_colours(plt: Any, n: int) -> list[Any]:
    """``n`` colours, all different up to 60 methods (tab10; tab20; then tab20, tab20b and
    tab20c together): a single 20-colour map gave methods 20 and on one shared colour."""
    if n <= 10:
        return [plt.get_cmap("tab10")(i) for i in range(n)]
    palette = [plt.get_cmap(name)(i) for name in ("tab20", "tab20b", "tab20c") for i in range(20)]
    return [palette[i % len(palette)] for i in range(n)]


def _bars(ax: Any, conds: list[str], means: dict, errors: dict, colours: list[Any]) -> None:
    width = 0.8 / len(means)
    for i, (name, values) in enumerate(means.items()):
        below, above = zip(*errors[name]) if errors[name] else ((), ())
        ax.bar([j - 0.4 + (i + 0.5) * width for j in range(len(conds))], values, width,
               yerr=[list(below), list(above)], capsize=2, color=colours[i], label=name,
               error_kw={"elinewidth": 0.8})


def _bound_lines(ax: Any, conds: list[str], bound: dict[str, float], n_methods: int) -> None:
    from .report import BOUND_LABEL

    marked = [j for j, c in enumerate(conds) if c in bound]
    for j in marked:   # one dashed line over each condition's group; one legend entry
        ax.hlines(bound[conds[j]], j - 0.42, j + 0.42, colors="k", linestyles="dashed",
                  label=BOUND_LABEL if j == marked[0] else None)


def _axes(ax: Any, conds: list[str], means: dict, errors: dict, metric: str, scale: float,
          marks: Sequence[float] = ()) -> None:
    """Condition labels; a value axis from a little below the lowest error bar (bars from 0
    would hide differences of a point), said in the label, and up to the highest bar or
    reference line (``marks``, e.g. the Bayes bound)."""
    lows = [m - e[0] for name in means for m, e in zip(means[name], errors[name]) if m == m]
    highs = [m + e[1] for name in means for m, e in zip(means[name], errors[name]) if m == m] + list(marks)
    span = max(highs) - min(lows) if lows else 1.0
    floor = max(0.0, min(lows) - 0.15 * span - 1e-9) if lows and min(lows) >= 0 else (min(lows) if lows else 0)
    ax.set_ylim(floor, max(highs) + 0.1 * span if highs else 1)
    ax.set_xticks(range(len(conds)), conds)
    ax.set_xlabel("condition (modalities present; mean = over the missing conditions)", fontsize=8)
    unit = " (%)" if scale == 100 else ""
    ax.set_ylabel(f"{metric.upper()}{unit}" + (f", axis from {floor:.3g}" if floor > 0 else ""), fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
