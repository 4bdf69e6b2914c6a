"""How fast can MMIN's stage 1 go at all? The acoustic LSTM alone, per training step.

Times forward + backward of MMIN's acoustic encoder (one-layer LSTM, 130 -> 128, max-pooled,
batch 128) at the padded length a training batch has: the longest utterance of a random
batch (what the reference and unbucketed mmtk run) and of a length-bucketed batch (mmtk's
``bucket_by_length``), drawn from the corpus' real lengths; fp32 and bf16 autocast. The
implied ceiling is batch / LSTM time: samples/s if nothing but this one encoder cost time.

    python benchmarks/mmin_reference/lstm_floor.py /tmp/mmin_var [--threads 2] [--repeats 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path
from types import SimpleNamespace

import h5py
import torch

from mmtk.data_loading import batch_indices

BATCH, IN_DIM, HIDDEN = 128, 130, 128


def batch_longest(lengths: torch.Tensor, bucket: bool, generator: torch.Generator) -> list[int]:
    """The longest length of every batch of one epoch: random batches, or batches made by
    mmtk's own bucketing (``batch_indices``, which reads only the lengths)."""
    order = torch.randperm(len(lengths), generator=generator)
    batches = batch_indices(order, BATCH, SimpleNamespace(lengths={"audio": lengths}), bucket, generator)
    return [int(lengths[b].max()) for b in batches]


def step_seconds(lstm: torch.nn.LSTM, steps: int, amp: bool, repeats: int) -> float:
    """Median over ``repeats`` of one forward + backward at ``steps`` frames."""
    x = torch.randn(BATCH, steps, IN_DIM)
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            out, _ = lstm(x)
            loss = out.float().amax(1).sum()
        loss.backward()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])   # the first call warms oneDNN up


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus", type=Path, help="a corpus written by write_corpus.py")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with h5py.File(args.corpus / "A" / "comparE.h5", "r") as f:
        lengths = torch.tensor([f[k].shape[0] for k in f])
    lstm = torch.nn.LSTM(IN_DIM, HIDDEN, batch_first=True)
    g = torch.Generator().manual_seed(0)
    print(f"{len(lengths)} utterances of {int(lengths.min())}-{int(lengths.max())} frames; "
          f"{args.threads} threads; load {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'batches':10s} {'mean longest':>12s} {'precision':>9s} {'LSTM fwd+bwd':>13s} {'ceiling':>16s}")
    for bucket in (False, True):
        longest = batch_longest(lengths, bucket, g)
        mean_t = statistics.mean(longest)
        for amp in (False, True):
            cost = {t: step_seconds(lstm, t, amp, args.repeats) for t in set(longest)}
            seconds = statistics.mean(cost[t] for t in longest)   # over the epoch's batches
            print(f"{'bucketed' if bucket else 'random':10s} {mean_t:12.1f} {'bf16' if amp else 'fp32':>9s} "
                  f"{1e3 * seconds:10.1f} ms {BATCH / seconds:9.0f} samples/s")


if __name__ == "__main__":
    main()
