"""Start-up time of the command line: how long a user waits before mmtk does anything.

    python benchmarks/startup.py [--rounds 7] [--recipe recipes/cmarr.yaml]

Times ``mmtk --help``, ``mmtk list components`` and ``mmtk validate RECIPE``, each as a fresh
subprocess (``python -m mmtk``, so a PYTHONPATH pointing at another checkout measures that
checkout), and prints the median and the best of the rounds, plus which heavy libraries each
command imported. The load average and torch's thread count are printed too, because on a
shared machine they explain most of the spread.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "numpy", "normflows", "transformers", "h5py")
# Runs the command in-process and reports the heavy top-level modules it imported.
PROBE = ("import sys, contextlib, io\n"
         "from mmtk.cli import main\n"
         "with contextlib.redirect_stdout(io.StringIO()):\n"
         "    try:\n"
         "        main(sys.argv[1:])\n"
         "    except SystemExit:\n"
         "        pass\n"
         f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n")


def time_command(args: list[str], rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "mmtk", *args], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return times


def heavy_imports(args: list[str]) -> str:
    out = subprocess.run([sys.executable, "-c", PROBE, *args], check=True, capture_output=True,
                         text=True).stdout.strip()
    return out or "none"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--recipe", default=str(ROOT / "recipes" / "cmarr.yaml"))
    args = ap.parse_args()
    commands = {"mmtk --help": ["--help"], "mmtk list components": ["list", "components"],
                "mmtk validate " + Path(args.recipe).name: ["validate", args.recipe]}
    load_before = os.getloadavg()
    print(f"{'command':<28} {'median s':>9} {'best s':>8}  heavy imports")
    for label, argv in commands.items():
        time_command(argv, 1)   # warm the file cache; not counted
        times = time_command(argv, args.rounds)
        print(f"{label:<28} {statistics.median(times):9.3f} {min(times):8.3f}  {heavy_imports(argv)}")
    import torch
    load_after = os.getloadavg()
    print(f"rounds: {args.rounds}; load average before {load_before[0]:.2f}, after "
          f"{load_after[0]:.2f} (1 min); CPUs: {os.cpu_count()}; torch threads: "
          f"{torch.get_num_threads()}; python: {sys.executable}")


if __name__ == "__main__":
    main()
