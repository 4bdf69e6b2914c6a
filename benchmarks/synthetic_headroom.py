"""How much room the `synthetic` data leaves for missing-modality methods.

For each of the six missing conditions, trains the zero-filled baseline network as a
*specialist* for that condition only (missing protocol `fixed`: trained and tested with
exactly those modalities), over the given seeds, and prints its test UAR next to the Bayes
bound of benchmarks/synthetic_oracle.py. A method trained once for all conditions (CM-ARR,
MMIN, ...) that matches the specialists has nothing left to recover: the information a
missing modality carried alone is not in the others.

    python benchmarks/synthetic_headroom.py [--recipe benchmarks/recipes/control/baseline.yaml]
        [--seeds 10 11 12 13 14] [--jobs 2]
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from mmtk.plugins import load_plugins
from mmtk.recipe import resolve
from mmtk.run import Run

ROOT = Path(__file__).resolve().parents[1]
CONDITIONS = ["a", "t", "v", "at", "av", "tv"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipe", default=str(ROOT / "benchmarks" / "recipes" / "control" / "baseline.yaml"))
    ap.add_argument("--seeds", nargs="+", type=int, default=[10, 11, 12, 13, 14])
    ap.add_argument("--jobs", type=int, default=1)
    args = ap.parse_args()
    system = load_plugins()
    out = Path(tempfile.mkdtemp(prefix="mmtk-headroom-"))
    uar = {}
    for cond in CONDITIONS:
        proto = f"{{type: fixed, condition: {cond}}}"
        tree = resolve(args.recipe, system, [f"missing.train={proto}", f"missing.eval={proto}",
                                               f"seed=[{', '.join(map(str, args.seeds))}]",
                                               f"output.dir={out}", f"name=specialist-{cond}"])
        res = Run.create(tree, system, jobs=args.jobs).execute()
        uar[cond] = [t["test"][cond]["uar"] for t in res["trials"].values()]
        print(f"specialist {cond}: " + ", ".join(f"{100 * v:.2f}" for v in uar[cond]), flush=True)
    means = {c: 100 * float(np.mean(v)) for c, v in uar.items()}
    stds = {c: 100 * float(np.std(v, ddof=1)) if len(v) > 1 else 0.0 for c, v in uar.items()}
    per_seed_mean = np.mean([uar[c] for c in CONDITIONS], axis=0) * 100
    print(f"\nper-condition specialists ({Path(args.recipe).name}), test UAR %, seeds {args.seeds}")
    print("| " + " | ".join(CONDITIONS + ["mean"]) + " |")
    print("|" + "---|" * (len(CONDITIONS) + 1))
    sd = per_seed_mean.std(ddof=1) if len(per_seed_mean) > 1 else 0.0
    print("| " + " | ".join(f"{means[c]:.2f} ± {stds[c]:.2f}" for c in CONDITIONS)
          + f" | {per_seed_mean.mean():.2f} ± {sd:.2f} |")


if __name__ == "__main__":
    main()
