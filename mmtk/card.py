"""The protocol card: what a reviewer asks first about a run, in one small YAML file.

Written as ``card.yaml`` in the run folder when the run ends. Its facts come from the
recipe and from what the engine recorded in each trial (``evaluation.json``: which split
each evaluation read, while training and at the end, and the epoch each stage selected), not
from what the recipe merely intends. ``mmtk audit`` checks cards.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .recipe import Component, Recipe
from .rundir import read_json, write_yaml

FILE = "card.yaml"


def _component(comp: Component) -> str:
    params = ", ".join(f"{k}: {v}" for k, v in comp.params.items())
    return f"{comp.type} ({params})" if params else comp.type


def _trials(run_dir: Path) -> dict[str, dict]:
    """Per trial: its recorded evaluation facts and data facts."""
    out = {}
    for d in sorted((run_dir / "trials").glob("*")):
        facts, data = d / "evaluation.json", d / "data.json"
        if facts.is_file():
            out[d.name] = {"facts": read_json(facts, "evaluation record"),
                           "data": read_json(data, "data record") if data.is_file() else {}}
    return out


def mask_seed(comp: Component) -> str:
    if "eval_seed" in comp.params:
        return f"eval_seed {comp.params['eval_seed']} (fixed, the same for every trial)"
    return "the protocol's own (it takes no eval_seed; see mmtk show component missing/NAME)"


def per_condition_model(recipe: Recipe) -> bool:
    """A model trained and evaluated on one fixed condition (one model per test condition)."""
    last = recipe.last_stage.missing
    return (last.train.type == last.eval.type == "fixed"
            and last.train.params.get("condition") == last.eval.params.get("condition"))


def build_card(recipe: Recipe, run_dir: Path) -> dict[str, Any]:
    trials = _trials(run_dir)
    first: dict[str, Any] = next(iter(trials.values()), {"facts": {}, "data": {}})
    norm = recipe.data.normalize
    reads = {key: t["facts"].get("reads", {}) for key, t in trials.items()}
    return {
        "run": recipe.name, "trials": len(trials), "seeds": recipe.seeds,
        "folds": recipe.data.folds if recipe.data.folds is not None else "the dataset's one split",
        "data": {
            "dataset": _component(recipe.data.dataset),
            "data seed": recipe.data.dataset.params.get("data_seed", "the dataset's default"),
            "sample seed": recipe.data.dataset.params.get("sample_seed", "the data seed"),
            "validation split": first["data"].get("validation", "the dataset's own"),
            "sizes (first trial)": first["data"].get("sizes"),
            "normalisation": ("none" if not norm else "standardised with statistics of each fold's "
                              "training split" + ("" if norm is True else f" ({', '.join(norm)})")),
        },
        "selection": {
            "split": "val",
            "per stage": {s.name: {"monitor": s.train.monitor, "patience": s.train.patience,
                                   "epochs": s.train.epochs} for s in recipe.stages},
            "selected epoch": {key: {st: v.get("epoch") for st, v in t["facts"].get("selected", {}).items()}
                               for key, t in trials.items()},
        },
        "test split": {
            "read while training": {key: r.get("training", {}).get("test", 0) for key, r in reads.items()},
            "read at the end": {key: r.get("final", {}).get("test", 0) for key, r in reads.items()},
        },
        "evaluation": {
            "protocol": _component(recipe.last_stage.missing.eval),
            "mask seed": mask_seed(recipe.last_stage.missing.eval),
            "training protocol": _component(recipe.last_stage.missing.train),
            "one model per test condition": per_condition_model(recipe),
            "not scored (shown no modality)": {key: t["facts"].get("excluded", {}) for key, t in trials.items()},
        },
        "tuning": "none recorded: nothing in this run was chosen by mmtk on any split",
    }


def write_card(recipe: Recipe, run_dir: Path) -> Path:
    path = run_dir / FILE
    write_yaml(path, build_card(recipe, run_dir))
    return path
