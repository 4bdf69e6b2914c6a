"""The typed cross-slot contract, for every registered reconstructor × fuser pair.

A reconstructor that fills in an absent modality must change what the model predicts for a
sample with that modality absent: whichever fuser follows must use the filled-in
representation (``State.represented``), never silently throw it away. A pair that cannot
work together must say so with a clear error naming one of the two components.
Parametrized over the registry, so a new plugin's components are covered when registered.
"""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from mmtk.batch import ModalityBatch
from mmtk.builder import Builder
from mmtk.data import TensorData
from mmtk.errors import MmtkError
from mmtk.plugins import load_plugins

SYSTEM = load_plugins()
MODALITIES = ("audio", "text", "visual")
IN_DIMS = {"audio": 12, "text": 10, "visual": 8}
# every sample has at least one present modality; rows 0-5 lack at least one
PRESENT = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1],
                        [1, 1, 1], [1, 1, 1]], dtype=torch.bool)
INCOMPLETE = ~PRESENT.all(1)


def pairs():
    return [pytest.param(r, f, id=f"{r.qualified_name}+{f.qualified_name}")
            for r in SYSTEM.registry.list("reconstructor") for f in SYSTEM.registry.list("fuser")]


def block_for(spec, workdir) -> dict:
    block = {"type": spec.qualified_name}
    example = getattr(spec.obj, "example_params", None)
    if example is not None:
        block.update(example(workdir))
    return block


def model_for(reconstructor, fuser, workdir) -> dict:
    model = {"latent_dim": 16, "encoders": {m: {"type": "basic:mlp"} for m in MODALITIES},
             "aligner": None, "refiner": None, "head": {"type": "basic:mlp"}}
    for spec in (reconstructor, fuser):     # partners for the other slots, if a part needs one
        partners = getattr(spec.obj, "contract_partners", None)
        for slot, block in (partners() if partners else {}).items():
            if slot not in ("reconstructor", "fuser"):
                model[slot] = block
    model["reconstructor"] = block_for(reconstructor, workdir)
    model["fuser"] = block_for(fuser, workdir)
    return model


def batch() -> ModalityBatch:
    g = torch.Generator().manual_seed(0)
    n = PRESENT.shape[0]
    inputs = {m: torch.randn(n, 4, IN_DIMS[m], generator=g) for m in MODALITIES}
    lengths = {m: torch.randint(1, 5, (n,), generator=g) for m in MODALITIES}
    return ModalityBatch(inputs, torch.ones(n, 3, dtype=torch.bool), MODALITIES,
                         torch.arange(n) % 3, [f"s{i}" for i in range(n)], lengths)


def fitted(pipe, truth):
    """What the trainer does before a stage trains: parts fitted in closed form on the training
    split (an input imputer) are fitted, here on the complete batch."""
    pipe.fit_training_data(TensorData(dict(truth.inputs), truth.labels, list(truth.ids),
                                      lengths=dict(truth.lengths)))
    return pipe


def eval_logits(pipe, truth) -> torch.Tensor:
    pipe.eval()
    with torch.no_grad():
        return pipe(truth.masked(PRESENT)).logits


def perturbed(module) -> None:
    torch.manual_seed(1)
    with torch.no_grad():
        for t in [*module.parameters(), *module.buffers()]:
            if t.is_floating_point():
                t.add_(0.5 * torch.randn_like(t))


@pytest.mark.parametrize("reconstructor, fuser", pairs())
def test_a_reconstructed_modality_reaches_the_prediction(reconstructor, fuser, tmp_path):
    torch.manual_seed(0)
    pipe = Builder(SYSTEM.registry, tmp_path).model(model_for(reconstructor, fuser, tmp_path),
                                                    IN_DIMS, num_classes=3, seed=0)
    truth = batch()
    try:
        fitted(pipe, truth)
        pipe.train()
        pipe(truth.masked(PRESENT), truth=truth)   # one training pass (e.g. fits mean_impute's means)
        filled = eval_logits(pipe, truth)
    except MmtkError as exc:                        # an incompatible pair must say which part
        assert reconstructor.name in str(exc) or fuser.name in str(exc), str(exc)
        return
    assert torch.isfinite(filled).all()
    rec = pipe.reconstructor
    pipe.reconstructor = None
    try:
        without = eval_logits(pipe, truth)
    except MmtkError:                               # the fuser needs this reconstructor:
        pipe.reconstructor = rec                    # its output must still drive the logits
        perturbed(rec)
        without = eval_logits(pipe, truth)
    changed = (filled - without).abs().amax(1) > 1e-6
    assert changed[INCOMPLETE].all(), (
        f"reconstructor {reconstructor.qualified_name} followed by fuser {fuser.qualified_name}: "
        f"samples {INCOMPLETE.nonzero().flatten()[~changed[INCOMPLETE]].tolist()} with an absent "
        "modality get the logits they get without the reconstructor, so the fuser discards "
        "what was filled in (mark it in state.represented / read state.represented)")


def built_and_trained(reconstructor, fuser, workdir):
    """The pair in a pipeline after one training pass, or None if the pair refuses to run
    (the earlier test checks that it refuses clearly)."""
    torch.manual_seed(0)
    pipe = Builder(SYSTEM.registry, workdir).model(model_for(reconstructor, fuser, workdir),
                                                   IN_DIMS, num_classes=3, seed=0)
    truth = batch()
    try:
        fitted(pipe, truth)
        pipe.train()
        pipe(truth.masked(PRESENT), truth=truth)
        eval_logits(pipe, truth)
    except MmtkError:
        return None, truth
    return pipe, truth


def after_reconstructor(pipe, truth, change=None):
    """(state before, state after the reconstructor, logits); ``change(state)`` may edit the
    reconstructor's output before the fuser sees it."""
    seen = {}

    def pre_hook(module, args):     # a slot may update the state it is given in place
        seen["before"] = replace(args[0], reps=dict(args[0].reps))

    def hook(module, args, output):
        state, losses = output
        if change is not None:
            state = change(state)
        seen["after"] = state
        return state, losses
    handles = [pipe.reconstructor.register_forward_pre_hook(pre_hook),
               pipe.reconstructor.register_forward_hook(hook)]
    try:
        logits = eval_logits(pipe, truth)
    finally:
        for handle in handles:
            handle.remove()
    return seen["before"], seen["after"], logits


def noise_on(cells: dict):
    def change(state):
        g = torch.Generator().manual_seed(2)
        return replace(state, reps={m: torch.where(cells[m][:, None], r + 3.0 * torch.randn(r.shape, generator=g), r)
                                    for m, r in state.reps.items()})
    return change


@pytest.mark.parametrize("reconstructor, fuser", pairs())
def test_filled_in_representations_are_marked_and_read(reconstructor, fuser, tmp_path):
    """Each absent modality a reconstructor fills is marked in state.represented, and a fuser
    that reads representations at all reads the filled-in ones too."""
    pipe, truth = built_and_trained(reconstructor, fuser, tmp_path)
    if pipe is None:
        pytest.skip("the pair refuses to run together (clearly: see the test above)")
    before, after, logits = after_reconstructor(pipe, truth)
    # an input imputer fills in before the encoders: what it filled is represented but absent
    imputed = (before.represented & ~before.present if pipe.input_imputer is not None
               else torch.zeros_like(PRESENT))
    filled = {m: ~PRESENT[:, i] & ((after.reps[m] != before.reps[m]).any(1) | imputed[:, i])
              for i, m in enumerate(MODALITIES)}
    for i, m in enumerate(MODALITIES):
        unmarked = filled[m] & ~after.represented[:, i]
        assert not unmarked.any(), (
            f"reconstructor {reconstructor.qualified_name} filled in {m} for samples "
            f"{unmarked.nonzero().flatten().tolist()} without marking it in state.represented")
    everywhere = {m: torch.ones(PRESENT.shape[0], dtype=torch.bool) for m in MODALITIES}
    if torch.equal(after_reconstructor(pipe, truth, noise_on(everywhere))[2], logits):
        return    # this fuser reads no representation (e.g. MMIN's latents), only its partner's output
    rows = torch.stack(list(filled.values()), 1).any(1)
    assert rows.any(), f"{reconstructor.qualified_name} filled in nothing for samples with an absent modality"
    noisy = after_reconstructor(pipe, truth, noise_on(filled))[2]
    moved = (noisy - logits).abs().amax(1) > 1e-6
    assert moved[rows].all(), (
        f"fuser {fuser.qualified_name} ignores what reconstructor {reconstructor.qualified_name} "
        f"filled in for samples {rows.nonzero().flatten()[~moved[rows]].tolist()}: it must use "
        "state.represented, not state.present, to decide which modalities to use")


def test_every_pair_is_covered():
    """The contract above needs both kinds in the registry (a renamed kind would skip it)."""
    assert len(pairs()) >= 4
