"""Evaluation cost of IMDer-style diffusion recovery against the zero-filled network.

    python benchmarks/imder_eval_cost.py [--recipe recipes/imder.yaml] [--steps 10 50 100]
                                         [--rounds 3] [--threads 1] [--device cpu]

Times one evaluation pass over the test split under every condition of the recipe's
evaluation protocol (the six missing conditions and the full one), as ``mmtk run`` does at
the end of training and on validation every epoch, for the recipe's model at each number of
sampling steps and for the same network with ``model.reconstructor: null`` (zero-filled
absent modalities: the zero-impute model's cost). Weights are untrained: the cost does not
depend on them. Prints the median over the rounds, the cost per sample and condition, the
ratio to the zero-filled model, torch's thread count and the load average (on a shared
machine the load explains most of the spread).
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

from mmtk.data_loading import load_data
from mmtk.evaluate import Evaluator, eval_plans
from mmtk.plugins import load_plugins
from mmtk.recipe import resolve
from mmtk.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]


def eval_seconds(recipe: Path, overrides: list[str], rounds: int, device: str) -> tuple[float, int, int]:
    """Median seconds of one evaluation pass, the test split's size, the conditions."""
    system = load_plugins()
    tree = resolve(recipe, system, overrides)
    trainer = Trainer(tree, system.registry, device)
    splits = load_data(trainer.builder, tree.data, None, 0)
    stage = tree.last_stage
    plan = eval_plans(lambda: trainer.missing(stage, "eval", 0), splits, ("test",))["test"]
    torch.manual_seed(0)
    model = trainer.builder.model(stage.model, splits.in_dims, splits.num_classes, 0).to(trainer.device)
    test = splits.test.to(trainer.device)
    evaluator = Evaluator(trainer.metrics, splits.num_classes, tree.eval.batch_size, None, trainer.target)
    evaluator.evaluate(model, test, plan)          # warm-up (and the fixed noise is drawn once)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        evaluator.evaluate(model, test, plan)
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times), len(splits.test), len(plan.conditions)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", type=Path, default=ROOT / "recipes" / "imder.yaml")
    ap.add_argument("--steps", type=int, nargs="+", default=[10, 50, 100])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="recipe overrides for both models (e.g. data.labels=600)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    base, n, conditions = eval_seconds(args.recipe, args.set + ["model.reconstructor=null", "losses.weights={}"],
                                       args.rounds, args.device)
    cells = n * conditions
    print(f"recipe {args.recipe.name}: test split {n} samples x {conditions} conditions; "
          f"device {args.device}; median of {args.rounds} passes")
    print(f"{'model':<34} {'pass s':>8} {'ms / sample-condition':>22} {'x zero-filled':>14}")
    print(f"{'zero-filled (reconstructor null)':<34} {base:>8.3f} {1e3 * base / cells:>22.4f} {1.0:>14.1f}")
    for steps in args.steps:
        sec, _, _ = eval_seconds(args.recipe, args.set + [f"model.reconstructor.steps={steps}"],
                                 args.rounds, args.device)
        print(f"{f'imder_diffusion, {steps} steps':<34} {sec:>8.3f} {1e3 * sec / cells:>22.4f} "
              f"{sec / base:>14.1f}")
    load_after = os.getloadavg()
    print(f"torch threads {torch.get_num_threads()}; load average (1, 5, 15 min) before "
          f"{load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, after "
          f"{load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}; cores {os.cpu_count()}")


if __name__ == "__main__":
    main()
