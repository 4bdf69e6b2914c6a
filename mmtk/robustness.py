"""A finished run's test predictions under fixed CPM-style missing rates (robustness curves).

For every trial of a run, the final model is rebuilt from the saved recipe, its ``model.pt``
is loaded, the trial's data is loaded again exactly as in training (same fold and seed,
normalised on train) and the test split is evaluated under :func:`~mmtk.protocols.exact_rate_mask`
at every rate η. The mask of a rate depends only on η, ``MASK_SEED`` and the test set, so
every method and trial of one test set sees the very same masks (the comparison is paired),
whatever other rates are asked for. Results are cached per trial in ``robustness.npz`` (the
array layout of ``predictions.npz`` plus the rates, the mask seed and the checkpoint's
digest), so a rerun of ``mmtk compare`` evaluates nothing twice.
"""
from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .builder import Builder
from .data_loading import load_data
from .devices import autocast_dtype, pick_device, seed_everything
from .errors import MmtkError
from .evaluate import Evaluator
from .predictions import FILE as PREDICTIONS
from .predictions import SplitPredictions, load_predictions, split_arrays, write_npz
from .protocols import EvalCondition, EvalPlan, exact_rate_mask
from .recipe import Recipe, resolve
from .rundir import load_torch, read_json
from .task import output_width, recipe_target

CACHE = "robustness.npz"
MASK_SEED = 20190   # the masks of every rate derive from it (and from η, not from its position)
SPLIT = "test"


def rate_name(rate: float) -> str:
    return f"eta{rate:g}"


def rate_seed(rate: float, mask_seed: int = MASK_SEED) -> int:
    """The generator seed of rate η's mask: a function of η only, so the mask at 0.3 is the same
    whether or not 0.1 was asked for too."""
    return mask_seed + int(round(rate * 1_000_000))


def rate_plan(present: torch.Tensor, rates: list[float], mask_seed: int = MASK_SEED) -> EvalPlan:
    """One condition per rate, named ``eta<rate>``; no ``mean`` (a curve has none)."""
    conds = [EvalCondition(rate_name(r), exact_rate_mask(present.cpu(), r,
                                                         torch.Generator().manual_seed(rate_seed(r, mask_seed))))
             for r in rates]
    return EvalPlan(conds, [])


def run_rate_predictions(run_dir: Path, system: Any, rates: list[float],
                         mask_seed: int = MASK_SEED) -> tuple[dict[str, SplitPredictions], int]:
    """{trial key: test predictions under every rate} of a finished run, and its number of
    classes. Cached trials are read, the others evaluated and cached."""
    run_dir = Path(run_dir)
    saved = run_dir / "recipe.yaml"
    if not saved.is_file():
        raise MmtkError(f"{run_dir} has no recipe.yaml, so its models cannot be rebuilt for the "
                        "robustness curves; rerun the recipe (mmtk compare --no-reuse)")
    results = read_json(run_dir / "metrics.json", "results file")
    recipe: Recipe | None = None
    out, num_classes = {}, 0
    for key in results.get("trials", {}):
        trial_dir = run_dir / "trials" / key
        checkpoint = trial_dir / "model.pt"
        if not checkpoint.is_file():
            raise MmtkError(f"cannot draw the robustness curve of {run_dir}: trial {key} has no final model "
                            f"({checkpoint} is missing), so it cannot be evaluated at other missing rates. "
                            "Rerun the recipe (mmtk compare --no-reuse) or leave out --missing-rates.")
        digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
        cached = read_cache(trial_dir / CACHE, rates, mask_seed, digest)
        if cached is None:
            recipe = recipe or resolve(saved, system)
            cached = evaluate_trial(recipe, system.registry, trial_dir, rates, mask_seed)
            write_cache(trial_dir / CACHE, cached, rates, mask_seed, digest)
        out[key] = cached[0]
        num_classes = max(num_classes, cached[1])
    return out, num_classes


def _trial_seed(trial_dir: Path) -> tuple[int | None, int]:
    """(fold, seed) of a trial, from its data.json (runs before it recorded the seed: from the
    folder name, ``fold1-seed0``)."""
    info = read_json(trial_dir / "data.json", "trial data file")
    if isinstance(info.get("seed"), int):
        return info.get("fold"), info["seed"]
    seed_text = trial_dir.name.rsplit("seed", 1)[-1]
    if not seed_text.lstrip("-").isdigit():
        raise MmtkError(f"{trial_dir}: not an mmtk trial folder (expected a name such as seed0 or fold1-seed0)")
    return info.get("fold"), int(seed_text)


def evaluate_trial(recipe: Recipe, registry: Any, trial_dir: Path, rates: list[float],
                   mask_seed: int) -> tuple[SplitPredictions, int]:
    """The trial's final model on its test split under every rate, with the data and the model
    rebuilt as in training."""
    fold, seed = _trial_seed(trial_dir)
    builder = Builder(registry)
    seed_everything(seed)   # as the trainer did before loading the data
    splits = load_data(builder, recipe.data, fold, seed)
    # the rebuilt test split must be the one the trial was scored on (older runs kept no predictions)
    kept = load_predictions(trial_dir / PREDICTIONS).splits.get(SPLIT) if (trial_dir / PREDICTIONS).is_file() else None
    if kept is not None and kept.ids != list(splits.test.ids):
        raise MmtkError(f"the test split rebuilt for {trial_dir} is not the one the trial was evaluated on "
                        f"({len(splits.test.ids)} vs {len(kept.ids)} samples, or another order): the data "
                        "changed since the run. Rerun the recipe (mmtk compare --no-reuse).")
    target, _ = recipe_target(builder, recipe)
    stage = recipe.last_stage
    model = builder.model(stage.model, splits.in_dims, splits.num_classes, seed,
                          out_dim=output_width(target, splits.num_classes))
    try:
        model.load_state_dict(load_torch(trial_dir / "model.pt"))
    except RuntimeError as exc:   # the recipe's model and the checkpoint disagree
        raise MmtkError(f"{trial_dir / 'model.pt'} does not fit the model of the run's recipe.yaml "
                        f"({str(exc).splitlines()[0]}); rerun the recipe (mmtk compare --no-reuse)") from None
    train = recipe.first_stage.train
    device = pick_device("cpu" if train.device == "auto" else train.device)
    model.to(device)
    evaluator = Evaluator(builder.metrics(recipe.eval.metrics), splits.num_classes, recipe.eval.batch_size,
                          autocast_dtype(train.amp, device), target)
    test = splits.test.to(device)
    keep: dict = {}
    evaluator.evaluate(model, test, rate_plan(splits.test.present, rates, mask_seed), keep)
    return keep["split"], splits.num_classes


# ----------------------------------------------------------------------------- cache ---
def write_cache(path: Path, entry: tuple[SplitPredictions, int], rates: list[float], mask_seed: int,
                digest: str) -> None:
    """predictions.npz's arrays of the test split, plus what the cache is valid for."""
    sp, num_classes = entry
    arrays: dict[str, Any] = {"rates": np.array(rates, dtype=np.float64), "mask_seed": np.array(mask_seed),
                              "checkpoint_sha256": np.array(digest), "num_classes": np.array(num_classes),
                              **split_arrays(SPLIT, sp)}
    write_npz(path, arrays)


def read_cache(path: Path, rates: list[float], mask_seed: int, digest: str) -> tuple[SplitPredictions, int] | None:
    """The cached predictions restricted to ``rates``, or None when the cache is absent,
    damaged, of another checkpoint or mask seed, or lacks one of the rates."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
        if int(data["mask_seed"]) != mask_seed or str(data["checkpoint_sha256"]) != digest:
            return None
        cached = [float(r) for r in data["rates"]]
        if not all(r in cached for r in rates):
            return None
        rows = [cached.index(r) for r in rates]
        p = SPLIT + "."
        prob = data.get(p + "prob")
        sp = SplitPredictions([str(i) for i in data[p + "ids"]], data[p + "labels"], data.get(p + "scores"),
                              [rate_name(r) for r in rates], [], data[p + "mask"][rows], data[p + "pred"][rows],
                              None if prob is None else prob[rows])
        return sp, int(data["num_classes"])
    except (OSError, ValueError, KeyError, EOFError, IndexError, zipfile.BadZipFile):
        return None   # a damaged cache is simply recomputed
