"""Training throughput of every offline shipped recipe at 1 torch thread, at all cores and
under ``--threads auto``, on a quiet machine and under load: the measurement behind the thread
policy (mmtk/threads.py, mmtk/thread_probe.py).

Each (recipe, thread setting) is one ``mmtk run --threads N`` subprocess of a few epochs; the
figure is training samples/s from the run's history (data loading and evaluation excluded).
For ``auto`` the count its stages ran with (from the history: the idle-core ceiling, then the
per-model probe) is printed too. Rounds alternate the settings, so a change of machine load
hits all alike; the median over rounds is printed. ``--load K`` starts K busy-looping processes for the whole
measurement, i.e. a machine where K cores are taken by someone else. The load average is
printed with every figure.

    python benchmarks/threads.py [--recipes cmarr mmin ...] [--epochs 3] [--rounds 3] [--load 0]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from machine_load import busy_processes, load_average

from mmtk.training_curves import read_curves, samples_per_second

ROOT = Path(__file__).resolve().parents[1]
# the shipped recipes that run offline (IEMOCAP/MOSI ones need licence-gated data), plus the
# MMIN-sized frame-level stand-in for those
RECIPES = ["cmarr", "mmin", "baseline", "modality-dropout", "mean-impute", "ae-impute", "cra-impute",
           "late-fusion-handwritten", "cmarr-handwritten", str(ROOT / "benchmarks/recipes/mmin-sized.yaml")]


def run_throughput(recipe: str, threads: str, epochs: int, out: Path) -> tuple[float, set[int]]:
    """(training samples/s, the thread counts the epochs ran with)."""
    cmd = [sys.executable, "-m", "mmtk", "run", recipe, "--threads", threads, "--quiet", "--json",
           "--set", f"train.epochs={epochs}", "--set", "train.patience=null", "--set", f"output.dir={out}"]
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    if threads != "auto":
        env["OMP_NUM_THREADS"] = threads
    results = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout)
    records = [r for stage in read_curves(Path(results["directory"])) for r in stage.records()]
    return samples_per_second(records), {r["threads"] for r in records if "threads" in r}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipes", nargs="+", default=RECIPES)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--load", type=int, default=0, help="busy-looping processes started alongside")
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    counts = [str(c) for c in sorted({1, cores})] + ["auto"]
    with busy_processes(args.load):
        measure_all(args, cores, counts)


def measure_all(args: argparse.Namespace, cores: int, counts: list[str]) -> None:
    from mmtk import threads
    print(f"{cores} cores, {args.load} busy process(es) started; thread counts {counts}; "
          f"median of {args.rounds} rounds, {args.epochs} epochs each; "
          f"train.threads=auto would choose: {threads.choose('auto').reason}")
    print(f"{'recipe':28s} " + " ".join(f"{f'{c} thr (samples/s)':>18s}" for c in counts)
          + f" {'best':>6s} {'ratio':>6s} {'auto ran':>9s} {'auto/best':>9s}  load")
    with tempfile.TemporaryDirectory() as tmp:
        for recipe in args.recipes:
            figures: dict[str, list[float]] = {c: [] for c in counts}
            auto_ran: set[int] = set()
            for r in range(args.rounds):
                for c in (counts if r % 2 == 0 else counts[::-1]):
                    rate, ran = run_throughput(recipe, c, args.epochs, Path(tmp))
                    figures[c].append(rate)
                    auto_ran |= ran if c == "auto" else set()
            med = {c: statistics.median(v) for c, v in figures.items()}
            fixed = counts[:-1]
            best = max(fixed, key=med.get)
            ratio = med[fixed[-1]] / med[fixed[0]]
            ran_text = "/".join(str(c) for c in sorted(auto_ran))
            print(f"{Path(recipe).stem:28s} " + " ".join(f"{med[c]:18.0f}" for c in counts)
                  + f" {best:>6s} {ratio:6.2f} {ran_text:>9s} {med['auto'] / med[best]:9.2f}"
                  f"  {load_average()}", flush=True)


if __name__ == "__main__":
    main()
