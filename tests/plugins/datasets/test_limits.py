"""The dataset readers' parameters declare their limits: ``mmtk validate`` accepts a value at
the boundary and refuses the first one past it, naming the dotted path and the limit.
(The synthetic dataset's limits are tested with the basic plugin.)"""
from __future__ import annotations

from pathlib import Path

import pytest

RECIPES = Path(__file__).resolve().parents[3] / "recipes"
MODALITIES = ("audio", "text", "visual")

# (reader, dotted path, a valid value at/next to the limit, the first invalid one, what the error says)
CASES = [
    ("arrays", "data.test_fraction", "0.99", "1.0", "must be < 1"),
    ("arrays", "data.test_fraction", "0.01", "0.0", "must be > 0"),
    ("arrays", "data.split_seed", "0", "-1", "must be >= 0"),
    ("arrays", "data.split_seed", "null", "-7", "must be >= 0"),   # null: the trial seed
    ("arrays", "data.max_frames", "1", "0", "must be >= 1"),
    ("arrays", "data.dims", "{audio: 4}", "{audio: 0}", "'audio': must be >= 1"),
    ("handwritten", "data.test_fraction", "0.99", "1.0", "must be < 1"),
    ("handwritten", "data.test_fraction", "0.01", "0", "must be > 0"),
    ("handwritten", "data.missing_rate", "0.0", "-0.1", "must be >= 0"),
    ("handwritten", "data.missing_rate", "0.99", "1.0", "must be < 1"),
    ("handwritten", "data.split_seed", "0", "-1", "must be >= 0"),
    ("handwritten", "data.mask_seed", "0", "-1", "must be >= 0"),
    ("mmin_layout", "data.max_frames", "1", "0", "must be >= 1"),
    ("mmin_layout", "data.dims", "{audio: 5}", "{audio: -5}", "'audio': must be >= 1"),
    ("mmsa", "data.max_frames", "1", "-1", "must be >= 1"),
]


@pytest.fixture
def recipe_for(fx, recipe, tmp_path):
    """``recipe_for(reader)`` -> (a recipe reading a small fixture of it, --set settings it needs)."""
    def make(reader: str) -> tuple[Path, tuple[str, ...]]:
        if reader == "handwritten":
            fx.mfeat(tmp_path / "mfeat")
            return RECIPES / "handwritten.yaml", (f"data.data_dir={tmp_path / 'mfeat'}",)
        if reader == "mmsa":
            fx.mmsa(tmp_path / "mmsa.pkl")
            data = {"type": "mmsa", "root": str(tmp_path / "mmsa.pkl")}
        else:
            getattr(fx, {"arrays": "arrays", "mmin_layout": "mmin"}[reader])(tmp_path / "data")
            data = {"type": reader, "root": str(tmp_path / "data")}
        return recipe(tmp_path / f"{reader}.yaml", data, MODALITIES), ()
    return make


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}:{c[1]}={c[3]}" for c in CASES])
def test_a_value_past_its_limit_is_refused_and_the_boundary_accepted(check_limit, recipe_for, case):
    reader, path, good, bad, says = case
    recipe, setup = recipe_for(reader)
    check_limit(recipe, path, good, bad, says, setup)
