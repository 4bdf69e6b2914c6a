"""A finished trial's final model and data, rebuilt exactly as in training.

The model is built from the run's resolved recipe and its ``model.pt`` loaded; the trial's data
is loaded again with the same fold and seed (normalised on train). Used to evaluate a trained
model under inputs or masks it was not scored on when the run ended (robustness curves,
imputation diagnostics), without retraining.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .builder import Builder
from .data import DataSplits
from .data_loading import load_data
from .devices import autocast_dtype, pick_device, seed_everything
from .errors import MmtkError
from .evaluate import Evaluator
from .pipeline import Pipeline
from .predictions import FILE as PREDICTIONS
from .predictions import load_predictions
from .recipe import Recipe
from .rundir import load_torch, read_json
from .task import output_width, recipe_target


@dataclass
class RebuiltTrial:
    model: Pipeline          # on ``device``, in eval mode once an Evaluator has run it
    splits: DataSplits       # on the CPU, as load_data returns them
    evaluator: Evaluator
    device: torch.device


def trial_fold_seed(trial_dir: Path) -> tuple[int | None, int]:
    """(fold, seed) of a trial, from its data.json (runs before it recorded the seed: from the
    folder name, ``fold1-seed0``)."""
    info = read_json(trial_dir / "data.json", "trial data file")
    if isinstance(info.get("seed"), int):
        return info.get("fold"), info["seed"]
    seed_text = trial_dir.name.rsplit("seed", 1)[-1]
    if not seed_text.lstrip("-").isdigit():
        raise MmtkError(f"{trial_dir}: not an mmtk trial folder (expected a name such as seed0 or fold1-seed0)")
    return info.get("fold"), int(seed_text)


def rebuild_trial(recipe: Recipe, registry: Any, trial_dir: Path, split: str = "test") -> RebuiltTrial:
    """The trial's final model and data; ``split``'s rebuilt samples must be the ones the trial
    was scored on (checked against its kept predictions when it has them)."""
    fold, seed = trial_fold_seed(trial_dir)
    checkpoint = trial_dir / "model.pt"
    if not checkpoint.is_file():   # before the data are loaded again for nothing
        raise MmtkError(f"trial {trial_dir} has no final model ({checkpoint} is missing): rerun the "
                        "recipe (mmtk compare --no-reuse)")
    builder = Builder(registry)
    seed_everything(seed)   # as the trainer did before loading the data
    splits = load_data(builder, recipe.data, fold, seed)
    kept_file = trial_dir / PREDICTIONS
    kept = load_predictions(kept_file).splits.get(split) if kept_file.is_file() else None
    rebuilt = getattr(splits, split)
    if kept is not None and kept.ids != list(rebuilt.ids):
        raise MmtkError(f"the {split} split rebuilt for {trial_dir} is not the one the trial was evaluated on "
                        f"({len(rebuilt.ids)} vs {len(kept.ids)} samples, or another order): the data "
                        "changed since the run. Rerun the recipe (mmtk compare --no-reuse).")
    target, _ = recipe_target(builder, recipe)
    model = builder.model(recipe.last_stage.model, splits.in_dims, splits.num_classes, seed,
                          out_dim=output_width(target, splits.num_classes))
    try:
        model.load_state_dict(load_torch(checkpoint))
    except RuntimeError as exc:   # the recipe's model and the checkpoint disagree
        raise MmtkError(f"{checkpoint} does not fit the model of the run's recipe.yaml "
                        f"({str(exc).splitlines()[0]}); rerun the recipe (mmtk compare --no-reuse)") from None
    train = recipe.first_stage.train
    device = pick_device("cpu" if train.device == "auto" else train.device)
    model.to(device)
    evaluator = Evaluator(builder.metrics(recipe.eval.metrics), splits.num_classes, recipe.eval.batch_size,
                          autocast_dtype(train.amp, device), target)
    return RebuiltTrial(model, splits, evaluator, device)
