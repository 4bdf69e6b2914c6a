"""The baselines' parameters declare their limits: ``mmtk validate`` accepts a value at the
boundary and refuses the first one past it, naming the dotted path and the limit."""
from __future__ import annotations

from pathlib import Path

import pytest

RECIPES = Path(__file__).resolve().parents[3] / "recipes"
# MMIN's imagination in a one-stage recipe (the shipped mmin.yaml sets it in its second stage)
MMIN_ONE_STAGE = """\
mmtk: 1
name: mmin-one-stage
data: {type: synthetic}
missing: {train: {type: six_conditions}, eval: {type: six_conditions}}
model:
  latent_dim: 16
  encoders: {audio: {type: mlp}, text: {type: mlp}, visual: {type: mlp}}
  reconstructor: {type: mmin_imagination, layers: [32, 16], blocks: 2, pretrained_teacher: false}
  fuser: {type: mmin_latents, dim: 32}
  head: {type: mlp}
losses:
  weights: {reconstructor/mse: 1.0, reconstructor/cycle: 1.0}
"""

# (recipe, dotted path, a valid value at/next to the limit, the first invalid one, what the error says)
CASES = [
    ("ae-impute", "model.reconstructor.layers", "[1]", "[]", "must not be empty"),
    ("ae-impute", "model.reconstructor.layers", "[256, 1]", "[256, 0]", "item 1: must be > 0"),
    ("ae-impute", "model.reconstructor.dropout", "0.99", "1.0", "must be < 1"),
    ("cra-impute", "model.reconstructor.blocks", "1", "0", "must be >= 1"),
    ("cra-impute", "model.reconstructor.layers", "[8]", "[-8]", "item 0: must be > 0"),
    ("cra-impute", "model.reconstructor.dropout", "0.0", "-0.1", "must be >= 0"),
    ("mean-impute", "model.reconstructor.momentum", "1.0", "1.5", "must be <= 1"),
    ("mean-impute", "model.reconstructor.momentum", "null", "0", "must be > 0"),  # null: cumulative mean
    ("mmin", "model.reconstructor.blocks", "1", "0", "must be >= 1"),
    ("mmin", "model.reconstructor.layers", "[4]", "[]", "must not be empty"),
    ("mmin", "model.reconstructor.dropout", "0.5", "1.0", "must be < 1"),
    ("mmin", "model.fuser.dim", "1", "0", "must be >= 1"),
]


@pytest.fixture(scope="module")
def mmin_recipe(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("recipes") / "mmin-one-stage.yaml"
    path.write_text(MMIN_ONE_STAGE)
    return path


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}:{c[1]}={c[3]}" for c in CASES])
def test_a_value_past_its_limit_is_refused_and_the_boundary_accepted(check_limit, mmin_recipe, case):
    name, path, good, bad, says = case
    recipe = mmin_recipe if name == "mmin" else RECIPES / f"{name}.yaml"
    check_limit(recipe, path, good, bad, says)


def test_the_shipped_mmin_recipe_checks_its_second_stage(validate):
    code, err = validate(RECIPES / "mmin.yaml", "stages.1.model.reconstructor.blocks=0")
    assert code == 2, err
    assert "must be >= 1, got 0" in err and "mmin" in err and "blocks" in err
