"""Where each missing-modality method helps: every method on the latent_views grid (#15 §3).

Grid (one *setting* per cell): labelled training samples 200 / 500 / 3000; shared signal
rho 0 (private class signal per modality) / 1 (one shared class latent); unlabelled
complete pool 0 / 3000; training missingness 0 / 0.5 (the share of labelled training
samples that lack one or two modalities); plus ``control-synthetic``, today's embedded
data, the negative control (nothing to gain there: no method should fall below dropout).

Each method recipe is trained on each setting over the seeds (the seed also draws the
samples: ``sample_seed: trial``) through the public API (``mmtk.recipe.resolve`` +
``mmtk.run.Run``; a finished run of the same resolved recipe is reused). Per setting, as
``mmtk compare`` does: the six-condition mean UAR of every method minus modality dropout
(the reference), with the paired test ``mmtk compare`` picks (``mmtk.compare_stats``: a
t-test over the seeds, since every seed draws its own test set), Holm-adjusted over the
setting's comparisons; next to it:

- *oracle reconstruction*: the reference model given the true features of every missing
  modality at test time, i.e. its score on the full condition. A method that reconstructed
  the missing modalities perfectly, feeding the reference's classifier, would reach it;
  its difference to the reference's six-condition mean is paired too (same predictions);
- *Bayes bound*: the dataset's UAR-optimal rate (six-condition mean, and full), the limit no
  model can pass (exact for ``latent_views``; for the ``synthetic`` control an upper bound,
  the rate on the views before their mixing); ``bound - reference`` is the headroom left.

Writes ``headroom.csv``, ``headroom.md`` (every cell with its CI), ``headroom-summary.md``
(one row per method, one column per setting) and ``headroom.png`` under --out.

    python benchmarks/headroom.py --quick                      # two settings, 2 seeds, 3 epochs
    python benchmarks/headroom.py --jobs 2 --threads 1         # the full grid, 5 seeds: hours of CPU
    python benchmarks/headroom.py --settings 'L200-rho1-*' --recipes modality-dropout cmarr
"""
from __future__ import annotations

import argparse
import csv
import fnmatch
import io
import itertools
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from mmtk.builder import Builder
from mmtk.compare import find_finished_run
from mmtk.compare_stats import (
    ComparisonStats,
    StatsOptions,
    comparison_stats,
    describe_test,
    load_paired,
    paired_estimates,
)
from mmtk.errors import MmtkError
from mmtk.plugins import load_plugins
from mmtk.recipe import resolve
from mmtk.run import Run

REPO = Path(__file__).resolve().parents[1]
LATE_FUSION = REPO / "benchmarks" / "recipes" / "headroom" / "late-fusion.yaml"
MMIN_STEPS = REPO / "benchmarks" / "recipes" / "headroom" / "mmin-utterance-steps.yaml"
# the reference first: every difference is "method - modality dropout"
DEFAULT_RECIPES = ["modality-dropout", "zero-impute", "mean-impute", "ridge-impute", "ae-impute", "cra-impute",
                   "mmin-utterance", str(MMIN_STEPS), "cmarr", str(LATE_FUSION)]
QUICK_RECIPES = ["modality-dropout", "zero-impute", "ae-impute", "cmarr", str(LATE_FUSION)]
QUICK_SETTINGS = ["L200-rho1-pool3000-miss0.5", "L200-rho0-pool0-miss0"]
GRID = {"labels": [200, 500, 3000], "rho": [0.0, 1.0], "pool": [0, 3000], "missing": [0.0, 0.5]}
METRIC = "uar"


@dataclass(frozen=True)
class Setting:
    labels: int
    rho: float
    pool: int
    missing: float

    @property
    def name(self) -> str:
        return f"L{self.labels}-rho{self.rho:g}-pool{self.pool}-miss{self.missing:g}"

    def data_block(self, n_test: int) -> str:
        return (f"{{type: latent_views, labels: {self.labels}, unlabeled: {self.pool}, "
                f"complete_fraction: {1 - self.missing:g}, shared_signal: {self.rho:g}, n_test: {n_test}}}")


@dataclass(frozen=True)
class Control:
    """Today's embedded ``synthetic`` data (complete, 3000 labelled training samples, a test
    set redrawn per seed): the negative control, where no method should fall below dropout."""

    name = "control-synthetic"
    labels = rho = pool = missing = None

    def data_block(self, n_test: int) -> str:
        return f"{{type: synthetic, sample_seed: trial, n_test: {n_test}}}"


def all_settings() -> list[Setting | Control]:
    return [Setting(*cell) for cell in itertools.product(*GRID.values())] + [Control()]


def select_settings(patterns: list[str] | None) -> list[Setting | Control]:
    """Settings whose name matches one of the shell-style patterns (all without patterns)."""
    grid = all_settings()
    if not patterns:
        return grid
    chosen = [s for s in grid if any(fnmatch.fnmatch(s.name, p) for p in patterns)]
    if not chosen:
        raise MmtkError(f"--settings {' '.join(patterns)} matches no setting; settings are named like "
                        f"{grid[0].name} (labels {GRID['labels']}, rho {GRID['rho']}, pool {GRID['pool']}, "
                        f"missing {GRID['missing']}) or {Control.name}")
    return chosen


def run_method(recipe: str, setting: Setting | Control, args: argparse.Namespace, system) -> tuple[str, Path, dict]:
    """One method on one setting over the seeds; a finished identical run is reused."""
    overrides = [f"data={setting.data_block(args.n_test)}", f"seed=[{', '.join(map(str, args.seeds))}]",
                 f"output.dir={args.out / 'runs' / setting.name}"] + args.epochs_override + list(args.set)
    tree = resolve(recipe, system, overrides)
    found = find_finished_run(tree)
    if found is not None:
        from mmtk.run import read_results
        return tree.name, found, read_results(found)
    started = time.time()
    run = Run.create(tree, system, jobs=args.jobs, threads=args.threads)
    results = run.execute()
    print(f"[{setting.name}] {tree.name}: {time.time() - started:.0f} s", file=sys.stderr, flush=True)
    return tree.name, run.directory, results


def oracle_reconstruction(reference: tuple[Path, dict], metric, n_boot: int, seed: int) -> dict:
    """The reference on the full condition minus its six-condition mean, under the paired test
    that ``mmtk compare`` picks for these trials."""
    trials, num_classes = load_paired({"reference": reference})
    estimates, _, _ = paired_estimates(*reference, trials, {METRIC: metric}, num_classes, n_boot, seed)
    est = estimates[METRIC]
    first = trials[0][0]
    full = next(c for c in first.conditions if c not in first.mean_over)
    i_full, i_mean = est.columns.index(full), est.columns.index("mean")
    samples = est.samples[:, 0, i_full] - est.samples[:, 0, i_mean]
    observed = est.observed[0]
    low, high = est.ci(samples)
    return {"full": full, "value": float(observed[i_full]),
            "diff": float(observed[i_full] - observed[i_mean]), "ci_low": low, "ci_high": high}


def setting_rows(setting: Setting | Control, runs: dict[str, tuple[Path, dict]], stats: ComparisonStats,
                 oracle: dict) -> list[dict]:
    """One row per method, then the oracle-reconstruction and Bayes-bound references."""
    base = {"setting": setting.name, "labels": setting.labels, "rho": setting.rho, "pool": setting.pool,
            "missing": setting.missing}
    diffs = {d.method: d for d in stats.differences if d.condition == "mean"}
    rows = []
    for name, (_, results) in runs.items():
        s = results["summary"]["test"]["mean"][METRIC]
        row = dict(base, method=name, uar_mean=s["mean"], uar_std=s["std"], n=s["n"])
        d = diffs.get(name)
        if d is not None:
            row.update(diff=d.diff, ci_low=d.ci_low, ci_high=d.ci_high, p=d.p, p_holm=d.p_holm,
                       significant=d.significant, comparisons=len(stats.differences))
        row["test"] = describe_test(stats.test, stats.n_trials, stats.n_boot, stats.seed)
        rows.append(row)
    ref = runs[stats.reference][1]["summary"]["test"]["mean"][METRIC]["mean"]
    rows.append(dict(base, method=f"oracle reconstruction ({stats.reference} on {oracle['full']})",
                     uar_mean=oracle["value"], diff=oracle["diff"], ci_low=oracle["ci_low"],
                     ci_high=oracle["ci_high"]))
    bound = runs[stats.reference][1].get("bayes_bound", {}).get(METRIC, {})
    for cond, label in (("mean", "six-condition mean"), (oracle["full"], oracle["full"])):
        if cond in bound:
            rows.append(dict(base, method=f"Bayes bound ({label})", uar_mean=bound[cond], diff=bound[cond] - ref))
    return rows


COLUMNS = ["setting", "labels", "rho", "pool", "missing", "method", "uar_mean", "uar_std", "n", "diff",
           "ci_low", "ci_high", "p", "p_holm", "significant"]


def write_csv(rows: list[dict], path: Path) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, COLUMNS, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6f}" if isinstance(v, float) and k not in ("rho", "missing") else v)
                    for k, v in r.items()})
    path.write_text(buf.getvalue(), encoding="utf-8")


def _pts(x: float | None, signed: bool = False) -> str:
    if x is None:
        return ""
    return f"{100 * x:+.2f}" if signed else f"{100 * x:.2f}"


def _floor_note(rows: list[dict], n_boot: int) -> str:
    """A bootstrap p is at least 2 / (B + 1): say when Holm leaves no room for a '*'."""
    if not any("bootstrap" in r.get("test", "") for r in rows):
        return ""
    comparisons = min((r["comparisons"] for r in rows if "comparisons" in r), default=0)
    floor = 2 / (n_boot + 1)
    if comparisons == 0 or floor * comparisons < 0.05:
        return ""
    return (f" Note: with B = {n_boot} no p can fall below {floor:.3f}, and Holm multiplies the smallest "
            f"by the setting's {comparisons} comparisons (every condition and the mean of every method): "
            "raise --bootstrap to detect differences.")


def markdown(rows: list[dict], args: argparse.Namespace) -> str:
    head = (f"Six-condition mean test UAR (%) per method, mean ± std over seeds {args.seeds}; difference to "
            f"{args.recipes_names[0]} in points with the 95 % CI of the paired test "
            f"({'; '.join(dict.fromkeys(r['test'] for r in rows if 'test' in r))}), p two-sided and "
            "Holm-adjusted over each setting's comparisons "
            "(* = p (Holm) < 0.05). Oracle reconstruction = the reference on the full condition; "
            "Bayes bound = the dataset's UAR-optimal rate (exact for latent_views, an upper bound for "
            "the synthetic control)." + _floor_note(rows, args.bootstrap) + "\n\n")
    lines = ["| setting | method | UAR | − reference | 95 % CI | p | p (Holm) |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        std = f" ± {_pts(r['uar_std'])}" if r.get("uar_std") is not None and r.get("n", 1) > 1 else ""
        ci = f"[{_pts(r['ci_low'], True)}, {_pts(r['ci_high'], True)}]" if r.get("ci_low") is not None else ""
        star = " *" if r.get("significant") else ""
        p = f"{r['p']:.3f}" if r.get("p") is not None else ""
        ph = f"{r['p_holm']:.3f}" if r.get("p_holm") is not None else ""
        lines.append(f"| {r['setting']} | {r['method']} | {_pts(r['uar_mean'])}{std} | "
                     f"{_pts(r.get('diff'), True)}{star} | {ci} | {p} | {ph} |")
    return head + "\n".join(lines) + "\n"


def summary_markdown(rows: list[dict]) -> str:
    """The grid at a glance: one row per method, one column per setting. The reference (the
    first method, as in ``comparison_stats``) holds its six-condition mean UAR, every other
    method its difference to it (* = Holm p < 0.05); then the oracle reconstruction's
    difference and the Bayes bound."""
    settings = list(dict.fromkeys(r["setting"] for r in rows))
    cell = {(r["setting"], r["method"]): r for r in rows}
    methods = list(dict.fromkeys(r["method"] for r in rows if not r["method"].startswith(("oracle", "Bayes"))))
    reference = methods[0] if methods else ""

    def value(setting: str, method: str) -> str:
        r = cell.get((setting, method))
        if r is None:
            return ""
        if method == reference or method.startswith("Bayes"):
            return _pts(r["uar_mean"])
        return _pts(r.get("diff"), True) + (" *" if r.get("significant") else "")

    oracle = {s: next((r for r in rows if r["setting"] == s and r["method"].startswith("oracle")), None)
              for s in settings}
    lines = ["| method | " + " | ".join(settings) + " |", "|---|" + "---|" * len(settings)]
    for m in methods:
        label = f"{m} (UAR)" if m == reference else f"{m} − {reference}"
        lines.append(f"| {label} | " + " | ".join(value(s, m) for s in settings) + " |")
    lines.append("| oracle reconstruction − reference | "
                 + " | ".join(_pts(o["diff"], True) if o else "" for o in oracle.values()) + " |")
    lines.append("| Bayes bound (six-condition mean UAR) | "
                 + " | ".join(value(s, "Bayes bound (six-condition mean)") for s in settings) + " |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> Path | None:
    """Per setting, every method's difference to the reference with its CI, the oracle
    reconstruction (diamond) and the Bayes bound of the six-condition mean (bar)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    settings = list(dict.fromkeys(r["setting"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows if r.get("p") is not None))
    width = 0.8 / max(len(methods), 1)
    fig, ax = plt.subplots(figsize=(max(7.0, 1.4 * len(settings) + 4), 4.5))
    for i, m in enumerate(methods):
        cells = [(j, r) for j, s in enumerate(settings) for r in rows if r["setting"] == s and r["method"] == m]
        x = [j - 0.4 + (i + 0.5) * width for j, _ in cells]
        y = [100 * r["diff"] for _, r in cells]
        err = [[100 * (r["diff"] - r["ci_low"]) for _, r in cells],
               [100 * (r["ci_high"] - r["diff"]) for _, r in cells]]
        ax.bar(x, y, width, yerr=err, capsize=2, label=m)
    for j, s in enumerate(settings):
        for r in rows:
            if r["setting"] == s and r["method"].startswith("oracle"):
                ax.plot([j], [100 * r["diff"]], "kD", label="oracle reconstruction" if j == 0 else None)
            if r["setting"] == s and r["method"] == "Bayes bound (six-condition mean)":
                ax.hlines(100 * r["diff"], j - 0.4, j + 0.4, colors="r", label="Bayes bound" if j == 0 else None)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xticks(range(len(settings)), settings, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("six-condition mean UAR − reference (points)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--recipes", nargs="+", help="method recipes (registered names or files), the "
                    "reference first (default: modality dropout, zero/mean/ridge imputation, AE, CRA, MMIN, "
                    "MMIN in the reference's steps, CM-ARR, late fusion)")
    ap.add_argument("--settings", nargs="+", help="shell-style patterns of setting names, e.g. 'L200-*'")
    ap.add_argument("--seeds", nargs="+", type=int)
    ap.add_argument("--quick", action="store_true", help=f"settings {', '.join(QUICK_SETTINGS)}; "
                    "5 methods, seeds 0 1, 3 epochs, 2000 test samples, B = 500")
    ap.add_argument("--epochs", type=int, help="train.epochs of every recipe (default: the recipe's)")
    ap.add_argument("--n-test", type=int, default=10000)
    ap.add_argument("--bootstrap", type=int, default=10000, help="paired bootstrap draws (Holm over 9 "
                    "methods x 8 columns needs B > 2880 for any p (Holm) < 0.05)")
    ap.add_argument("--jobs", type=int, default=1, help="trials (seeds) run in parallel per run")
    ap.add_argument("--threads", type=int, default=None, help="torch threads per process (default: the "
                    "recipe's train.threads / mmtk's auto policy)")
    ap.add_argument("--set", action="append", default=[], help="extra recipe override for every run")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "headroom")
    args = ap.parse_args(argv)
    if args.quick:
        args.recipes = args.recipes or QUICK_RECIPES
        args.settings = args.settings or QUICK_SETTINGS
        args.seeds = args.seeds or [0, 1]
        args.epochs = args.epochs or 3
        args.n_test = min(args.n_test, 2000)
        args.bootstrap = min(args.bootstrap, 500)
    args.recipes = args.recipes or DEFAULT_RECIPES
    args.seeds = args.seeds or [0, 1, 2, 3, 4]
    args.epochs_override = [f"train.epochs={args.epochs}"] if args.epochs else []
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    system = load_plugins()
    metric = Builder(system.registry).metrics([METRIC])
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    for setting in select_settings(args.settings):
        runs = {}
        for recipe in args.recipes:
            name, directory, results = run_method(recipe, setting, args, system)
            runs[name] = (directory, results)
        args.recipes_names = list(runs)
        stats = comparison_stats(runs, metric, METRIC, StatsOptions(n_boot=args.bootstrap))
        oracle = oracle_reconstruction(next(iter(runs.values())), metric[METRIC], args.bootstrap, 0)
        rows += setting_rows(setting, runs, stats, oracle)
        write_csv(rows, args.out / "headroom.csv")   # after every setting: a long run shows progress
    (args.out / "headroom.md").write_text(markdown(rows, args), encoding="utf-8")
    (args.out / "headroom-summary.md").write_text(summary_markdown(rows), encoding="utf-8")
    png = plot(rows, args.out / "headroom.png")
    print(markdown(rows, args))
    print(summary_markdown(rows))
    for path in [args.out / "headroom.csv", args.out / "headroom.md", args.out / "headroom-summary.md", png]:
        if path:
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except MmtkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
