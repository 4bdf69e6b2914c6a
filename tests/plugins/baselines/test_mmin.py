"""MMIN: cascade residual AE, the imagination slot's targets, teacher loading and freezing."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import RECIPES
from mmtk.batch import ModalityBatch
from mmtk.errors import MmtkError
from mmtk.pipeline import State, Targets
from mmtk.recipe import read_recipe_tree
from mmtk.rundir import load_torch
from mmtk_baselines.autoencoders import CascadeResidualAE
from mmtk_baselines.mmin import LATENTS, MMINImagination, MMINLatents

MODS = ("audio", "text", "visual")
IN_DIMS = {"audio": 6, "text": 5, "visual": 4}
LATENT = 8


def test_cascade_shapes_and_residual_sum():
    torch.manual_seed(0)
    ae = CascadeResidualAE(12, [10, 6, 3], blocks=4)
    x = torch.randn(5, 12)
    out, latents = ae(x)
    assert out.shape == (5, 12) and latents.shape == (5, 4 * 3)
    # with every decoder silenced, each block sees the unchanged input and the result is
    # the transition of the input: block k's input is x + outputs of blocks < k
    with torch.no_grad():
        for block in ae.blocks:
            block.decoder[-1].weight.zero_()
            block.decoder[-1].bias.zero_()
        out, latents = ae(x)
        torch.testing.assert_close(out, ae.transition(x))
        for k, block in enumerate(ae.blocks):
            torch.testing.assert_close(latents[:, 3 * k:3 * k + 3], block.encoder(x))


def _encoder_builder(teacher=None):
    """What the core's Builder passes as ``build_encoder``: fresh encoders from blocks."""
    from mmtk.builder import Builder
    from mmtk.plugins import load_plugins
    blocks = teacher or {m: {"type": "mlp"} for m in MODS}
    builder = Builder(load_plugins().registry)
    return lambda m: builder.component("encoder", blocks[m], {"in_dim": IN_DIMS[m], "latent_dim": LATENT,
                                                              "modality": m, "modalities": MODS})


def _slot(teacher=None, **kw) -> MMINImagination:
    kw.setdefault("pretrained_teacher", False)
    return MMINImagination(MODS, LATENT, _encoder_builder(teacher), layers=[16, 8, 4], blocks=2, **kw)


def _state(present: torch.Tensor, truth: ModalityBatch, training: bool = True) -> State:
    masked = truth.masked(present)
    reps = {m: torch.randn(truth.size, LATENT) for m in MODS}
    return State(reps=reps, present=masked.present, modalities=MODS, training=training,
                 targets=Targets(truth, None) if training else None)  # type: ignore[arg-type]


def _truth(n: int = 6, seed: int = 0) -> ModalityBatch:
    g = torch.Generator().manual_seed(seed)
    inputs = {m: torch.randn(n, 3, IN_DIMS[m], generator=g) for m in MODS}
    lengths = {m: torch.randint(1, 4, (n,), generator=g) for m in MODS}
    return ModalityBatch(inputs, torch.ones(n, 3, dtype=torch.bool), MODS,
                         torch.zeros(n, dtype=torch.long), None, lengths)


def test_forward_target_is_teacher_on_missing_only_inputs():
    torch.manual_seed(0)
    slot = _slot()
    slot.train()
    truth = _truth()
    present = torch.tensor([[1, 0, 0], [0, 1, 1], [1, 1, 0], [0, 0, 1], [1, 0, 1], [0, 1, 0]]).bool()
    state = _state(present, truth)
    new, losses = slot(state)
    assert set(losses) == {"mse", "cycle"}
    # the reference's target: available modalities zeroed, missing ones kept, through the teacher
    expected = []
    with torch.no_grad():
        for i, m in enumerate(MODS):
            keep = (~present[:, i]).view(-1, 1, 1)
            expected.append(slot.teacher[m](truth.inputs[m] * keep, truth.lengths[m]))
    imagined = new.extras["mmin_imagined"]
    torch.testing.assert_close(losses["mse"], ((imagined - torch.cat(expected, -1)) ** 2).mean())
    observed = torch.cat([state.reps[m] for m in MODS], -1)
    torch.testing.assert_close(losses["cycle"], ((slot.backward_ae(imagined)[0] - observed) ** 2).mean())
    assert new.extras[LATENTS].shape == (6, 2 * 4)


def test_target_ignores_true_values_of_available_modalities():
    torch.manual_seed(0)
    slot = _slot()
    present = torch.tensor([[1, 0, 0], [0, 1, 1], [1, 1, 0]]).bool()
    truth = _truth(3)
    state = _state(present, truth)
    changed = _truth(3, seed=1)
    # replace the true values of every available cell; the target must not move
    inputs = {m: torch.where(present[:, i].view(-1, 1, 1), changed.inputs[m], truth.inputs[m])
              for i, m in enumerate(MODS)}
    other = ModalityBatch(inputs, truth.present, MODS, truth.labels, None, truth.lengths)
    state2 = State(reps=state.reps, present=state.present, modalities=MODS, training=True,
                   targets=Targets(other, None))  # type: ignore[arg-type]
    a = slot._teacher_target(state)[0]
    b = slot._teacher_target(state2)[0]
    torch.testing.assert_close(a, b)


def test_evaluation_needs_no_targets_and_emits_no_loss():
    slot = _slot()
    slot.eval()
    state = _state(torch.tensor([[1, 0, 0], [0, 0, 1]]).bool(), _truth(2), training=False)
    new, losses = slot(state)
    assert losses == {} and new.extras[LATENTS].shape == (2, 8)


def test_teacher_stays_in_eval_mode():
    slot = _slot(teacher={m: {"type": "textcnn", "dropout": 0.5} for m in MODS})
    slot.train()
    assert slot.forward_ae.training and not any(m.training for m in slot.teacher.modules())


def test_untrained_teacher_is_refused_in_training():
    slot = _slot(pretrained_teacher=True)
    slot.train()
    with pytest.raises(MmtkError, match="init_from"):
        slot(_state(torch.tensor([[1, 0, 0]]).bool(), _truth(1)))


def test_teacher_load_is_detected_and_partial_load_refused():
    slot = _slot(pretrained_teacher=True)
    donor = _slot()
    full = {f"teacher.{k}": v for k, v in donor.teacher.state_dict().items()}
    slot.load_state_dict(full, strict=False)
    assert bool(slot.teacher_loaded)
    for k, v in donor.teacher.state_dict().items():
        assert torch.equal(slot.teacher.state_dict()[k], v)
    partial = dict(list(full.items())[:-1])
    with pytest.raises(MmtkError, match="same\\s+encoder blocks"):
        _slot(pretrained_teacher=True).load_state_dict(partial, strict=False)


def test_teacher_is_a_copy_of_the_model_encoders_and_layers_are_checked():
    slot = _slot(teacher={m: {"type": "textcnn"} for m in MODS})
    assert all(type(slot.teacher[m]).__name__ == "TextCNNEncoder" for m in MODS)
    with pytest.raises(MmtkError, match="layers"):
        MMINImagination(MODS, LATENT, _encoder_builder(), layers=[])


def test_latents_fuser_errors():
    fuser = MMINLatents(dim=6)
    state = State(reps={}, present=torch.ones(2, 3, dtype=torch.bool), modalities=MODS, training=False)
    with pytest.raises(MmtkError, match="mmin_imagination"):
        fuser(state)
    state.extras[LATENTS] = torch.zeros(2, 5)
    with pytest.raises(MmtkError, match="model.fuser.dim"):
        fuser(state)
    state.extras[LATENTS] = torch.ones(2, 6)
    assert torch.equal(fuser(state)[0].fused, torch.ones(2, 6))


def tiny_mmin_tree(system) -> dict:
    tree = read_recipe_tree(RECIPES / "mmin.yaml", {n: e.path for n, e in system.recipes.items()})
    tree["data"]["frames"] = {"audio": 4, "text": 4, "visual": 4}
    for stage in tree["stages"]:
        stage["train"]["epochs"] = 2
    return tree


@pytest.mark.slow
def test_mmin_two_stages_end_to_end_with_frozen_teacher(system, run_tiny):
    results = run_tiny(tiny_mmin_tree(system), ["data.n_test=500"])   # runs end to end: no score asserted
    trial = Path(results["directory"]) / "trials" / "seed0"
    test = results["trials"]["seed0"]["test"]
    assert {"a", "t", "v", "at", "av", "tv", "mean"} <= set(test)
    assert all(0.0 <= c["uar"] <= 1.0 for c in test.values())
    pretrain = load_torch(trial / "stage-pretrain.pt")
    after = load_torch(trial / "stage-mmin.pt")
    enc = {k[len("encoders."):]: v for k, v in pretrain.items() if k.startswith("encoders.")}
    teacher = {k[len("reconstructor.teacher."):]: v for k, v in after.items()
               if k.startswith("reconstructor.teacher.")}
    assert enc and set(enc) == set(teacher)
    for k in enc:   # the teacher is stage 1's encoders, bit for bit, after stage 2 training
        assert torch.equal(enc[k], teacher[k]), f"teacher tensor {k} changed"
    # ... while the student encoders, initialised from the same weights, did train
    assert any(not torch.equal(enc[k], after["encoders." + k]) for k in enc)
    assert bool(after["reconstructor.teacher_loaded"])
    history = (trial / "history-mmin.json").read_text()
    assert "loss/reconstructor/mse" in history and "loss/reconstructor/cycle" in history
