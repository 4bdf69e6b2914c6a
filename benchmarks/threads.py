"""Training throughput of every offline shipped recipe at 1 torch thread vs all cores, on a
quiet machine and under load: the measurement behind the thread policy (mmtk/threads.py).

Each (recipe, thread count) is one ``mmtk run --threads N`` subprocess of a few epochs; the
figure is training samples/s from the run's history (data loading and evaluation excluded).
Rounds alternate the thread counts, so a change of machine load hits both alike; the median
over rounds is printed. ``--load K`` starts K busy-looping processes for the whole
measurement, i.e. a machine where K cores are taken by someone else. The load average is
printed with every figure.

    python benchmarks/threads.py [--recipes cmarr mmin ...] [--epochs 3] [--rounds 3] [--load 0]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mmtk.training_curves import read_curves, samples_per_second

ROOT = Path(__file__).resolve().parents[1]
# the shipped recipes that run offline (IEMOCAP/MOSI ones need licence-gated data), plus the
# MMIN-sized frame-level stand-in for those
RECIPES = ["cmarr", "mmin", "baseline", "modality-dropout", "mean-impute", "ae-impute", "cra-impute",
           "late-fusion-handwritten", "cmarr-handwritten", str(ROOT / "benchmarks/recipes/mmin-sized.yaml")]


def busy_loop() -> None:
    while True:
        pass


def run_throughput(recipe: str, threads: int, epochs: int, out: Path) -> float:
    cmd = [sys.executable, "-m", "mmtk", "run", recipe, "--threads", str(threads), "--quiet", "--json",
           "--set", f"train.epochs={epochs}", "--set", "train.patience=null", "--set", f"output.dir={out}"]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    results = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout)
    return samples_per_second([r for stage in read_curves(Path(results["directory"])) for r in stage.records()])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipes", nargs="+", default=RECIPES)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--load", type=int, default=0, help="busy-looping processes started alongside")
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    counts = sorted({1, cores})
    hogs = [mp.Process(target=busy_loop, daemon=True) for _ in range(args.load)]
    for h in hogs:
        h.start()
    time.sleep(1.0)   # let the busy processes show
    from mmtk import threads
    print(f"{cores} cores, {args.load} busy process(es) started; thread counts {counts}; "
          f"median of {args.rounds} rounds, {args.epochs} epochs each; "
          f"train.threads=auto would choose: {threads.choose('auto').reason}")
    print(f"{'recipe':28s} " + " ".join(f"{f'{c} thr (samples/s)':>18s}" for c in counts)
          + f" {'best':>6s} {'ratio':>6s}  load")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for recipe in args.recipes:
                figures: dict[int, list[float]] = {c: [] for c in counts}
                for r in range(args.rounds):
                    for c in (counts if r % 2 == 0 else counts[::-1]):
                        figures[c].append(run_throughput(recipe, c, args.epochs, Path(tmp)))
                med = {c: statistics.median(v) for c, v in figures.items()}
                best = max(med, key=med.get)
                ratio = med[counts[-1]] / med[counts[0]]
                print(f"{Path(recipe).stem:28s} " + " ".join(f"{med[c]:18.0f}" for c in counts)
                      + f" {best:>6d} {ratio:6.2f}  {os.getloadavg()[0]:.2f}", flush=True)
    finally:
        for h in hogs:
            h.terminate()


if __name__ == "__main__":
    main()
