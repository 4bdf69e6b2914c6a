"""Loop overhead: mmtk's training loop vs a minimal hand-written PyTorch loop.

Both train the same model (built from the same recipe) on the same in-memory data for the
same number of epochs, with six-condition masking in training and a per-epoch validation
pass over the seven evaluation conditions (a loop that does early stopping must validate).
Prints samples/s of both and their ratio (mmtk / hand-written); target >= 0.95.

    python benchmarks/loop_overhead.py [--recipe benchmarks/recipes/control/baseline.yaml] [--epochs 5] [--rounds 3]
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from mmtk.builder import Builder
from mmtk.data_loading import load_data
from mmtk.devices import seed_everything
from mmtk.plugins import load_plugins
from mmtk.recipe import resolve
from mmtk.trainer import Trainer, TrialSpec

ROOT = Path(__file__).resolve().parents[1]


def hand_written(tree, registry, splits, epochs: int) -> float:
    """The loop a researcher would write by hand; returns seconds."""
    seed_everything(0)
    builder = Builder(registry)
    model = builder.model(tree.last_stage.model, splits.in_dims, splits.num_classes)
    opt = torch.optim.Adam(model.parameters(), lr=tree.last_stage.train.optimizer.params.get("lr", 1e-3))
    train, val = splits.train, splits.val
    options = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]], dtype=torch.bool)
    conditions = torch.cat([options, torch.ones(1, 3, dtype=torch.bool)])
    bs, n = tree.last_stage.train.batch_size, len(train)
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(n)
        for i in range(0, n, bs):
            idx = perm[i:i + bs]
            keep = options[torch.randint(6, (len(idx),))]
            batch = train.batch(idx).masked(keep)
            logits = model(batch).logits
            loss = torch.nn.functional.cross_entropy(logits, batch.labels)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
        model.eval()
        with torch.no_grad():
            for cond in conditions:
                idx = torch.arange(len(val))
                batch = val.batch(idx).masked(cond.expand(len(val), -1))
                (model(batch).logits.argmax(-1) == batch.labels).float().mean().item()
    return time.perf_counter() - start


def mmtk_loop(tree, registry, epochs: int) -> float:
    trainer = Trainer(tree, registry, "cpu")
    with tempfile.TemporaryDirectory() as tmp:
        trainer.run(TrialSpec(None, 0, Path(tmp) / "trial"))  # warm-up & data load excluded below
    timings = {}

    def progress(event, **info):
        if event == "stage_start":
            timings["start"] = time.perf_counter()
        elif event == "epoch_end" and info["epoch"] == epochs:
            timings["end"] = time.perf_counter()

    trainer.progress = progress
    with tempfile.TemporaryDirectory() as tmp:
        trainer.run(TrialSpec(None, 0, Path(tmp) / "trial"))
    return timings["end"] - timings["start"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipe", default=str(ROOT / "benchmarks" / "recipes" / "control" / "baseline.yaml"))
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--set", action="append", default=[], help="recipe override, e.g. train.checkpoint_every=5")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads (default: every core)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    system = load_plugins()
    tree = resolve(args.recipe, system, [f"train.epochs={args.epochs}", "train.patience=null"] + args.set)
    splits = load_data(Builder(system.registry), tree.data, None, 0)
    samples = len(splits.train) * args.epochs
    # Same global state for both loops: mmtk's deterministic CPU mode (the recipe default,
    # without NaN-filling new tensors, as the trainer sets it) is switched on first, and both
    # loops run once untimed to warm caches and allocators.
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]
    hand_written(tree, system.registry, splits, 1)
    hand, ours = [], []
    for _ in range(args.rounds):           # interleaved rounds: machine noise hits both
        hand.append(hand_written(tree, system.registry, splits, args.epochs))
        ours.append(mmtk_loop(tree, system.registry, args.epochs))
    h, o = statistics.median(hand), statistics.median(ours)
    print(f"recipe: {args.recipe}; train samples {len(splits.train)}; epochs {args.epochs}; "
          f"torch threads {torch.get_num_threads()}")
    print(f"hand-written loop: {samples / h:,.0f} samples/s (median of {args.rounds})")
    print(f"mmtk loop:         {samples / o:,.0f} samples/s (median of {args.rounds})")
    print(f"ratio mmtk / hand-written: {h / o:.3f} (medians); {min(hand) / min(ours):.3f} "
          "(best rounds: least disturbed by machine noise)")


if __name__ == "__main__":
    main()
