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

from .errors import MmtkError
from .predictions import SplitPredictions, split_arrays, write_npz
from .protocols import EvalCondition, EvalPlan, exact_rate_mask
from .recipe import Recipe, resolve
from .rundir import read_json
from .trial_model import rebuild_trial

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


def evaluate_trial(recipe: Recipe, registry: Any, trial_dir: Path, rates: list[float],
                   mask_seed: int) -> tuple[SplitPredictions, int]:
    """The trial's final model on its test split under every rate, with the data and the model
    rebuilt as in training."""
    trial = rebuild_trial(recipe, registry, trial_dir, SPLIT)
    test = trial.splits.test
    keep: dict = {}
    trial.evaluator.evaluate(trial.model, test.to(trial.device), rate_plan(test.present, rates, mask_seed), keep)
    return keep["split"], trial.splits.num_classes


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
