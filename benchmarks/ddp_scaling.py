"""Samples/s of one training process vs N DDP processes (gloo on CPU, or NCCL on GPUs).

Both runs train the same recipe with the same effective batch size; the figure is training
samples per second over all epochs (validation excluded), read from the runs' histories.

    python benchmarks/ddp_scaling.py [--recipe benchmarks/recipes/mmin-sized.yaml] [--procs 2]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from mmtk.training_curves import read_curves, samples_per_second

ROOT = Path(__file__).resolve().parents[1]


def throughput_and_score(run_root: Path) -> tuple[float, dict]:
    run = next(p for p in run_root.glob("*/*") if (p / "metrics.json").is_file())
    rate = samples_per_second([r for stage in read_curves(run) for r in stage.records()])
    return rate, json.loads((run / "metrics.json").read_text())["summary"]["test"]["mean"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipe", default=str(ROOT / "benchmarks" / "recipes" / "mmin-sized.yaml"))
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process")
    args = ap.parse_args()
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        common = ["run", args.recipe, "--quiet", "--json"]
        subprocess.run([sys.executable, "-m", "mmtk", *common, "--set", f"output.dir={tmp / 'one'}"],
                       check=True, env=env, capture_output=True)
        subprocess.run([torchrun, f"--nproc_per_node={args.procs}", "-m", "mmtk", *common,
                        "--set", f"output.dir={tmp / 'ddp'}"], check=True, env=env, capture_output=True)
        one, m1 = throughput_and_score(tmp / "one")
        ddp, m2 = throughput_and_score(tmp / "ddp")
    print(f"recipe: {args.recipe}; {args.threads} torch thread(s) per process; {os.cpu_count()} CPU cores")
    print(f"1 process:            {one:,.0f} training samples/s (test mean UAR {100 * m1['uar']['mean']:.2f})")
    print(f"{args.procs} DDP processes (gloo): {ddp:,.0f} training samples/s "
          f"(test mean UAR {100 * m2['uar']['mean']:.2f})")
    print(f"speed-up: {ddp / one:.2f}x")


if __name__ == "__main__":
    main()
