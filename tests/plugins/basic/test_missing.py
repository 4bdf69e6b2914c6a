"""The basic plugin's missing-modality protocols: six_conditions, random_rate (CPM-Nets)."""
from __future__ import annotations

import pytest
import torch

from conftest import RECIPES, run_recipe, tiny_overrides
from mmtk.builder import Builder
from mmtk.plugins import load_plugins
from mmtk.protocols import training_masks

REG = load_plugins().registry
MODS = ("audio", "text", "visual")


def test_six_conditions_protocol():
    proto = Builder(REG).component("missing", {"type": "six_conditions"})
    plan = proto.eval_conditions(MODS, 5)
    assert [c.name for c in plan.conditions] == ["a", "t", "v", "at", "av", "tv", "atv"]
    assert plan.mean_over == ["a", "t", "v", "at", "av", "tv"]
    mask = proto.train_mask(torch.ones(3000, 3, dtype=torch.bool), torch.Generator().manual_seed(0), MODS)
    kept = mask.sum(1)
    assert kept.min() == 1 and kept.max() == 2            # never none, never all three
    patterns = torch.unique(mask, dim=0)
    assert len(patterns) == 6


def test_random_rate_fixes_one_training_mask_per_sample():
    """CPM-Nets: the training data is incomplete the same way every epoch (seeded by trial)."""
    build = lambda seed, **kw: Builder(REG).component(  # noqa: E731
        "missing", {"type": "random_rate", "rate": 0.4, **kw}, {"seed": seed})
    table = build(3).train_table(4000, MODS)
    assert table.shape == (4000, 3) and table.any(1).all()
    assert 0.33 < 1 - table.float().mean().item() < 0.42
    assert torch.equal(table, build(3).train_table(4000, MODS))
    assert not torch.equal(table, build(4).train_table(4000, MODS))
    assert build(3, resample=True).train_table(4000, MODS) is None
    # the loop's masks for a batch of rows are those rows of the table, whatever the generator
    masks = training_masks(build(3), 4000, MODS)
    rows = torch.tensor([7, 3999, 0])
    assert torch.equal(masks(rows, torch.ones(3, 3, dtype=torch.bool), torch.Generator()), table[rows])


@pytest.mark.slow
def test_the_loop_uses_the_fixed_table_unless_resampling(system, tmp_path, monkeypatch):
    from mmtk_basic.missing import RandomRate
    calls = []
    original = RandomRate.train_mask
    monkeypatch.setattr(RandomRate, "train_mask",
                        lambda self, *a: calls.append(1) or original(self, *a))
    for resample in (False, True):
        calls.clear()
        run_recipe(system, RECIPES / "baseline.yaml", tmp_path / str(resample), tiny_overrides(1) + [
            f"missing.train={{type: random_rate, rate: 0.3, resample: {str(resample).lower()}}}",
            "missing.eval={type: random_rate, rate: 0.3}"])
        assert bool(calls) == resample


def test_random_rate_keeps_one_and_matches_rate():
    proto = Builder(REG).component("missing", {"type": "random_rate", "rate": 0.4})
    mask = proto.eval_conditions(MODS, 5000).conditions[0].mask
    assert mask.any(1).all()
    assert 0.33 < 1 - mask.float().mean().item() < 0.42


def test_random_rate_counts_the_datas_own_missing_cells():
    present = torch.ones(3000, 3, dtype=torch.bool)
    present[:1000, 2] = False                              # the data already misses 1/9 of its cells
    proto = Builder(REG).component("missing", {"type": "random_rate", "rate": 0.5}, {"seed": 3})
    mask = proto.eval_conditions(MODS, 3000, present=present).conditions[0].mask
    assert (~mask).sum() == 4500 and not (mask & ~present).any() and mask.any(1).all()
    table = proto.train_table(3000, MODS, present=present)
    assert (~table).sum() == 4500 and not (table & ~present).any()
