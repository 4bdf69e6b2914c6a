"""The recovery recipes run end to end; no hidden value of an absent modality reaches a
prediction; imder's evaluation gives the same predictions every time."""
from __future__ import annotations

import pytest
import torch

from conftest import RECIPES, tiny_overrides
from mmtk.builder import Builder
from mmtk.data_loading import load_data
from mmtk.pipeline import Pipeline
from mmtk.testing.leaks import assert_absent_values_do_not_leak
from mmtk.trainer import Trainer, TrialSpec

CONDITIONS = {"a", "t", "v", "at", "av", "tv", "atv", "mean"}
# tiny_overrides' 10,000 test samples only steady the metrics; these tests assert no metric
# value, and a leak (a slot reading an absent modality's values) shows in every sample
SMALL = {"dicmor.yaml": ["data.n_test=500"], "imder.yaml": ["model.reconstructor.steps=5", "data.n_test=500"]}


@pytest.mark.slow
@pytest.mark.parametrize("recipe", sorted(SMALL))
def test_recipe_runs(run_tiny, recipe):
    results = run_tiny(RECIPES / recipe, SMALL[recipe], epochs=1)
    test = results["summary"]["test"]
    assert set(test) == CONDITIONS
    for cond, metrics in test.items():
        assert 0.0 <= metrics["uar"]["mean"] <= 1.0, f"{recipe}: UAR of {cond} out of range"


def trained_model(system, prepare_tree, tmp_path, recipe):
    tree = prepare_tree(RECIPES / recipe, tiny_overrides(1) + SMALL[recipe])
    trainer = Trainer(tree, system.registry, device="cpu")
    trainer.run(TrialSpec(None, 0, tmp_path / "trial"))
    splits = load_data(trainer.builder, tree.data, None, 0)
    model: Pipeline = Builder(system.registry).model(tree.last_stage.model, splits.in_dims,
                                                     splits.num_classes, 0)
    model.load_state_dict(torch.load(tmp_path / "trial" / "model.pt", weights_only=True))
    return model.eval(), splits


@pytest.mark.slow
@pytest.mark.parametrize("recipe", sorted(SMALL))
def test_absent_modality_values_never_reach_predictions(system, prepare_tree, tmp_path, recipe):
    model, splits = trained_model(system, prepare_tree, tmp_path, recipe)
    batch = splits.test.batch(torch.arange(len(splits.test)))
    assert_absent_values_do_not_leak(model, batch, where=f"{recipe}, ")



def test_without_normflows_dicmor_says_what_to_install(monkeypatch):
    """(That the plugin itself, and so imder_diffusion, loads without normflows is checked by
    tests/core/test_packaging.py: every plugin but cmarr stays "ok".)"""
    import sys

    from mmtk.errors import MmtkError
    from mmtk_recovery.dicmor import DiCMoRFlow
    monkeypatch.setitem(sys.modules, "normflows", None)
    with pytest.raises(MmtkError, match=r"'normflows'.*pip install 'mmtk\[cmarr\]'"):
        DiCMoRFlow(("audio", "text"), 8, 3)
