"""Peak memory: features held in RAM vs memory-mapped features 10x larger.

Writes synthetic feature files in the generic `arrays` format (audio 130-d, text 1024-d,
visual 342-d, float32) chunk by chunk, then trains one epoch with `mmtk run` in a child
process per case and reports the child's peak resident memory (ru_maxrss via wait4):

  1. N samples, loaded into memory (mmap: false)
  2. 10 N samples, loaded into memory  (what one would need without memory mapping)
  3. 10 N samples, memory-mapped       (mmap: true: rows are read per batch)

    python benchmarks/large_data.py [--n 20000] [--factor 10] [--keep DIR]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DIMS = {"audio": 130, "text": 1024, "visual": 342}


def write_dataset(root: Path, n: int, chunk: int = 10000) -> float:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, size=n)
    for m, d in DIMS.items():
        out = np.lib.format.open_memmap(root / f"{m}.npy", mode="w+", dtype=np.float32, shape=(n, d))
        proj = rng.normal(size=(4, d)).astype(np.float32)
        for s in range(0, n, chunk):
            e = min(s + chunk, n)
            out[s:e] = proj[labels[s:e]] + rng.normal(size=(e - s, d)).astype(np.float32) * 3
        out.flush()
        del out
    (root / "ids.txt").write_text("\n".join(f"s{i}" for i in range(n)) + "\n")
    (root / "labels.csv").write_text("id,label\n" + "".join(f"s{i},{labels[i]}\n" for i in range(n)))
    return sum((root / f"{m}.npy").stat().st_size for m in DIMS) / 2 ** 20


RECIPE = """
mmtk: 1
name: large
data: {{type: arrays, root: {root}, mmap: {mmap}}}
missing: {{train: {{type: six_conditions}}, eval: {{type: six_conditions}}}}
model:
  latent_dim: 64
  encoders: {{audio: {{type: mlp}}, text: {{type: mlp}}, visual: {{type: mlp}}}}
  fuser: {{type: concat}}
  head: {{type: mlp}}
train: {{epochs: 1, batch_size: 256}}
output: {{dir: {out}}}
"""


def peak_rss_mib(recipe: Path) -> tuple[float, float]:
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "mmtk", "run", str(recipe), "--quiet", "--json"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"run failed: {proc.stderr.read().decode()[-2000:]}")
    return usage.ru_maxrss / 1024, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--factor", type=int, default=10)
    ap.add_argument("--keep", help="write the data here instead of a temporary folder")
    ap.add_argument("--skip-large-in-memory", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.keep or tmp)
        small_mb = write_dataset(base / "small", args.n)
        large_mb = write_dataset(base / "large", args.n * args.factor)
        cases = [("in memory", "small", "false", args.n, small_mb)]
        if not args.skip_large_in_memory:
            cases.append(("in memory", "large", "false", args.n * args.factor, large_mb))
        cases.append(("memory-mapped", "large", "true", args.n * args.factor, large_mb))
        print("| features | samples | on disk (MiB) | peak RSS (MiB) | wall (s, 1 epoch + eval) |")
        print("|---|---|---|---|---|")
        for label, which, mmap, n, mb in cases:
            recipe = base / f"{which}-{mmap}.yaml"
            recipe.write_text(RECIPE.format(root=base / which, mmap=mmap, out=base / "runs"))
            rss, wall = peak_rss_mib(recipe)
            print(f"| {label} | {n:,} | {mb:,.0f} | {rss:,.0f} | {wall:.1f} |", flush=True)


if __name__ == "__main__":
    main()
