"""IF-MMIN: the CMD maths, the invariant cascade, the stage-2 losses and teacher guards, the recipe."""
from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import RECIPES
from mmtk.batch import ModalityBatch
from mmtk.errors import MmtkError
from mmtk.pipeline import State, Targets
from mmtk.recipe import read_recipe_tree
from mmtk.rundir import load_torch
from mmtk_baselines.if_mmin import (
    IFMMINImagination,
    IFMMINInvariant,
    InvariantCascadeAE,
    central_moment_discrepancy,
    pairwise_cmd,
)
from mmtk_baselines.mmin import LATENTS

MODS = ("audio", "text", "visual")
IN_DIMS = {"audio": 6, "text": 5, "visual": 4}
LATENT = 8


def numpy_cmd(x1: np.ndarray, x2: np.ndarray, moments: int) -> float:
    """CMD written out directly: norm of the mean difference + norms of central-moment differences."""
    m1, m2 = x1.mean(0), x2.mean(0)
    total = np.sqrt(((m1 - m2) ** 2).sum())
    for k in range(2, moments + 1):
        c1 = ((x1 - m1) ** k).mean(0)
        c2 = ((x2 - m2) ** k).mean(0)
        total += np.sqrt(((c1 - c2) ** 2).sum())
    return float(total)


@pytest.mark.parametrize("moments", [1, 2, 5])
def test_cmd_matches_a_direct_numpy_implementation(moments):
    rng = np.random.default_rng(0)
    x1 = rng.normal(size=(40, 7))
    x2 = rng.gamma(2.0, size=(25, 7))     # different sizes and shapes of distribution
    got = central_moment_discrepancy(torch.tensor(x1), torch.tensor(x2), moments).item()
    assert got == pytest.approx(numpy_cmd(x1, x2, moments), rel=1e-5)


def test_cmd_is_zero_for_identical_samples_and_symmetric():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(30, 5, generator=g)
    y = torch.randn(20, 5, generator=g) * 2 + 1
    assert central_moment_discrepancy(x, x.clone(), 5).item() == pytest.approx(0.0, abs=1e-7)
    # the same rows in another order are the same sample
    assert central_moment_discrepancy(x, x[torch.randperm(30, generator=g)], 5).item() == \
        pytest.approx(0.0, abs=1e-5)
    assert central_moment_discrepancy(x, y, 5).item() == pytest.approx(
        central_moment_discrepancy(y, x, 5).item(), rel=1e-6)


def test_cmd_grows_with_a_mean_shift_and_sees_higher_moments():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(200, 4, generator=g)
    shifts = [central_moment_discrepancy(x, x + s, 5).item() for s in (0.0, 0.5, 1.0, 2.0)]
    assert shifts == sorted(shifts) and shifts[0] < 1e-6
    # a pure shift moves only the first moment: CMD = |shift| * sqrt(D)
    assert shifts[2] == pytest.approx(2.0, rel=1e-4)
    # same mean, different spread: invisible to the mean, visible to the second moment
    centred = x - x.mean(0)
    assert central_moment_discrepancy(centred, 3 * centred, 1).item() == pytest.approx(0.0, abs=1e-5)
    assert central_moment_discrepancy(centred, 3 * centred, 2).item() > 1.0


def test_pairwise_cmd_averages_pairs_and_skips_samples_too_small():
    g = torch.Generator().manual_seed(3)
    a, b, c = (torch.randn(10, 3, generator=g) + i for i in range(3))
    expected = torch.stack([central_moment_discrepancy(p, q, 3) for p, q in combinations([a, b, c], 2)]).mean()
    torch.testing.assert_close(pairwise_cmd([a, b, c], 3), expected)
    torch.testing.assert_close(pairwise_cmd([a, b[:1], c], 3), central_moment_discrepancy(a, c, 3))
    assert pairwise_cmd([a, b[:1], c[:0]], 3) is None


def test_cmd_gradient_is_finite_even_where_the_samples_agree():
    x = torch.randn(12, 3, requires_grad=True)
    central_moment_discrepancy(x, x.detach().clone(), 5).backward()
    assert torch.isfinite(x.grad).all()


def test_invariant_fuser_concatenates_specific_and_invariant_and_counts_represented_rows():
    torch.manual_seed(0)
    fuser = IFMMINInvariant(MODS, LATENT, depth=2, moments=3)
    reps = {m: torch.randn(6, LATENT) for m in MODS}
    have = torch.tensor([[1, 1, 0], [1, 1, 0], [1, 0, 1], [0, 1, 1], [1, 1, 1], [1, 1, 0]]).bool()
    state = State(reps=reps, present=have, modalities=MODS, training=True)
    out, losses = fuser(state)
    inv = [fuser.shared(reps[m]) for m in MODS]
    torch.testing.assert_close(out.fused, torch.cat([*reps.values(), *inv], -1))
    assert fuser.out_dim == 2 * 3 * LATENT
    expected = pairwise_cmd([inv[i][have[:, i]] for i in range(3)], 3)
    torch.testing.assert_close(losses["cmd"], expected)
    losses["cmd"].backward()       # the loss trains the shared encoder, and needs no labels
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in fuser.shared.parameters())
    state.training = False
    assert fuser(state)[1] == {}


def test_cascade_adds_the_invariant_features_to_every_block_input():
    torch.manual_seed(0)
    cascade = InvariantCascadeAE(12, [10, 4], blocks=3)
    x, inv = torch.randn(5, 12), torch.randn(5, 12)
    out, latents = cascade(x, inv)
    block_out, expected_latents = x, []
    for block in cascade.blocks:   # the reference: block k reads (output of block k-1) + invariant
        latent = block.encoder(block_out + inv)
        block_out = block.decoder(latent)
        expected_latents.append(latent)
    torch.testing.assert_close(out, cascade.transition(block_out))
    torch.testing.assert_close(latents, torch.cat(expected_latents, -1))
    assert not torch.allclose(cascade(x, torch.zeros_like(inv))[0], out)


def _encoder_builder():
    from mmtk.builder import Builder
    from mmtk.plugins import load_plugins
    builder = Builder(load_plugins().registry)
    return lambda m: builder.component("encoder", {"type": "mlp"}, {"in_dim": IN_DIMS[m], "latent_dim": LATENT,
                                                                    "modality": m, "modalities": MODS})


def _slot(**kw) -> IFMMINImagination:
    kw.setdefault("pretrained_teacher", False)
    return IFMMINImagination(MODS, LATENT, _encoder_builder(), layers=[16, 4], blocks=2, **kw)


def _truth(n: int = 6, seed: int = 0, available: torch.Tensor | None = None) -> ModalityBatch:
    g = torch.Generator().manual_seed(seed)
    inputs = {m: torch.randn(n, IN_DIMS[m], generator=g) for m in MODS}
    present = torch.ones(n, 3, dtype=torch.bool) if available is None else available
    return ModalityBatch(inputs, present, MODS, torch.full((n,), -1), None, {})


def _state(slot, present, truth) -> State:
    masked = truth.masked(present)
    reps = {m: torch.randn(truth.size, LATENT) for m in MODS}
    return State(reps=reps, present=masked.present, modalities=MODS, training=True,
                 targets=Targets(truth, None))  # type: ignore[arg-type]


def test_stage_two_losses_are_the_teacher_targets_and_need_no_labels():
    torch.manual_seed(0)
    slot = _slot()
    present = torch.tensor([[1, 0, 0], [0, 1, 1], [1, 1, 0], [0, 0, 1], [1, 0, 1], [0, 1, 0]]).bool()
    truth = _truth()                 # labels are all -1 (unlabelled): nothing here reads them
    state = _state(slot, present, truth)
    new, losses = slot(state)
    assert set(losses) == {"mse", "invariant"}
    with torch.no_grad():
        mse_target = torch.cat([slot.teacher[m](truth.inputs[m] * (~present[:, i:i + 1]))
                                for i, m in enumerate(MODS)], -1)
        inv_target = torch.cat([slot.teacher_invariant(slot.teacher[m](truth.inputs[m])) for m in MODS], -1)
    imagined = new.extras["mmin_imagined"]
    invariant = torch.cat([slot.invariant(state.reps[m]) for m in MODS], -1)
    torch.testing.assert_close(losses["mse"], ((imagined - mse_target) ** 2).mean())
    torch.testing.assert_close(losses["invariant"], ((invariant - inv_target) ** 2).mean())
    assert new.extras[LATENTS].shape == (6, 2 * 4) and new.represented.all()
    for i, m in enumerate(MODS):     # absent modalities become their imagined part
        chunk = imagined[:, i * LATENT:(i + 1) * LATENT]
        torch.testing.assert_close(new.reps[m][~present[:, i]], chunk[~present[:, i]])
        torch.testing.assert_close(new.reps[m][present[:, i]], state.reps[m][present[:, i]])


def test_invariant_loss_leaves_out_modalities_the_data_lacks():
    torch.manual_seed(0)
    slot = _slot()
    available = torch.tensor([[1, 1, 0], [1, 0, 1]]).bool()
    truth = _truth(2, available=available)
    state = _state(slot, available, truth)
    _, losses = slot(state)
    invariant = torch.cat([slot.invariant(state.reps[m]) for m in MODS], -1)
    with torch.no_grad():
        target = torch.cat([slot.teacher_invariant(slot.teacher[m](truth.inputs[m])) for m in MODS], -1)
    weight = available.repeat_interleave(LATENT, 1)
    torch.testing.assert_close(losses["invariant"], ((invariant - target) ** 2)[weight].mean())


def test_teacher_never_trains_and_must_be_loaded_whole():
    slot = _slot(pretrained_teacher=True)
    slot.train()
    assert not any(p.requires_grad for p in [*slot.teacher.parameters(), *slot.teacher_invariant.parameters()])
    assert not slot.teacher_invariant.training and slot.cascade.training
    present = torch.tensor([[1, 0, 0]]).bool()
    with pytest.raises(MmtkError, match="fuser.shared"):
        slot(_state(slot, present, _truth(1)))
    donor = _slot()
    teacher = {f"teacher.{k}": v for k, v in donor.teacher.state_dict().items()}
    slot.load_state_dict(teacher, strict=False)
    with pytest.raises(MmtkError, match="never loaded"):   # the invariant teacher is still missing
        slot(_state(slot, present, _truth(1)))
    slot.load_state_dict({f"teacher_invariant.{k}": v for k, v in donor.teacher_invariant.state_dict().items()},
                         strict=False)
    slot(_state(slot, present, _truth(1)))
    with pytest.raises(MmtkError, match="depth"):
        _slot(pretrained_teacher=True).load_state_dict(
            {"teacher_invariant.net.0.weight": donor.teacher_invariant.net[0].weight}, strict=False)


def test_evaluation_needs_no_targets():
    slot = _slot()
    slot.eval()
    state = State(reps={m: torch.randn(2, LATENT) for m in MODS}, present=torch.tensor([[1, 0, 0], [0, 0, 1]]).bool(),
                  modalities=MODS, training=False)
    new, losses = slot(state)
    assert losses == {} and new.extras[LATENTS].shape == (2, 8)


def test_recipe_stages(prepare_tree):
    tree = prepare_tree(RECIPES / "if-mmin.yaml")
    pre, main = tree.stages
    assert pre.missing.train.type == "none" and pre.model.fuser.type == "if_mmin_invariant"
    assert pre.losses.weights == {"fuser/cmd": 1.0}
    assert main.missing.train.type == "six_conditions" and main.model.reconstructor.type == "if_mmin_imagination"
    assert main.init_from.stage == "pretrain"
    assert main.init_from.map["fuser.shared."] == ["reconstructor.invariant.", "reconstructor.teacher_invariant."]
    assert main.freeze == ["reconstructor.teacher", "reconstructor.teacher_invariant"]
    assert main.losses.weights == {"reconstructor/mse": 1.0, "reconstructor/invariant": 100.0}
    assert tree.last_stage.missing.eval.type == "six_conditions"


def test_iemocap_recipe_validates(prepare_tree, tmp_path, monkeypatch):
    monkeypatch.setenv("MMTK_DATA", str(tmp_path))
    tree = prepare_tree(RECIPES / "if-mmin-iemocap.yaml")
    assert tree.data.dataset.type == "mmin_layout" and [s.train.epochs for s in tree.stages] == [20, 40]


def tiny_tree(system) -> dict:
    tree = read_recipe_tree(RECIPES / "if-mmin.yaml", {n: e.path for n, e in system.recipes.items()})
    tree["data"]["frames"] = {"audio": 4, "text": 4, "visual": 4}
    tree["model"]["latent_dim"] = 16
    for stage in tree["stages"]:
        stage["train"]["epochs"] = 2
    tree["stages"][1]["model"]["reconstructor"]["layers"] = [32, 8]
    tree["stages"][1]["model"]["fuser"]["dim"] = 5 * 8
    return tree


@pytest.mark.slow
def test_if_mmin_two_stages_end_to_end(system, run_tiny):
    results = run_tiny(tiny_tree(system), ["data.n_test=500"])   # runs end to end: no score asserted
    trial = Path(results["directory"]) / "trials" / "seed0"
    test = results["trials"]["seed0"]["test"]
    assert {"a", "t", "v", "at", "av", "tv", "mean"} <= set(test)
    pretrain, after = load_torch(trial / "stage-pretrain.pt"), load_torch(trial / "stage-if-mmin.pt")
    shared = {k[len("fuser.shared."):]: v for k, v in pretrain.items() if k.startswith("fuser.shared.")}
    assert shared
    for k, v in shared.items():    # the invariant teacher is stage 1's shared encoder, bit for bit
        assert torch.equal(after["reconstructor.teacher_invariant." + k], v)
    assert any(not torch.equal(after["reconstructor.invariant." + k], v) for k, v in shared.items())
    assert bool(after["reconstructor.teacher_loaded"]) and bool(after["reconstructor.teacher_invariant_loaded"])
    assert "loss/fuser/cmd" in (trial / "history-pretrain.json").read_text()
    assert "loss/reconstructor/invariant" in (trial / "history-if-mmin.json").read_text()
