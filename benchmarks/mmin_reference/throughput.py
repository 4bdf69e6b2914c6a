"""Training throughput of MMIN: AIM3-RUC/MMIN's own code vs mmtk, both stages, same corpus.

Every round runs the reference (``run_reference.sh``: stage 1 utt-fusion, stage 2 MMIN) and
each mmtk variant (``run_mmtk.py``, fold 1) for the same few epochs, alternating the order
from round to round so a change of machine load hits every system alike. A figure is
training samples/s: samples seen in training over the seconds the epochs took. The
reference's epoch time is its own log line "Time Taken" (its train loop, data loading and
per-epoch checkpoint included; the patch prints it to the millisecond); mmtk's is the run
history's ``train_seconds`` (train loop with data; validation and checkpointing excluded).
Medians over rounds; the load average is printed with every round. "wall" is the whole
command (start-up, data loading, every epoch's validation; the reference also tests every
epoch), shown for what a user waits, not as the throughput figure.

A variant is NAME=PYTHONPATH[|KEY=VALUE...]: the mmtk checkout to import (empty: this one),
e.g. the checkout before a change, to measure before/after in one run, and overrides of
that variant alone (``"bf16=|train.amp=bf16"``):

    git worktree add /tmp/mmtk-before <commit>
    python benchmarks/mmin_reference/throughput.py /tmp/mmin_var --reference /tmp/mmin_ref \\
        --mmtk now= --mmtk before=/tmp/mmtk-before:/tmp/mmtk-before/plugins --epochs 3 3 --rounds 2

On a loaded machine, as a user meets it (two busy processes; each system at its own thread
default: the reference's torch takes every core, mmtk's policy counts the idle ones):

    python benchmarks/mmin_reference/throughput.py /tmp/mmin_var --reference /tmp/mmin_ref \
        --load 2 --threads 2 --mmtk-threads auto

The corpus: ``write_corpus.py /tmp/mmin_var --frames 100 10 10 --min-audio-frames 20``
(2,400 training utterances of 20-100 audio frames). Accuracy is not measured here (a few
epochs); run_mmtk.py and compare_table.py compare the full schedules.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from mmtk.training_curves import read_curves, samples_per_second

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # benchmarks/: the shared load helper
from machine_load import busy_processes, load_average  # noqa: E402

HERE = Path(__file__).resolve().parent
STAGES = ("stage 1", "stage 2")
TIME_TAKEN = re.compile(r"End of training epoch \d+ / \d+ \t Time Taken: ([\d.]+) sec")
TRAIN_SAMPLES = re.compile(r"The number of training samples = (\d+)")


def reference_rates(ref: Path, data: Path, out: Path, epochs: tuple[int, int], threads: int) -> list[float]:
    """Samples/s of the reference's two stages, from its logs (constant epochs, no decay), and
    the wall seconds of the whole command."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    schedule = [str(epochs[0]), "0", str(epochs[1]), "0"]
    start = time.perf_counter()
    subprocess.run(["bash", str(HERE / "run_reference.sh"), str(ref), str(data), str(out), *schedule],
                   check=True, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    return [*(log_rate("\n".join(p.read_text() for p in sorted((out / "logs" / name).rglob("*.log"))))
            for name in ("CAP_utt_fusion_AVL_run1", "mmin_IEMOCAP_block_5_run1")), wall]


def log_rate(text: str) -> float:
    """Training samples/s of one reference stage from its log: epochs x training samples
    over the sum of the epochs' "Time Taken"."""
    seconds = [float(s) for s in TIME_TAKEN.findall(text)]
    samples = TRAIN_SAMPLES.findall(text)
    if not seconds or not samples:
        raise SystemExit("no 'Time Taken' / 'number of training samples' lines in the reference's log")
    return int(samples[-1]) * len(seconds) / sum(seconds)


def mmtk_rates(recipe: str, data: Path, out: Path, epochs: tuple[int, int], threads: str,
               pythonpath: str, sets: list[str]) -> list[float]:
    """Samples/s of an mmtk MMIN recipe's two stages, from the run's histories, and the wall
    seconds of the whole command. ``threads`` "auto": mmtk's own thread policy decides."""
    env = dict(os.environ)
    if threads != "auto":
        env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    cmd = [sys.executable, str(HERE / "run_mmtk.py"), recipe, str(data), str(out),
           "--epochs", str(epochs[0]), "0", str(epochs[1]), "0", "--threads", threads]
    for s in sets:
        cmd += ["--set", s]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    run = next(out.rglob("trials/*/history-*.json")).parents[2]
    stages = {stage.name: stage for stage in read_curves(run)}
    names = [s["name"] for s in yaml.safe_load((run / "recipe.yaml").read_text())["stages"]]
    return [*(samples_per_second(stages[name].records()) for name in names), wall]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path, help="a corpus written by write_corpus.py")
    ap.add_argument("--reference", type=Path, required=True, help="MMIN checkout with mmin_cpu.patch")
    ap.add_argument("--mmtk", action="append", default=None, metavar="NAME=PYTHONPATH[|KEY=VALUE...]",
                    help="an mmtk variant (repeatable); default: now= (this checkout)")
    ap.add_argument("--recipe", default="mmin-iemocap",
                    help="a recipe name (each variant resolves it in its own checkout) or path")
    ap.add_argument("--epochs", type=int, nargs=2, default=[3, 3], metavar=("STAGE1", "STAGE2"))
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2, help="torch threads of every system")
    ap.add_argument("--mmtk-threads", help="mmtk's torch threads instead: a number or auto (its "
                    "thread policy, as a user gets it); default: --threads")
    ap.add_argument("--load", type=int, default=0, help="busy-looping processes kept running "
                    "meanwhile (a loaded machine)")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="override for the mmtk runs")
    args = ap.parse_args()
    variants = {name: spec.split("|") for name, spec in (v.split("=", 1) for v in (args.mmtk or ["now="]))}
    systems = ["reference", *variants]
    figures: dict[str, list[list[float]]] = {s: [] for s in systems}
    mmtk_threads = args.mmtk_threads or str(args.threads)
    print(f"{args.data}: {args.epochs[0]} + {args.epochs[1]} epochs, {args.threads} threads "
          f"(mmtk: {mmtk_threads}), {args.rounds} rounds, {args.load} busy process(es); "
          f"mmtk recipe {args.recipe}")
    with busy_processes(args.load), tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for system in (systems if r % 2 == 0 else systems[::-1]):
                out = Path(tmp) / f"{system}-{r}"
                if system == "reference":
                    rates = reference_rates(args.reference, args.data, out, tuple(args.epochs), args.threads)
                else:
                    path, *own = variants[system]
                    rates = mmtk_rates(args.recipe, args.data, out, tuple(args.epochs), mmtk_threads,
                                       path, [*args.sets, *own])
                figures[system].append(rates)
                print(f"round {r + 1} {system:12s} " + "  ".join(
                    f"{st} {v:7.0f} samples/s" for st, v in zip(STAGES, rates))
                      + f"  wall {rates[2]:5.0f} s   load {load_average()}", flush=True)
    ref = [statistics.median(f[i] for f in figures["reference"]) for i in range(3)]
    print(f"\n{'system':12s} " + " ".join(f"{st + ' samples/s':>18s} {'vs ref':>7s}" for st in STAGES)
          + f" {'wall s':>7s} {'vs ref':>7s}")
    for system in systems:
        med = [statistics.median(f[i] for f in figures[system]) for i in range(3)]
        print(f"{system:12s} " + " ".join(f"{m:18.0f} {m / r:6.2f}x" for m, r in zip(med[:2], ref[:2]))
              + f" {med[2]:7.0f} {ref[2] / med[2]:6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
