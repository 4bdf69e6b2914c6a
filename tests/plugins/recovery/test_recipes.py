"""The recovery recipes run end to end; no hidden value of an absent modality reaches a
prediction; imder's evaluation gives the same predictions every time."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from conftest import RECIPES, tiny_overrides
from mmtk.builder import Builder
from mmtk.data_loading import load_data
from mmtk.pipeline import Pipeline
from mmtk.trainer import Trainer, TrialSpec

CONDITIONS = {"a", "t", "v", "at", "av", "tv", "atv", "mean"}
SMALL = {"dicmor.yaml": [], "imder.yaml": ["model.reconstructor.steps=5"]}


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
    g = torch.Generator().manual_seed(0)
    n, mods = batch.size, batch.modalities
    for keep in ([1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]):
        present = torch.tensor(keep, dtype=torch.bool).expand(n, -1)
        other = replace(batch, inputs={
            m: batch.inputs[m] if keep[i] else 50 * torch.randn(batch.inputs[m].shape, generator=g)
            for i, m in enumerate(mods)})
        with torch.no_grad():
            a = model(batch.masked(present)).logits
            b = model(other.masked(present)).logits
            again = model(batch.masked(present)).logits
        assert torch.equal(a, b), f"{recipe}, condition {keep}: hidden values of an absent modality leak"
        assert torch.equal(a, again), f"{recipe}, condition {keep}: evaluation is not repeatable"
    with torch.no_grad():   # the check has teeth: unmasked, the hidden values do change logits
        assert not torch.allclose(model(other).logits, model(batch).logits)



def test_without_normflows_dicmor_says_what_to_install(monkeypatch):
    """(That the plugin itself, and so imder_diffusion, loads without normflows is checked by
    tests/core/test_packaging.py: every plugin but cmarr stays "ok".)"""
    import sys

    from mmtk.errors import MmtkError
    from mmtk_recovery.dicmor import DiCMoRFlow
    monkeypatch.setitem(sys.modules, "normflows", None)
    with pytest.raises(MmtkError, match=r"'normflows'.*pip install 'mmtk\[cmarr\]'"):
        DiCMoRFlow(("audio", "text"), 8, 3)
