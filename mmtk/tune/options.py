"""The ``mmtk tune`` command line (imports nothing heavy: ``mmtk --help`` stays fast)."""
from __future__ import annotations

import argparse
from typing import Any, Callable

EPILOG = """\
search space (--space FILE.yaml): recipe paths (as --set writes them) mapped to distributions
  losses.weights.aligner/w2_nce: {float: [0.01, 10], log: true}
  train.optimizer.lr: {float: [1e-4, 1e-2], log: true}
  model.head.dropout: {float: [0.0, 0.5], step: 0.1}
  model.fuser.heads: {int: [2, 8], step: 2}
  model.fuser.pool: {categorical: [concat, mean]}
float / int take [low, high] (low < high; log: true needs low > 0; step: a grid, not with log);
categorical takes a list of plain values. A *.type choice replaces that component block (its
other parameters are dropped when the type changes); null removes an optional slot (then its
losses.weights must go too). (The lines above fit recipes/cmarr.yaml.) Every key
is checked against the recipe at both ends of its range (or at every choice) before any
training: an unknown path, a wrong type or an out-of-range value stops the command (exit 2).

objective: the recipe's train.monitor on validation, the mean over --seeds / --folds; test is
never evaluated inside a trial. At the end: trials.csv, the top trials, parameter importances,
history.png / params.png (plot extra), best.yaml (extends the recipe with the chosen values),
and best.yaml trained once more and evaluated on test once.

tune: section of a recipe (the command line wins): space (the mapping above), trials,
sampler, pruner, prune_after; e.g.  tune: {trials: 40, space: {train.optimizer.lr: {float: [1e-4, 1e-2], log: true}}}

storage: default sqlite in runs/<name>/tune-<study>/study.db. Rerun the same command to continue
an interrupted study (trials of killed workers are marked failed and redone). Many machines:
  mmtk tune RECIPE --space S.yaml --trials 100 --storage postgresql://USER@HOST/DB   # machine 1
  mmtk tune --join STUDY --storage postgresql://USER@HOST/DB --jobs 4               # others
"""


def _at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value
    return parse


def configure(sub: Any) -> None:
    """Adds the ``tune`` subcommand to the ``mmtk`` subparsers ``sub``."""
    p = sub.add_parser("tune", help="hyper-parameter search on validation (Optuna)", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("recipe", nargs="?", help="recipe file or registered recipe name")
    p.add_argument("--space", metavar="FILE.yaml", help="the search space (format below; default: the "
                   "recipe's tune.space)")
    p.add_argument("--trials", type=_at_least(1), metavar="N",
                   help="trials the study should hold (completed + pruned + failed; default: tune.trials)")
    p.add_argument("--seeds", nargs="+", type=int, help="seeds of every trial (the objective is their mean)")
    p.add_argument("--folds", nargs="+", help="folds of every trial, or 'all'")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a recipe value")
    p.add_argument("--jobs", type=_at_least(1), default=1, help="worker processes on this machine")
    p.add_argument("--storage", metavar="URL",
                   help="an Optuna storage: sqlite:///F.db, postgresql://..., journal:FILE (default: "
                        "study.db in the tuning folder)")
    p.add_argument("--study", metavar="NAME", help="the study's name (default: recipe name + a hash of "
                   "recipe, overrides and space, so the same command continues the same study)")
    p.add_argument("--join", metavar="STUDY", help="work on an existing study in --storage (another machine)")
    p.add_argument("--sampler", choices=["tpe", "random"], help="Optuna sampler (default tpe)")
    p.add_argument("--sampler-seed", type=int, default=0, help="seed of the sampler (default 0)")
    p.add_argument("--pruner", choices=["median", "none"],
                   help="stop unpromising trials from per-epoch validation, never in a stage's "
                        "first patience epochs (default median)")
    p.add_argument("--prune-after", type=_at_least(0), metavar="K",
                   help="trials that finish before the pruner may stop one (default 5)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 or auto")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
