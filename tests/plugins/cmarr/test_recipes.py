"""CM-ARR's recipes run end to end, and no hidden value of an absent modality reaches a
prediction at evaluation."""
from __future__ import annotations

import pytest
import torch

from conftest import RECIPES, tiny_overrides
from mmtk.builder import Builder
from mmtk.data_loading import load_data
from mmtk.pipeline import Pipeline
from mmtk.testing.leaks import assert_absent_values_do_not_leak
from mmtk.trainer import Trainer, TrialSpec

ABLATIONS = ["cmarr_no_align.yaml", "cmarr_no_flow.yaml", "cmarr_no_refine.yaml"]
CONDITIONS = {"a", "t", "v", "at", "av", "tv", "atv", "mean"}
# tiny_overrides' 10,000 test samples only steady the metrics; these tests assert no metric
# value, and a leak (a slot reading an absent modality's values) shows in every sample
SMALL_TEST = "data.n_test=500"


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["cmarr.yaml", *ABLATIONS])
def test_recipe_runs(run_tiny, recipe):
    results = run_tiny(RECIPES / recipe, [SMALL_TEST], epochs=1)
    test = results["summary"]["test"]
    assert set(test) == CONDITIONS
    for cond, metrics in test.items():
        assert 0.0 <= metrics["uar"]["mean"] <= 1.0, f"{recipe}: UAR of {cond} out of range"


def test_ablations_change_only_what_they_ablate(prepare_tree):
    base = prepare_tree(RECIPES / "cmarr.yaml")
    no_align = prepare_tree(RECIPES / "cmarr_no_align.yaml")
    no_flow = prepare_tree(RECIPES / "cmarr_no_flow.yaml")
    no_refine = prepare_tree(RECIPES / "cmarr_no_refine.yaml")
    base, no_align, no_flow, no_refine = (r.last_stage for r in (base, no_align, no_flow, no_refine))
    assert no_align.model == base.model
    assert {k: v for k, v in no_align.losses.weights.items() if v} == \
        {k: v for k, v in base.losses.weights.items() if not k.startswith("aligner/")}
    assert no_flow.model.reconstructor.params["mode"] == "none"
    assert no_flow.losses == base.losses and no_flow.train == base.train
    assert no_refine.losses.weights["refiner/supcon"] == 0
    assert no_refine.model == base.model


def _trained_model(system, prepare_tree, tmp_path, recipe):
    tree = prepare_tree(RECIPES / recipe, tiny_overrides(2) + [SMALL_TEST])
    trainer = Trainer(tree, system.registry, device="cpu")
    trainer.run(TrialSpec(None, 0, tmp_path / "trial"))
    splits = load_data(trainer.builder, tree.data, None, 0)
    model: Pipeline = Builder(system.registry).model(
        tree.last_stage.model, splits.in_dims, splits.num_classes, 0)
    model.load_state_dict(torch.load(tmp_path / "trial" / "model.pt", weights_only=True))
    return model.eval(), splits


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["cmarr.yaml", "cmarr_no_flow.yaml"])
def test_absent_modality_values_never_reach_predictions(system, prepare_tree, tmp_path, recipe):
    model, splits = _trained_model(system, prepare_tree, tmp_path, recipe)
    batch = splits.test.batch(torch.arange(len(splits.test)))
    assert_absent_values_do_not_leak(model, batch, where=f"{recipe}, ")
