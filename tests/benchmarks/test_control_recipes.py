"""The default benchmark and its negative control (#15): every utterance-level method recipe
trains on latent_views' label-scarce setting, and benchmarks/recipes/control/ puts each of them
on the synthetic control, changing nothing but the data."""
from __future__ import annotations

from pathlib import Path

import pytest

from mmtk.compare import _comparable
from mmtk.recipe import resolve

REPO = Path(__file__).resolve().parents[2]
CONTROL = REPO / "benchmarks" / "recipes" / "control"
FILES = sorted(CONTROL.glob("*.yaml"))
DEFAULT_DATA = {"type": "latent_views", "labels": 200, "unlabeled": 3000, "complete_fraction": 0.5,
                "shared_signal": 1.0}
CONTROL_DATA = {"type": "synthetic", "sample_seed": "trial", "n_test": 10000}
# not on the default: real data, frame sequences (latent_views has none), tuned on the control
OFF_DEFAULT = ("iemocap", "mosi", "handwritten", "-tuned")
FRAME_LEVEL = {"mmin", "if-mmin", "mmin-reference"}


def _shipped(system) -> list[str]:
    """The recipes this repository's plugins register (not those of other installed plugins)."""
    return sorted(n for n, e in system.recipes.items() if Path(e.path).resolve().is_relative_to(REPO / "plugins"))


def _data_block(tree: dict) -> dict:
    reserved = {"folds", "normalize", "val_fraction"}   # the core's data keys, not the dataset's
    return {k: v for k, v in tree["data"].items() if k not in reserved and v is not None}


def test_every_utterance_level_method_is_on_the_default_benchmark_and_has_a_control(system):
    on_default = [n for n in _shipped(system) if not any(tag in n for tag in OFF_DEFAULT) and n not in FRAME_LEVEL]
    assert {"cmarr", "modality-dropout", "mmin-utterance", "dicmor"} <= set(on_default)
    for name in on_default:
        assert _data_block(resolve(name, system).tree) == DEFAULT_DATA, name
    assert sorted(p.stem for p in FILES) == on_default


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_a_control_recipe_is_its_method_on_the_synthetic_data(system, path):
    control, method = _comparable(resolve(path, system).tree), _comparable(resolve(path.stem, system).tree)
    assert _data_block(control) == CONTROL_DATA
    assert {k: v for k, v in control.items() if k != "data"} == {k: v for k, v in method.items() if k != "data"}


def test_the_tuned_recipes_stay_on_the_control_they_were_tuned_on(system):
    tuned = [n for n in _shipped(system) if n.endswith("-tuned") and "handwritten" not in n]
    assert len(tuned) >= 11
    for name in tuned:
        assert _data_block(resolve(name, system).tree) == CONTROL_DATA, name
