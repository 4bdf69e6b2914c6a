"""The statistics of ``mmtk compare``: every method against a reference, paired.

Reads each run's per-trial ``predictions.npz``, refuses rows that were not evaluated on the
same trials, test samples and masks (a paired test would be meaningless), chooses the test
(:func:`choose_test`: a paired t-test over seeds when each seed has its own test set and there
are no folds, else the paired bootstrap of :mod:`mmtk.stats`), and Holm-adjusts the p-values of one table (every method
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
from .stats import Estimate, holm, paired_bootstrap, seed_level

SPLIT = "test"
TESTS = ("auto", "bootstrap", "seed-t")


@dataclass
class StatsOptions:
    reference: str | None = None   # a method's name; default the first
    metric: str | None = None      # the differences' metric; default the second shown one
    n_boot: int = 2000             # 0: no statistics
    seed: int = 0
    alpha: float = 0.05
    test: str = "auto"             # one of TESTS


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
    test: str = "bootstrap"        # the test used: "bootstrap" or "seed-t"
    test_reason: str = ""          # why (what the trials' test sets and folds are)
    n_trials: int = 0

    def as_dict(self) -> dict:
        return {"reference": self.reference, "metric": self.metric, "test": self.test,
                "test_reason": self.test_reason, "trials": self.n_trials, "bootstrap": self.n_boot,
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


def trial_facts(run_dir: Path, keys: list[str]) -> list[dict]:
    """Each trial's data.json: its fold (None where the data has no folds) and, for runs made
    since it was recorded, the fingerprint of its test split."""
    return [read_json(Path(run_dir) / "trials" / key / "data.json", "trial data file") for key in keys]


def own_test_sets(trials: list[list[SplitPredictions]], facts: list[dict]) -> bool:
    """Whether no two trials were scored on the same test set. The test split's fingerprint
    decides where every trial recorded one; older runs are told apart by their test ids and
    labels (a seed-dependent split changes the ids, a seed-drawn generator the labels)."""
    prints = [f.get("test_fingerprint") for f in facts]
    if all(prints):
        return len(set(prints)) == len(prints)
    keys = {(tuple(t[0].ids), t[0].labels.tobytes()) for t in trials}
    return len(keys) == len(trials)


def choose_test(requested: str, trials: list[list[SplitPredictions]], facts: list[dict]) -> tuple[str, str]:
    """(test, why). ``auto`` takes the seed-level t-test when it is valid (two or more trials,
    no folds, every trial its own test set: each trial's value then carries both the training
    randomness and the test-sample variance) and the paired bootstrap otherwise."""
    if requested not in TESTS:
        raise MmtkError(f"--stat-test {requested}: not a test; use one of {', '.join(TESTS)}")
    if requested == "bootstrap":
        return "bootstrap", "requested with --stat-test bootstrap"
    n = len(trials)
    folds = any(f.get("fold") is not None for f in facts)
    own = own_test_sets(trials, facts)
    if n < 2:
        blocker = "there is one trial"
    elif folds:
        blocker = "the trials are folds (each fold is a stratum of the bootstrap)"
    elif not own:
        blocker = "trials share a test set (a t-test over them would leave out the test-sample variance)"
    else:
        blocker = ""
    if not blocker:
        return "seed-t", f"{n} trials, each scored on a test set of its own, no folds"
    if requested == "seed-t":
        raise MmtkError(f"--stat-test seed-t: the seed-level t-test does not apply here because {blocker}; "
                        "use --stat-test bootstrap (or auto, which picks it)")
    return "bootstrap", blocker


def paired_estimates(reference_dir: Path, reference_results: dict, trials: list, metrics: dict[str, Any],
                     num_classes: int, n_boot: int, seed: int,
                     test: str = "auto") -> tuple[dict[str, Estimate], str, str]:
    """The estimates of every metric of paired trials under the chosen test, the test and why:
    :func:`mmtk.stats.seed_level`, or :func:`mmtk.stats.paired_bootstrap` stratified by the
    folds of the reference run's trials (both read from its data.json files)."""
    facts = trial_facts(reference_dir, list(reference_results["trials"]))
    chosen, why = choose_test(test, trials, facts)
    if chosen == "seed-t":
        return dict(seed_level(trials, metrics, num_classes)), chosen, why
    folds = [f.get("fold") for f in facts]
    return dict(paired_bootstrap(trials, metrics, num_classes, n_boot, seed, folds)), chosen, why


def describe_test(test: str, n_trials: int, n_boot: int, seed: int) -> str:
    """How the CIs and p-values of a table were made, for its caption."""
    if test == "seed-t":
        return (f"paired t-test over the {n_trials} seeds, each scored on a test set of its own "
                f"({n_trials - 1} df); 95 % t CI")
    return (f"hierarchical paired bootstrap over seeds/folds and test samples, B = {n_boot}, seed {seed}; "
            "95 % percentile CI")


def ci_label(test: str) -> str:
    """The main table's name for the CI of a mean."""
    return "95 % t CI of the mean over seeds" if test == "seed-t" else "95 % bootstrap CI of the mean"


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
    est, test, why = paired_estimates(*runs[names[0]], trials, metrics, num_classes, opts.n_boot, opts.seed,
                                      opts.test)
    ci = {m: {k: {c: b.ci(b.samples[:, i, j]) for j, c in enumerate(b.columns)} for k, b in est.items()}
          for i, m in enumerate(names)}
    stat = est[stat_metric]
    diffs = []
    for i, m in enumerate(names[1:], start=1):
        for j, cond in enumerate(stat.columns):
            d = stat.samples[:, i, j] - stat.samples[:, 0, j]
            diffs.append(Difference(m, cond, float(stat.observed[i, j] - stat.observed[0, j]),
                                    *stat.ci(d), stat.p(d)))
    for d, adj in zip(diffs, holm([d.p for d in diffs])):
        d.p_holm, d.significant = adj, adj < opts.alpha
    return ComparisonStats(names[0], stat_metric, opts.n_boot, opts.seed, opts.alpha, ci, diffs, test, why,
                           len(trials))
