"""Registers mmtk's basic components through the same hooks a third-party plugin uses."""
from __future__ import annotations

from pathlib import Path

import mmtk

from . import encoders, fusion, missing, synthetic, training


@mmtk.hookimpl
def mmtk_register_components(register):
    register("encoder", "mlp", encoders.MLPEncoder)
    register("encoder", "lstm", encoders.LSTMEncoder)
    register("encoder", "textcnn", encoders.TextCNNEncoder)
    register("fuser", "concat", fusion.ConcatFuser)
    register("head", "mlp", fusion.MLPHead)
    register("loss", "cross_entropy", training.CrossEntropy)
    register("loss", "l1", training.L1)
    register("loss", "mse", training.MSE)
    for fn in (training.adam, training.adamw, training.sgd):
        register("optimizer", fn.__name__, fn)
    for fn in (training.cosine, training.step, training.linear_decay):
        register("scheduler", fn.__name__, fn)
    for fn in (training.war, training.uar, training.f1_macro, training.f1_weighted,
               training.mae, training.corr):
        register("metric", fn.__name__, fn)
    register("missing", "none", missing.NoMissing)
    register("missing", "six_conditions", missing.SixConditions)
    register("missing", "random_rate", missing.RandomRate)
    register("missing", "fixed", missing.Fixed)
    register("dataset", "synthetic", synthetic.Synthetic)


@mmtk.hookimpl
def mmtk_recipe_defaults():
    # What a recipe gets when it does not say: the core itself names no component.
    return {"missing": {"train": {"type": "none"}, "eval": {"type": "none"}},
            "losses": {"task": {"type": "cross_entropy"}},
            "train": {"monitor": "uar", "optimizer": {"type": "adam"}},
            "eval": {"metrics": ["war", "uar", "f1_macro", "f1_weighted"]}}


@mmtk.hookimpl
def mmtk_register_recipes(register):
    # Recipes live in the repository's recipes/ folder (present in a source checkout).
    folder = Path(__file__).resolve().parents[2] / "recipes"
    if folder.is_dir():
        for path in sorted(folder.glob("*.yaml")):
            register(path.stem, path)
