"""CM-ARR's parameters declare their limits: ``mmtk validate`` accepts a value at the boundary
and refuses the first one past it, naming the dotted path and the limit; limits that tie two
values together are the constructor's and are reported by ``mmtk run --dry-run``."""
from __future__ import annotations

from pathlib import Path

import pytest

from mmtk.cli import main

RECIPE = Path(__file__).resolve().parents[3] / "recipes" / "cmarr.yaml"

# (dotted path, a valid value at/next to the limit, the first invalid one, what the error says)
CASES = [
    ("model.fuser.heads", "1", "0", "must be >= 1"),
    ("model.fuser.heads", "1", "-4", "must be >= 1"),
    ("model.fuser.layers", "1", "0", "must be >= 1"),
    ("model.fuser.ffn_ratio", "1", "0", "must be >= 1"),
    ("model.fuser.dropout", "0.0", "1.0", "must be < 1"),
    ("model.aligner.tokens", "1", "0", "must be >= 1"),
    ("model.aligner.heads", "1", "0", "must be >= 1"),
    ("model.aligner.mlp_ratio", "1", "0", "must be >= 1"),
    ("model.aligner.dropout", "0.99", "1.0", "must be < 1"),
    ("model.aligner.temperature", "1e-4", "0", "must be > 0"),
    ("model.aligner.temperature", "10", ".inf", "must be a finite number"),
    ("model.aligner.min_temperature", "1e-4", "-0.01", "must be > 0"),
    ("model.aligner.scale", "1e-3", "0", "must be > 0"),
    ("model.aligner.scale", "null", "-1", "must be > 0"),   # null: 1 / latent_dim
    ("model.aligner.entropy_margin", "-1.0", ".nan", "must be a finite number"),
    ("model.aligner.entropy_margin", "null", ".inf", "must be a finite number"),
    ("model.aligner.min_pairs", "2", "1", "must be >= 2"),
    ("model.aligner.logvar_clamp", "0.5", "0", "must be > 0"),
    ("model.aligner.layer_scale", "0.0", "-1e-3", "must be >= 0"),
    ("model.aligner.layer_scale", "null", ".inf", "must be a finite number"),
    ("model.reconstructor.blocks", "1", "0", "must be >= 1"),
    ("model.reconstructor.hidden", "1", "0", "must be >= 1"),
    ("model.refiner.temperature", "1e-4", "0", "must be > 0"),
    ("model.refiner.base_temperature", "null", "0", "must be > 0"),
    ("model.refiner.projection_dim", "1", "0", "must be >= 1"),
    ("model.refiner.projection_dim", "null", "-1", "must be >= 1"),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}={c[2]}" for c in CASES])
def test_a_value_past_its_limit_is_refused_and_the_boundary_accepted(check_limit, case):
    check_limit(RECIPE, *case)


def test_heads_must_be_a_count_and_divide_latent_dim(validate, capsys):
    """heads=0 is no count (the recipe check refuses it); heads=3 is one, but building the
    model refuses it for latent_dim 64 (a limit tying two values, the constructor's)."""
    code, err = validate(RECIPE, "model.fuser.heads=0")
    assert code == 2 and "model.fuser.heads: must be >= 1" in err
    assert validate(RECIPE, "model.fuser.heads=3")[0] == 0
    code = main(["run", str(RECIPE), "--dry-run", "--set", "model.fuser.heads=3", "--set", "data.labels=240"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "model.fuser" in err and "not divisible by heads=3" in err
