"""The batches of an epoch (mmtk.data_loading): how unlabelled training samples enter them
(``train.unlabeled``), and what in a model can learn from them (Pipeline.unlabeled_users)."""
from __future__ import annotations

import pytest
import torch

from conftest import RECIPES, fails_with
from mmtk.builder import Builder
from mmtk.data import TensorData
from mmtk.data_loading import EpochPlan, batch_indices, resolve_unlabeled

MODS = ("audio", "text", "visual")
DIMS = {"audio": 5, "text": 4, "visual": 3}


def _data(n: int, unlabelled: int) -> TensorData:
    labels = torch.arange(n) % 3
    labels[n - unlabelled:] = -1
    return TensorData({"a": torch.randn(n, 2)}, labels, [f"s{i}" for i in range(n)])


def _plan(data: TensorData, mode) -> EpochPlan:
    return EpochPlan.of(data.labeled, mode)


@pytest.mark.parametrize("mode", ["mixed", "skip", 7])
def test_without_a_pool_every_mode_draws_the_batches_of_today(mode):
    data = _data(50, 0)
    got = _plan(data, mode).batches(16, data, False, torch.Generator().manual_seed(3))
    order = torch.randperm(50, generator=torch.Generator().manual_seed(3))
    want = batch_indices(order, 16, data, False, torch.Generator())
    assert [b.tolist() for b in got] == [b.tolist() for b in want]


def test_mixed_shuffles_the_pool_in_and_skip_leaves_it_out():
    data = _data(60, 20)
    mixed = _plan(data, "mixed").batches(16, data, False, torch.Generator().manual_seed(0))
    assert sorted(torch.cat(mixed).tolist()) == list(range(60)) and len(mixed) == 4
    skip = _plan(data, "skip")
    batches = skip.batches(16, data, False, torch.Generator().manual_seed(0))
    assert sorted(torch.cat(batches).tolist()) == list(range(40))   # each labelled sample once
    assert len(batches) == skip.steps(16) == 3 and skip.per_step() == 0


def test_an_integer_joins_that_many_unlabelled_samples_to_every_labelled_batch():
    data = _data(60, 20)
    plan = _plan(data, 8)
    batches = plan.batches(16, data, False, torch.Generator().manual_seed(0))
    assert len(batches) == plan.steps(16) == 3 and plan.per_step() == 8
    labelled = [b[b < 40] for b in batches]
    unlabelled = [b[b >= 40] for b in batches]
    assert [len(b) for b in labelled] == [16, 16, 8] and [len(b) for b in unlabelled] == [8, 8, 8]
    assert sorted(torch.cat(labelled).tolist()) == list(range(40))
    # the pool is drawn in its own shuffled order: no repeat before all 20 were shown once
    drawn = torch.cat(unlabelled).tolist()
    assert len(set(drawn[:20])) == 20 and set(drawn) <= set(range(40, 60))
    # a step never asks for more than the pool holds (no sample twice in one batch)
    big = _plan(data, 50)
    assert big.per_step() == 20
    for b in big.batches(16, data, False, torch.Generator().manual_seed(1)):
        assert len(set(b.tolist())) == len(b) and int((b >= 40).sum()) == 20


def test_the_same_generator_state_draws_the_same_batches():
    """What an exact resume relies on: every draw comes from the stage's shuffle generator."""
    data = _data(60, 20)
    g = torch.Generator().manual_seed(5)
    _plan(data, 8).batches(16, data, False, g)
    state = g.get_state()
    first = _plan(data, 8).batches(16, data, False, g)
    again = _plan(data, 8).batches(16, data, False, torch.Generator().set_state(state))
    assert [b.tolist() for b in first] == [b.tolist() for b in again]


def test_auto_leaves_the_pool_out_only_when_nothing_learns_from_it():
    mode, note = resolve_unlabeled("auto", [], 3000, 180)
    assert mode == "skip" and "3000 unlabelled" in note and "nothing in this model learns" in note
    mode, note = resolve_unlabeled("auto", ["reconstructor/recon"], 3000, 180)
    assert mode == "mixed" and "used by reconstructor/recon" in note and "180 labelled" in note
    assert resolve_unlabeled("auto", [], 0, 180) == ("skip", None)   # no pool: nothing to say
    assert resolve_unlabeled("mixed", [], 3000, 180)[0] == "mixed"   # an explicit choice wins
    mode, note = resolve_unlabeled(64, ["aligner/w2_nce"], 3000, 180)
    assert mode == 64 and "every step adds 64 of the 3000" in note
    # a part fitted on the whole split before training (an input imputer) is named, batches or not
    mode, note = resolve_unlabeled("auto", [], 3000, 180, "the reconstructor (an input imputer)")
    assert mode == "skip" and "no training step learns from them" in note
    assert "the reconstructor (an input imputer) was fitted on the whole training split" in note


def _model(system, reconstructor=None, encoder="mlp"):
    blocks = {"encoders": {m: {"type": encoder} for m in MODS}, "fuser": {"type": "concat"},
              "head": {"type": "mlp"}}
    if reconstructor:
        blocks["reconstructor"] = {"type": reconstructor}
    return Builder(system.registry).model(blocks, DIMS, num_classes=3, seed=0)


def test_what_in_a_model_learns_from_unlabelled_samples(system):
    assert _model(system).unlabeled_users({}) == []                       # task loss only
    assert _model(system, "ae_impute").unlabeled_users({}) == ["reconstructor/recon"]
    # a label-free loss switched off learns nothing from them
    assert _model(system, "ae_impute").unlabeled_users({"reconstructor/recon": 0.0}) == []
    # an input imputer's fitted buffers saw the whole split before training: not a batch user
    assert _model(system, "ridge_impute").unlabeled_users({}) == []
    # running statistics do (mean imputation's means, a BatchNorm's)
    assert _model(system, "mean_impute").unlabeled_users({}) == ["reconstructor buffers"]
    model = _model(system)
    model.encoders["audio"].add_module("norm", torch.nn.BatchNorm1d(4))
    assert model.unlabeled_users({}) == ["encoders.audio buffers"]


@pytest.mark.parametrize("mode", ["skip", 4])
def test_epoch_steps_runs_passes_back_to_back(mode):
    data = _data(60, 20)
    plan = EpochPlan.of(data.labeled, mode, epoch_steps=7)
    batches = plan.batches(16, data, False, torch.Generator().manual_seed(0))
    assert plan.steps(16) == 7 and len(batches) == 7
    labelled = [b[b < 40].tolist() for b in batches]
    assert [len(b) for b in labelled] == [16, 16, 8] * 2 + [16]      # whole passes, reshuffled
    assert sorted(sum(labelled[:3], [])) == sorted(sum(labelled[3:6], [])) == list(range(40))
    assert labelled[:3] != labelled[3:6]
    assert all(int((b >= 40).sum()) == plan.per_step() for b in batches)


@pytest.mark.parametrize("override, says", [
    ("train.unlabeled=sometimes", "expected int (>= 1) | 'auto' | 'mixed' | 'skip'"),
    ("train.unlabeled=0", "train.unlabeled: must be >= 1"),
    ("train.epoch_steps=0", "train.epoch_steps: must be >= 1"),
    ("train.bucket_by_length=maybe", "expected bool | 'auto'"),
])
def test_bad_batching_settings_are_named(capsys, override, says):
    fails_with(capsys, ["validate", str(RECIPES / "baseline.yaml"), "--set", override], says,
               f"given by --set {override}")


def test_the_test_split_fingerprint_is_taken_before_normalisation(system):
    """Seeds that share a test set share its fingerprint although each fits its own scaler on
    its own training split; a seed-drawn test set gets its own (mmtk compare's test choice)."""
    from mmtk.data_loading import load_data
    from mmtk.recipe import resolve

    builder = Builder(system.registry)

    def fingerprints(sample_seed: str) -> list[str]:
        tree = resolve(RECIPES / "baseline.yaml", system,
                       [f"data={{type: synthetic, n_samples: 200, n_test: 100, sample_seed: {sample_seed}}}"])
        out = []
        for seed in (0, 1):
            splits = load_data(builder, tree.data, None, seed)
            assert splits.info["test_fingerprint"] != splits.test.fingerprint()   # normalised since
            out.append(splits.info["test_fingerprint"])
        return out

    shared, own = fingerprints("0"), fingerprints("trial")
    assert shared[0] == shared[1] and own[0] != own[1]
