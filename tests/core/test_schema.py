"""The signature is the schema: context values per kind, declared limits, core sections checked
by the same machinery, and the core naming no component of its own."""
from __future__ import annotations

import os
import subprocess
import sys
from typing import Annotated

import torch

from conftest import RECIPES
from mmtk.constraints import Ge, Gt, Lt
from mmtk.errors import Problem
from mmtk.recipe.checks import section_params
from mmtk.recipe.sections import Train
from mmtk.schema import build, check_params, validate_params


class EpochsEncoder(torch.nn.Module):
    """An encoder whose own parameter happens to be called `epochs`."""

    def __init__(self, in_dim: int, latent_dim: int, epochs: int = 3):
        super().__init__()
        self.epochs = epochs


class NeedsOptimizer(torch.nn.Module):
    def __init__(self, in_dim: int, optimizer: str):
        super().__init__()


class Limited(torch.nn.Module):
    def __init__(self, heads: Annotated[int, Ge(1)] = 4,
                 dropout: Annotated[float, Ge(0), Lt(1)] = 0.1,
                 widths: list[Annotated[int, Gt(0)]] | None = None):
        super().__init__()


def test_context_values_depend_on_the_kind():
    # `epochs` is context for schedulers only: an encoder may own a parameter of that name
    assert validate_params(EpochsEncoder, {"epochs": 7}, "model.encoders.audio", "encoder") == []
    enc = build(EpochsEncoder, {"epochs": 7}, {"in_dim": 3, "latent_dim": 4, "epochs": 99}, kind="encoder")
    assert enc.epochs == 7
    # and a required `optimizer` on an encoder is a parameter nobody supplies: a problem
    problems = validate_params(NeedsOptimizer, {}, "model.encoders.audio", "encoder")
    assert [p.path for p in problems] == ["model.encoders.audio.optimizer"]
    assert "missing required parameter 'optimizer'" in problems[0].message
    # while toolkit-supplied names cannot be set by a recipe
    problems = validate_params(EpochsEncoder, {"in_dim": 5}, "model.encoders.audio", "encoder")
    assert problems == [Problem("model.encoders.audio.in_dim",
                                "'in_dim' is supplied by the toolkit and cannot be set in a recipe")]


def test_components_declare_limits_next_to_their_parameters():
    assert validate_params(Limited, {"heads": 2, "dropout": 0.0, "widths": [3]}, "m", "fuser") == []
    found = {p.path: p.message for p in
             validate_params(Limited, {"heads": 0, "dropout": 1.0, "widths": [3, 0]}, "m", "fuser")}
    assert found == {"m.heads": "must be >= 1, got 0", "m.dropout": "must be < 1, got 1.0",
                     "m.widths": "item 1: must be > 0, got 0"}


def test_core_sections_are_checked_by_the_component_machinery():
    plain, special = section_params(Train)
    by_name = {p.name: p for p in plain}
    assert by_name["epochs"].default == 30 and by_name["monitor"].default is not None
    assert by_name["monitor"].required            # supplied by a plugin's defaults, not the core
    assert set(special) == {"optimizer", "scheduler"}
    problems = check_params(plain, {"epochs": 0, "amp": "fp8"}, "train", what="key")
    assert {p.path for p in problems} == {"train.epochs", "train.amp", "train.monitor"}


def test_without_the_basic_plugin_nothing_is_defaulted(tmp_path):
    """The core names no component: with `basic` disabled a recipe must say everything, and
    the message says that no installed plugin supplies the default."""
    env = dict(os.environ, MMTK_DISABLE_PLUGINS="basic")
    proc = subprocess.run([sys.executable, "-m", "mmtk", "validate", str(RECIPES / "baseline.yaml")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    for fragment in ("train.monitor", "no installed plugin supplies a default", "losses.task",
                     "train.optimizer", "eval.metrics"):
        assert fragment in proc.stderr, f"{fragment!r} not in {proc.stderr}"
    assert "Traceback" not in proc.stderr
