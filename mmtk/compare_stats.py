"""The statistics of ``mmtk compare``: every method against a reference, paired.

Reads each run's per-trial ``predictions.npz``, refuses rows that were not evaluated on the
same trials, test samples and masks (a paired test would be meaningless), runs the paired
bootstrap of :mod:`mmtk.stats`, and Holm-adjusts the p-values of one table (every method
and condition, ``mean`` included).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import MmtkError, did_you_mean
from .predictions import FILE, SplitPredictions, load_predictions
from .rundir import read_json
from .stats import bootstrap_p, holm, paired_bootstrap, percentile_ci

SPLIT = "test"


@dataclass
class StatsOptions:
    reference: str | None = None   # a method's name; default the first
    metric: str | None = None      # the differences' metric; default the second shown one
    n_boot: int = 2000             # 0: no statistics
    seed: int = 0
    alpha: float = 0.05


@dataclass
class Difference:
    method: str
    condition: str
    diff: float
    ci_low: float
    ci_high: float
    p: float
    p_holm: float = float("nan")
    significant: bool = False

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class ComparisonStats:
    reference: str
    metric: str
    n_boot: int
    seed: int
    alpha: float
    ci: dict[str, dict[str, dict[str, tuple[float, float]]]]   # method -> metric -> condition -> CI
    differences: list[Difference] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"reference": self.reference, "metric": self.metric, "bootstrap": self.n_boot,
                "bootstrap_seed": self.seed, "alpha": self.alpha,
                "ci": {m: {k: {c: list(v) for c, v in conds.items()} for k, conds in per.items()}
                       for m, per in self.ci.items()},
                "differences": [d.as_dict() for d in self.differences]}


def check_options(names: list[str], evaluated: list[str], opts: StatsOptions) -> None:
    """Before anything runs: the reference is one of the methods, the metric is evaluated."""
    if opts.reference is not None and opts.reference not in names:
        raise MmtkError(f"--reference {opts.reference}: not one of the compared methods "
                        f"({', '.join(names)}){did_you_mean(opts.reference, names)}")
    if opts.metric is not None and opts.metric not in evaluated:
        raise MmtkError(f"--stat-metric {opts.metric}: not among the recipes' eval.metrics "
                        f"({', '.join(evaluated)}){did_you_mean(opts.metric, evaluated)}")


def require_predictions(name: str, run_dir: Path, results: dict) -> None:
    """A reused run must have kept its per-sample predictions, or no paired test is possible."""
    for key in results.get("trials", {}):
        path = Path(run_dir) / "trials" / key / FILE
        if not path.is_file():
            raise MmtkError(
                f"cannot compute the paired statistics of '{name}': its finished run {run_dir} has no "
                f"per-sample predictions ({path} is missing; the run was made before mmtk kept them). "
                "Rerun with --no-reuse to train it again, or pass --bootstrap 0 for the table without "
                "statistics.")


def load_paired(runs: dict[str, tuple[Path, dict]]) -> tuple[list[list[SplitPredictions]], int]:
    """``trials[t][m]`` for the methods of ``runs`` (name -> (run dir, results)), in order,
    and the number of classes; refuses methods whose trials, samples or masks differ."""
    names = list(runs)
    ref_name = names[0]
    keys = list(runs[ref_name][1]["trials"])
    for name in names[1:]:
        other = list(runs[name][1]["trials"])
        if sorted(other) != sorted(keys):
            raise MmtkError(
                f"cannot pair '{name}' with '{ref_name}': their finished trials differ ({', '.join(other)} vs "
                f"{', '.join(keys)}); a paired test needs the same seeds and folds. Rerun the failed trials.")
    trials, num_classes = [], 0
    for key in keys:
        loaded = {}
        for name in names:
            run_dir = runs[name][0]
            trial = load_predictions(Path(run_dir) / "trials" / key / FILE)
            if SPLIT not in trial.splits:
                raise MmtkError(f"{Path(run_dir) / 'trials' / key / FILE} holds no '{SPLIT}' predictions; "
                                "rerun the trial")
            loaded[name] = trial
            num_classes = max(num_classes, trial.num_classes)
        for name in names[1:]:
            check_paired(ref_name, loaded[ref_name].splits[SPLIT], name, loaded[name].splits[SPLIT], key)
        trials.append([loaded[n].splits[SPLIT] for n in names])
    return trials, num_classes


def trial_folds(run_dir: Path, keys: list[str]) -> list[int | None]:
    """Each trial's fold (None where the data has no folds), from its data.json: the strata of
    the bootstrap. Seeds are resampled within a fold, whether or not they share a test set."""
    return [read_json(Path(run_dir) / "trials" / key / "data.json", "trial data file").get("fold") for key in keys]


def bootstrap_runs(reference_dir: Path, reference_results: dict, trials: list, metrics: dict[str, Any],
                   num_classes: int, n_boot: int, seed: int) -> dict:
    """:func:`mmtk.stats.paired_bootstrap` of paired trials, stratified by the folds of the
    reference run's trials (read from its data.json files)."""
    folds = trial_folds(reference_dir, list(reference_results["trials"]))
    return paired_bootstrap(trials, metrics, num_classes, n_boot, seed, folds)


def check_paired(ref_name: str, ref: SplitPredictions, name: str, other: SplitPredictions, key: str) -> None:
    where = f"cannot pair '{name}' with '{ref_name}' in trial {key}"
    why = "a paired test needs the same test samples under the same masks; align data and protocol with --set"
    if other.ids != ref.ids:
        pos = next((i for i, (a, b) in enumerate(zip(ref.ids, other.ids)) if a != b), min(len(ref.ids), len(other.ids)))
        got = other.ids[pos] if pos < len(other.ids) else "nothing"
        want = ref.ids[pos] if pos < len(ref.ids) else "nothing"
        raise MmtkError(f"{where}: their test samples differ ({len(other.ids)} vs {len(ref.ids)} samples; "
                        f"position {pos} is '{got}' vs '{want}'); {why}.")
    if not np.array_equal(other.labels, ref.labels):
        sid = ref.ids[int(np.flatnonzero(other.labels != ref.labels)[0])]
        raise MmtkError(f"{where}: sample '{sid}' has a different label; {why}.")
    if other.conditions != ref.conditions or other.mean_over != ref.mean_over:
        raise MmtkError(f"{where}: their evaluation conditions differ ({', '.join(other.conditions)} vs "
                        f"{', '.join(ref.conditions)}); {why}.")
    for i, cond in enumerate(ref.conditions):
        if other.mask[i].shape != ref.mask[i].shape or not np.array_equal(other.mask[i], ref.mask[i]):
            diff = np.flatnonzero((other.mask[i] != ref.mask[i]).any(-1)) if other.mask[i].shape == ref.mask[i].shape \
                else [0]
            raise MmtkError(f"{where}: the evaluation masks of condition '{cond}' differ (first at sample "
                            f"'{ref.ids[int(diff[0])]}'); {why}.")


def comparison_stats(runs: dict[str, tuple[Path, dict]], metrics: dict[str, Any], stat_metric: str,
                     opts: StatsOptions) -> ComparisonStats:
    """CIs of every method's mean (each metric of ``metrics``) and the paired differences of
    ``stat_metric`` to the reference (the first of ``runs``), Holm-adjusted."""
    names = list(runs)
    trials, num_classes = load_paired(runs)
    boot = bootstrap_runs(*runs[names[0]], trials, metrics, num_classes, opts.n_boot, opts.seed)
    ci = {m: {k: {c: percentile_ci(b.draws[:, i, j]) for j, c in enumerate(b.columns)} for k, b in boot.items()}
          for i, m in enumerate(names)}
    stat = boot[stat_metric]
    diffs = []
    for i, m in enumerate(names[1:], start=1):
        for j, cond in enumerate(stat.columns):
            d = stat.draws[:, i, j] - stat.draws[:, 0, j]
            diffs.append(Difference(m, cond, float(stat.observed[i, j] - stat.observed[0, j]),
                                    *percentile_ci(d), bootstrap_p(d)))
    for d, adj in zip(diffs, holm([d.p for d in diffs])):
        d.p_holm, d.significant = adj, adj < opts.alpha
    return ComparisonStats(names[0], stat_metric, opts.n_boot, opts.seed, opts.alpha, ci, diffs)
