"""The data contract, splitting, normalisation, the synthetic data and missing protocols."""
import pytest
import torch

from mmtk.batch import ModalityBatch, condition_code, parse_condition
from mmtk.data import Standardizer, TensorData, stratified_split
from mmtk.plugins import load_plugins
from mmtk.builder import Builder
from mmtk.errors import MmtkError
from mmtk.protocols import MissingProtocol, training_masks
from conftest import RECIPES, run_recipe, tiny_overrides

REG = load_plugins().registry
MODS = ("audio", "text", "visual")


def test_masked_zeroes_absent_values_even_nan():
    x = {"audio": torch.full((2, 3), float("nan")), "text": torch.ones(2, 4, 5), "visual": torch.ones(2, 2)}
    b = ModalityBatch(x, torch.ones(2, 3, dtype=torch.bool), MODS)
    keep = torch.tensor([[False, True, True], [True, False, True]])
    m = b.masked(keep)
    assert torch.equal(m.inputs["audio"][0], torch.zeros(3))
    assert torch.equal(m.inputs["text"][1], torch.zeros(4, 5))
    assert torch.equal(m.present, keep)
    data_absent = ModalityBatch(x, torch.tensor([[True, True, False], [True, True, True]]), MODS)
    assert not data_absent.masked(torch.ones(2, 3, dtype=torch.bool)).present[0, 2]


def test_condition_codes():
    assert condition_code(MODS, (True, True, False)) == "at"
    assert parse_condition("tv", MODS) == (False, True, True)
    with pytest.raises(ValueError, match="initials"):
        parse_condition("ax", MODS)
    views = ("fac", "fou", "kar")
    assert condition_code(views, (True, False, True)) == "fac+kar"
    assert parse_condition("fou", views) == (False, True, False)


def test_stratified_split_and_carving():
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    keep, out = stratified_split(labels, 0.2, seed=3)
    assert len(set(keep.tolist()) & set(out.tolist())) == 0 and len(keep) + len(out) == 100
    assert torch.bincount(labels[out]).tolist() == [10, 6, 4]
    again = stratified_split(labels, 0.2, seed=3)[1]
    assert torch.equal(out, again)


def test_standardizer_uses_present_rows_and_real_frames_only():
    x = torch.tensor([[[1.0], [3.0], [0.0]], [[5.0], [0.0], [0.0]], [[100.0], [100.0], [100.0]]])
    data = TensorData({"a": x}, torch.tensor([0, 1, 0]), ["x", "y", "z"],
                      present=torch.tensor([[True], [True], [False]]), lengths={"a": torch.tensor([2, 1, 3])})
    s = Standardizer.fit(data)
    assert s.mean["a"].item() == pytest.approx(3.0)     # frames 1, 3, 5 only
    out = s.apply(data).inputs["a"]
    assert out[0, 2].item() == 0.0 and out[2].abs().sum() == 0   # padding and absent stay zero


def test_synthetic_is_deterministic_and_informative():
    ds = Builder(REG).dataset({"type": "synthetic", "n_samples": 400})
    a, b = ds.load(), ds.load()
    assert torch.equal(a.train.inputs["text"], b.train.inputs["text"])
    assert a.in_dims == {"audio": 130, "text": 1024, "visual": 342}
    other = Builder(REG).dataset({"type": "synthetic", "n_samples": 400, "data_seed": 1}).load()
    assert not torch.equal(a.train.inputs["text"], other.train.inputs["text"])
    counts = torch.bincount(a.train.labels)
    assert counts.max() > counts.min() * 1.3            # imbalanced, so WAR != UAR
    seq = Builder(REG).dataset({"type": "synthetic", "n_samples": 40, "frames": {"audio": 6}}).load()
    assert seq.train.inputs["audio"].shape[1:] == (6, 130) and "audio" in seq.train.lengths


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


def test_training_masks_checks_a_protocols_table():
    class Broken(MissingProtocol):
        def train_table(self, n, modalities):
            return torch.ones(n, 2)
    with pytest.raises(MmtkError, match=r"train_table gave \(5, 2\)"):
        training_masks(Broken(), 5, MODS)


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
