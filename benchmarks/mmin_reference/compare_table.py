"""Per-condition test WA / UA of MMIN's own code and of mmtk runs, as one Markdown table.

    python benchmarks/mmin_reference/compare_table.py [--reference NAME=OUT_DIR[,OUT_DIR...] ...]
        [--mmtk NAME=RUN_DIR[,RUN_DIR...] ...] [--paired B]

OUT_DIR is a run_reference.sh output folder (it reads the fold-1 row of
logs/mmin_IEMOCAP_block_5_run1/results/result_<condition>.tsv); RUN_DIR an mmtk run folder
(each of its trials, i.e. seeds, counts as one run). Per condition: the mean over the runs; the
last column is the mean of the six per-condition figures (as papers report it), ± its standard
deviation over the runs when there are several. ``--paired B``: each mmtk run (one RUN_DIR
per name) minus the first, on the six-condition mean UAR, with mmtk compare's paired
bootstrap over seeds and test utterances (B draws).
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

# mmtk's condition codes and the reference's (a/v/l availability, z = zero-filled)
CONDITIONS = {"a": "azz", "v": "zvz", "t": "zzl", "av": "avz", "at": "azl", "tv": "zvl"}
RESULTS = Path("logs/mmin_IEMOCAP_block_5_run1/results")


def reference_rates(out_dir: Path) -> dict[str, tuple[float, float]]:
    rates = {}
    for ours, theirs in CONDITIONS.items():
        lines = (out_dir / RESULTS / f"result_{theirs}.tsv").read_text().splitlines()
        acc, uar, _ = (float(v) for v in lines[1].split("\t"))   # row 1 = fold 1
        rates[ours] = (100 * acc, 100 * uar)
    return rates


def mmtk_rates(run_dir: Path) -> list[dict[str, tuple[float, float]]]:
    trials = sorted(run_dir.glob("trials/*/metrics.json"))
    if not trials:
        raise SystemExit(f"no trials/*/metrics.json under {run_dir}")
    tests = [json.loads(p.read_text())["test"] for p in trials]
    return [{c: (100 * t[c]["war"], 100 * t[c]["uar"]) for c in CONDITIONS} for t in tests]


Rates = dict[str, tuple[float, float]]


def _mean_sd(values: list[float]) -> str:
    sd = f" ± {statistics.stdev(values):.1f}" if len(values) > 1 else ""
    return f"{statistics.fmean(values):.1f}{sd}"


def row(name: str, runs: list[Rates]) -> str:
    cells = [f"{statistics.fmean(r[c][0] for r in runs):.1f} / "
             f"{statistics.fmean(r[c][1] for r in runs):.1f}" for c in CONDITIONS]
    wa = [statistics.fmean(r[c][0] for c in CONDITIONS) for r in runs]
    ua = [statistics.fmean(r[c][1] for c in CONDITIONS) for r in runs]
    return (f"| {name} ({len(runs)}) | " + " | ".join(cells)
            + f" | **{_mean_sd(wa)} / {_mean_sd(ua)}** |")


def table(rows: dict[str, list[Rates]]) -> str:
    head = "| run (runs) | " + " | ".join(CONDITIONS) + " | six-condition mean |"
    lines = [head, "|" + "---|" * (len(CONDITIONS) + 2)]
    return "\n".join(lines + [row(name, runs) for name, runs in rows.items()])


def named(spec: str) -> tuple[str, list[Path]]:
    name, _, paths = spec.partition("=")
    if not paths:
        raise SystemExit(f"expected NAME=PATH[,PATH...], got {spec!r}")
    return name, [Path(p) for p in paths.split(",")]


def paired(mmtk_runs: list[tuple[str, list[Path]]], n_boot: int) -> list[str]:
    """Every mmtk run minus the first: six-condition mean UAR, points [95 % CI], p."""
    from mmtk.builder import Builder
    from mmtk.compare_stats import StatsOptions, comparison_stats
    from mmtk.plugins import load_plugins
    from mmtk.run import read_results
    runs = {name: (paths[0], read_results(paths[0])) for name, paths in mmtk_runs}
    metrics = Builder(load_plugins().registry).metrics(["uar"])
    stats = comparison_stats(runs, metrics, "uar", StatsOptions(n_boot=n_boot, seed=0))
    first = mmtk_runs[0][0]
    return [f"{d.method} − {first}: {100 * d.diff:+.2f} [{100 * d.ci_low:+.2f}, {100 * d.ci_high:+.2f}] "
            f"points, p = {d.p:.3g}" for d in stats.differences if d.condition == "mean"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reference", action="append", default=[], type=named)
    ap.add_argument("--mmtk", action="append", default=[], type=named)
    ap.add_argument("--paired", type=int, default=0, metavar="B", help="paired bootstrap of the mmtk runs")
    args = ap.parse_args()
    rows = {name: [reference_rates(p) for p in paths] for name, paths in args.reference}
    rows.update({name: [r for p in paths for r in mmtk_rates(p)] for name, paths in args.mmtk})
    print("test WA / UA (%) per condition, fold 1\n")
    print(table(rows))
    if args.paired and len(args.mmtk) > 1:
        print(f"\npaired differences (six-condition mean UAR, B = {args.paired}):")
        print("\n".join(paired(args.mmtk, args.paired)))


if __name__ == "__main__":
    main()
