"""``mmtk tune``: hyper-parameter search on Optuna, selected on validation only.

The search space names recipe paths (:mod:`.space`), each checked against the recipe before
anything trains (:mod:`.recipe_values`); a trial trains the recipe's seeds and folds and returns
their mean validation score, never reading test (:mod:`.objective`); the study lives in an
Optuna storage shared by any number of workers (:mod:`.storage`, :mod:`.study`,
:mod:`.workers`); at the end the top trials, importances and plots (:mod:`.report`), then
``best.yaml`` and one test evaluation of it (:mod:`.final`). ``optuna`` is imported only here
(:mod:`.engine`), and only when a command runs.
"""
from __future__ import annotations

import argparse
from typing import Any


def tune_command(args: argparse.Namespace, system: Any) -> int:
    """Runs ``mmtk tune`` with parsed arguments; returns the exit status."""
    from .command import tune_command as run

    return run(args, system)


__all__ = ["tune_command"]
