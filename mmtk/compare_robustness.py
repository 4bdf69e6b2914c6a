"""Robustness curves of ``mmtk compare --missing-rates``: one metric per method and missing rate.

Every finished run's models are evaluated at every rate η (:mod:`mmtk.robustness`: the same
fixed masks for every method and trial). The paired test of :mod:`mmtk.compare_stats` (the
seed-level t-test where every seed has its own test set, else the paired bootstrap), with the
rates as its conditions, gives each method's mean over trials per rate and a 95 % CI; the
area under the curve (trapezoidal, divided by the rate range, so it reads on the metric's
scale) gets its CI from the same draws, and its paired difference to the reference a CI and a
p-value. Outputs: ``robustness.csv``, ``robustness.png`` (with the optional matplotlib), a
section of ``comparison.md``, the terminal and ``--json``.
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .compare_stats import StatsOptions, check_paired, describe_test, paired_estimates
from .errors import MmtkError, did_you_mean
from .predictions import SplitPredictions, score_predictions
from .report import fmt, is_percent, markdown_table, render_table
from .robustness import MASK_SEED, rate_name, run_rate_predictions
from .rundir import atomic_write_text
from .stats import Estimate

if TYPE_CHECKING:
    from .compare import Entry


@dataclass
class RobustnessOptions:
    rates: list[float]
    metric: str | None = None   # default: the statistics metric, else the second shown one


@dataclass
class Curve:
    method: str
    trained_under: str                          # the recipe's last-stage missing.train block
    mean: list[float]                           # per rate, mean over trials
    ci: list[tuple[float, float]] | None        # per rate (None without bootstrap)
    auc: float
    auc_ci: tuple[float, float] | None
    auc_diff: float | None = None               # method − reference
    auc_diff_ci: tuple[float, float] | None = None
    auc_p: float | None = None


@dataclass
class Robustness:
    metric: str
    rates: list[float]
    reference: str
    n_trials: int
    n_boot: int
    bootstrap_seed: int
    mask_seed: int
    test: str = "bootstrap"      # the paired test behind the CIs: "bootstrap" or "seed-t"
    test_reason: str = ""
    curves: list[Curve] = field(default_factory=list)
    achieved: list[float] = field(default_factory=list)   # missing-cell fraction actually reached per rate
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def check_rates(rates: list[float]) -> list[float]:
    """Rates in [0, 1), increasing, distinct, at least two (a curve needs two points)."""
    bad = [r for r in rates if not (isinstance(r, (int, float)) and 0.0 <= r < 1.0)]
    if bad:
        raise MmtkError(f"--missing-rates: {', '.join(f'{r:g}' for r in bad)} is not a missing rate; each rate "
                        "is the fraction of (sample, modality) cells missing, in [0, 1) (at least one modality "
                        "per sample is always kept), e.g. --missing-rates 0 0.1 0.3 0.5")
    names = [rate_name(r) for r in rates]
    if len(set(names)) != len(names):
        raise MmtkError(f"--missing-rates {' '.join(f'{r:g}' for r in rates)}: a rate is given twice; give "
                        "each rate once")
    if list(rates) != sorted(rates):
        raise MmtkError(f"--missing-rates {' '.join(f'{r:g}' for r in rates)}: give the rates in increasing "
                        f"order ({' '.join(f'{r:g}' for r in sorted(rates))})")
    if len(rates) < 2:
        raise MmtkError("--missing-rates: a robustness curve needs at least two rates, e.g. --missing-rates 0 0.5")
    return [float(r) for r in rates]


def check_robustness_options(evaluated: list[str], opts: RobustnessOptions) -> None:
    """Before anything runs."""
    check_rates(opts.rates)
    if opts.metric is not None and opts.metric not in evaluated:
        raise MmtkError(f"--rate-metric {opts.metric}: not among the recipes' eval.metrics "
                        f"({', '.join(evaluated)}){did_you_mean(opts.metric, evaluated)}")


def area_under(values: np.ndarray, rates: list[float]) -> np.ndarray:
    """Trapezoidal area over the last axis, divided by the rate range (the curve's mean height)."""
    r = np.asarray(rates, dtype=np.float64)
    return ((values[..., 1:] + values[..., :-1]) / 2 * np.diff(r)).sum(-1) / (r[-1] - r[0])


def paired_rate_trials(entries: list[Entry], system: Any,
                       rates: list[float]) -> tuple[list[list[SplitPredictions]], int]:
    """``trials[t][m]`` of the finished entries (in order); refuses unpaired rows."""
    per_method, num_classes = {}, 0
    for e in entries:
        per_method[e.name], k = run_rate_predictions(e.run_dir, system, rates, MASK_SEED)
        num_classes = max(num_classes, k)
    ref = entries[0].name
    keys = list(per_method[ref])
    for name, trials in per_method.items():
        if sorted(trials) != sorted(keys):
            raise MmtkError(f"cannot pair the robustness curves of '{name}' and '{ref}': their finished trials "
                            f"differ ({', '.join(trials)} vs {', '.join(keys)}); a paired comparison needs the "
                            "same seeds and folds. Rerun the failed trials.")
        for key in keys:
            if name != ref:
                check_paired(ref, per_method[ref][key], name, trials[key], key)
    return [[per_method[e.name][key] for e in entries] for key in keys], num_classes


def robustness_curves(entries: list[Entry], system: Any, shown: list[str], stats_opts: StatsOptions,
                      opts: RobustnessOptions) -> Robustness | None:
    """The curves of the finished runs (the reference first); None when none finished."""
    done = [e for e in entries if e.results]
    if not done:
        return None
    reference = next((e for e in done if e.name == (stats_opts.reference or entries[0].name)), None)
    done = ([reference] if reference else []) + [e for e in done if e is not reference]
    metric = opts.metric or stats_opts.metric or (shown[1] if len(shown) > 1 else shown[0])
    from .builder import Builder
    metric_obj = Builder(system.registry).metrics([metric])
    trials, num_classes = paired_rate_trials(done, system, opts.rates)
    n_boot = max(stats_opts.n_boot, 0)
    if n_boot:
        estimates, test, why = paired_estimates(done[0].run_dir, done[0].results, trials, metric_obj,
                                                num_classes, n_boot, stats_opts.seed, stats_opts.test)
        est: Estimate | None = estimates[metric]
        observed = estimates[metric].observed
    else:
        scored = [[score_predictions(sp, metric_obj, num_classes) for sp in methods] for methods in trials]
        observed = np.mean([[[s[rate_name(r)][metric] for r in opts.rates] for s in methods]
                            for methods in scored], axis=0)
        est, test, why = None, "", ""
    rob = Robustness(metric, list(opts.rates), reference.name if reference else "", len(trials), n_boot,
                     stats_opts.seed, MASK_SEED, test=test, test_reason=why)
    rob.curves = [_curve(e, i, observed, est, opts.rates, reference is not None) for i, e in enumerate(done)]
    rob.achieved = [float(np.mean([1 - methods[0].mask[j].mean() for methods in trials]))
                    for j in range(len(opts.rates))]
    rob.notes = _notes(rob, reference is None)
    return rob


def _curve(entry: Entry, i: int, observed: np.ndarray, est: Estimate | None, rates: list[float],
           has_reference: bool) -> Curve:
    auc = float(area_under(observed[i], rates))
    curve = Curve(entry.name, _block(entry.resolved.last_stage.missing.train.tree()),
                  [float(v) for v in observed[i]], None, auc, None)
    if est is None:
        return curve
    samples = est.samples   # bootstrap draws or per-trial values: the AUC is linear in both
    curve.ci = [est.ci(samples[:, i, j]) for j in range(len(rates))]
    auc_samples = area_under(samples[:, i, :], rates)
    curve.auc_ci = est.ci(auc_samples)
    if has_reference and i > 0:
        diff = auc_samples - area_under(samples[:, 0, :], rates)
        curve.auc_diff = auc - float(area_under(observed[0], rates))
        curve.auc_diff_ci, curve.auc_p = est.ci(diff), est.p(diff)
    return curve


def _block(tree: dict) -> str:
    params = ", ".join(f"{k}: {v}" for k, v in tree.items() if k != "type")
    return "{type: " + str(tree.get("type")) + (", " + params if params else "") + "}"


def _notes(rob: Robustness, reference_failed: bool) -> list[str]:
    notes = ["each model was trained once (per seed and fold) under its recipe's missing.train protocol and "
             "evaluated at every rate: " + "; ".join(f"{c.method} {c.trained_under}" for c in rob.curves)]
    off = [(r, a) for r, a in zip(rob.rates, rob.achieved) if not math.isclose(r, a, abs_tol=0.005)]
    if off:
        notes.append("the test data misses cells of its own, which count toward η (CPM-Nets), so some rates drop "
                     "nothing more; missing-cell fraction reached: "
                     + ", ".join(f"η {r:g} → {a:.3f}" for r, a in off))
    if reference_failed:
        notes.append("the reference run failed: no AUC differences")
    return notes


# ---------------------------------------------------------------------------- tables ---
def _cell(value: float, ci: tuple[float, float] | None, percent: bool) -> str:
    text = fmt(value, percent)
    return text if ci is None else f"{text} [{fmt(ci[0], percent)}, {fmt(ci[1], percent)}]"


def robustness_rows(rob: Robustness, info: dict) -> tuple[list[str], list[list[str]]]:
    """Method × rate, then the AUC and (with a reference) its paired difference."""
    pct = is_percent(info, rob.metric)
    rows = []
    for c in rob.curves:
        row = [c.method] + [_cell(m, c.ci[j] if c.ci else None, pct) for j, m in enumerate(c.mean)]
        row.append(_cell(c.auc, c.auc_ci, pct))
        if c.auc_diff is not None:
            sign = "+" if c.auc_diff >= 0 else ""
            row.append(f"{sign}{_cell(c.auc_diff, c.auc_diff_ci, pct)} (p {_p(c.auc_p)})")
        else:
            row.append("reference" if c.method == rob.reference else "-")
        rows.append(row)
    return ["method"] + [f"η {r:g}" for r in rob.rates] + ["AUC", f"AUC − {rob.reference or 'reference'}"], rows


def _p(p: float | None) -> str:
    return "-" if p is None else ("< 0.001" if p < 0.001 else f"{p:.3f}")


def robustness_heading(rob: Robustness, info: dict) -> str:
    unit = " in %" if is_percent(info, rob.metric) else ""
    ci = (f"; [95 % CI]: {describe_test(rob.test, rob.n_trials, rob.n_boot, rob.bootstrap_seed)}"
          if rob.n_boot else "; no CIs (--bootstrap 0)")
    return (f"Robustness: {rob.metric.upper()}{unit} on test under a fixed missing rate η (CPM-Nets: that fraction "
            f"of (sample, modality) cells missing, one modality kept per sample; mask seed {rob.mask_seed}, the "
            f"same masks for every method), mean over {rob.n_trials} trial(s){ci}. AUC = area under the mean "
            f"curve divided by the rate range ({rob.rates[0]:g} to {rob.rates[-1]:g}).")


def robustness_markdown(rob: Robustness, info: dict) -> str:
    text = "\n## Robustness\n\n" + robustness_heading(rob, info) + "\n\n"
    text += markdown_table(*robustness_rows(rob, info))
    return text + "".join(f"\nNote: {n}.\n" for n in rob.notes)


def print_robustness(rob: Robustness, info: dict, terminal: bool) -> None:
    print(render_table(*robustness_rows(rob, info), f"Robustness ({rob.metric.upper()} by missing rate)",
                       rich_output=terminal))
    print(robustness_heading(rob, info))
    for n in rob.notes:
        print(f"Note: {n}.")


def _num(v: float | None) -> str:
    return "" if v is None else f"{v:.6f}"


def robustness_csv(rob: Robustness) -> str:
    """One row per (method, rate), then one AUC row per method (rate 'auc'), with its paired
    difference to the reference."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["method", "rate", "metric", "mean", "ci_low", "ci_high", "n_trials",
                "reference", "diff", "diff_ci_low", "diff_ci_high", "p"])
    for c in rob.curves:
        for j, r in enumerate(rob.rates):
            lo, hi = c.ci[j] if c.ci else (None, None)
            w.writerow([c.method, f"{r:g}", rob.metric, _num(c.mean[j]), _num(lo), _num(hi), rob.n_trials]
                       + [""] * 5)
    for c in rob.curves:
        lo, hi = c.auc_ci or (None, None)
        dlo, dhi = c.auc_diff_ci or (None, None)
        w.writerow([c.method, "auc", rob.metric, _num(c.auc), _num(lo), _num(hi), rob.n_trials,
                    rob.reference if c.auc_diff is not None else "", _num(c.auc_diff), _num(dlo), _num(dhi),
                    _num(c.auc_p)])
    return buf.getvalue()


def plot_robustness(rob: Robustness, path: Path, info: dict) -> Path | None:
    """One line per method with its CI band (needs the optional matplotlib; None without it)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    scale = 100 if is_percent(info, rob.metric) else 1
    fig, ax = plt.subplots(figsize=(6, 4))
    for c in rob.curves:
        line = ax.plot(rob.rates, [scale * m for m in c.mean], marker="o",
                       label=f"{c.method} (AUC {fmt(c.auc, scale == 100)})")[0]
        if c.ci:
            ax.fill_between(rob.rates, [scale * lo for lo, _ in c.ci], [scale * hi for _, hi in c.ci],
                            color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xlabel("missing rate η (fraction of missing cells)")
    ax.set_ylabel(rob.metric.upper() + (" (%)" if scale == 100 else ""))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_robustness(rob: Robustness, directory: Path, info: dict) -> dict[str, Path]:
    """robustness.csv, and robustness.png when matplotlib is installed (a note says when not)."""
    paths = {"robustness_csv": directory / "robustness.csv"}
    atomic_write_text(paths["robustness_csv"], robustness_csv(rob))
    png = plot_robustness(rob, directory / "robustness.png", info)
    if png:
        paths["robustness_plot"] = png
    else:
        rob.notes.append("no robustness.png: the plot needs matplotlib (pip install matplotlib); the numbers are in "
                         "robustness.csv")
    return paths
