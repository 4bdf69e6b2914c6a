"""Run an mmtk MMIN recipe on a corpus written by write_corpus.py with the reference schedule.

    python benchmarks/mmin_reference/run_mmtk.py RECIPE DATA_DIR RUNS_DIR [--epochs 10 10 30 30]
        [--seeds 0 1 2] [--set KEY=VALUE ...]

``--epochs N1 D1 N2 D2`` sets stage 1 to N1 constant + D1 decaying epochs and stage 2 to
N2 + D2 (MMIN's --niter/--niter_decay); fold 1, one torch thread unless --threads.
"""
from __future__ import annotations

import argparse
import sys
import time

from mmtk.cli import main as mmtk_main


def schedule_overrides(n1: int, d1: int, n2: int, d2: int) -> list[str]:
    sets = []
    for stage, (const, decay) in enumerate(((n1, d1), (n2, d2))):
        sets += [f"stages.{stage}.train.epochs={const + decay}",
                 f"stages.{stage}.train.scheduler.constant_epochs={const}"]
    return sets


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("recipe")
    ap.add_argument("data")
    ap.add_argument("runs_dir")
    ap.add_argument("--epochs", type=int, nargs=4, default=[10, 10, 30, 30])
    ap.add_argument("--seeds", nargs="+", default=["0"])
    ap.add_argument("--set", dest="sets", action="append", default=[])
    ap.add_argument("--threads", default="1", help="torch threads: a number or auto (default 1)")
    args = ap.parse_args()
    sets = [f"data.root={args.data}", f"output.dir={args.runs_dir}",
            *schedule_overrides(*args.epochs), *args.sets]
    argv = ["run", args.recipe, "--folds", "1", "--threads", str(args.threads), "--seeds", *args.seeds]
    for s in sets:
        argv += ["--set", s]
    start = time.time()
    code = mmtk_main(argv)
    print(f"wall time: {time.time() - start:.0f} s")
    return code


if __name__ == "__main__":
    sys.exit(main())
