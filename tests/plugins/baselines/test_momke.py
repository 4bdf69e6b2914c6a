"""MoMKE-style experts: unimodal expert training, the availability-aware soft mixture, the recipe."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from conftest import RECIPES
from mmtk import State
from mmtk.recipe import read_recipe_tree
from mmtk.rundir import load_torch
from mmtk_baselines.momke import ROUTER_WEIGHTS, ExpertLayer, MoMKEExperts, MoMKEMixture

MODS = ("audio", "text", "visual")
LATENT = 6


def _state(reps, have, labels=None):
    return State(reps=reps, present=have.clone(), modalities=MODS, training=labels is not None,
                 labels=labels, represented=have.clone())


def test_expert_layer_is_the_reference_block_on_one_token():
    torch.manual_seed(0)
    layer = ExpertLayer(LATENT, dropout=0.0)
    x = torch.randn(3, LATENT)
    v = layer.value(x)
    torch.testing.assert_close(layer(x), x + v + layer.mlp(v))


def test_stage_one_experts_learn_only_from_their_modality_and_their_own_head():
    torch.manual_seed(1)
    fuser = MoMKEExperts(MODS, LATENT, num_classes=3, depth=2, dropout=0.0)
    reps = {m: torch.randn(4, LATENT) for m in MODS}
    have = torch.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]]).bool()
    labels = torch.tensor([0, 1, 2, 1])
    out, losses = fuser(_state(reps, have, labels))
    cells = [F.cross_entropy(fuser.heads[m](fuser.experts[m](reps[m][i:i + 1])), labels[i:i + 1])
             for i in range(4) for j, m in enumerate(MODS) if have[i, j]]
    assert losses["experts"].item() == pytest.approx(torch.stack(cells).mean().item(), rel=1e-5)
    losses["experts"].backward()
    visual = [p.grad for p in [*fuser.experts["visual"].parameters(), *fuser.heads["visual"].parameters()]]
    assert all(g is None or not g.any() for g in visual)          # no visual sample: no update
    assert fuser.experts["audio"][0].value.weight.grad.abs().sum() > 0
    # the stage's prediction is the product of the present experts, and trains nothing
    logp = {m: F.log_softmax(fuser.heads[m](fuser.experts[m](reps[m])), -1) for m in MODS}
    torch.testing.assert_close(out.fused[0], F.log_softmax(logp["audio"][0] + logp["text"][0], -1))
    torch.testing.assert_close(out.fused[1], logp["audio"][1])
    assert not out.fused.requires_grad


def test_stage_one_expert_loss_reads_labelled_samples_only():
    torch.manual_seed(5)
    fuser = MoMKEExperts(MODS, LATENT, num_classes=3, depth=1, dropout=0.0)
    reps = {m: torch.randn(4, LATENT) for m in MODS}
    have = torch.ones(4, 3, dtype=torch.bool)
    labels = torch.tensor([0, -1, 2, -1])
    loss = fuser(_state(reps, have, labels))[1]["experts"]
    labelled = fuser(_state({m: r[[0, 2]] for m, r in reps.items()}, have[:2], labels[[0, 2]]))[1]["experts"]
    torch.testing.assert_close(loss, labelled)
    moved = {m: torch.where(labels[:, None] < 0, r + 5.0, r) for m, r in reps.items()}
    torch.testing.assert_close(fuser(_state(moved, have, labels))[1]["experts"], loss)
    none = fuser(_state(reps, have, torch.full((4,), -1)))[1]["experts"]
    assert none.item() == 0.0 and none.requires_grad


def test_stage_one_prediction_ignores_an_absent_modality():
    torch.manual_seed(2)
    fuser = MoMKEExperts(MODS, LATENT, num_classes=3, depth=1, dropout=0.0).eval()
    reps = {m: torch.randn(2, LATENT) for m in MODS}
    have = torch.tensor([[1, 0, 1], [0, 1, 0]]).bool()
    before = fuser(_state(reps, have))[0].fused
    changed = dict(reps, text=torch.where(have[:, 1:2], reps["text"], reps["text"] + 50.0))
    torch.testing.assert_close(fuser(_state(changed, have))[0].fused, before)


def test_stage_two_mixes_every_expert_with_router_weights_that_see_availability():
    torch.manual_seed(3)
    fuser = MoMKEMixture(MODS, LATENT, depth=2, dropout=0.0, router_hidden=8).eval()
    reps = {m: torch.randn(2, LATENT) for m in MODS}
    have = torch.tensor([[1, 1, 0], [1, 0, 0]]).bool()
    out, losses = fuser(_state(reps, have))
    assert losses == {} and out.fused.shape == (2, 3 * LATENT)
    weights = out.extras[ROUTER_WEIGHTS]                           # (B, modality, expert)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3))
    # by hand: audio of sample 0 through all three experts, weighted by audio's router
    a = reps["audio"][0:1]
    w = torch.softmax(fuser.routers["audio"](torch.cat([a, have[0:1].float()], -1)), -1)
    mix = sum(w[0, e] * fuser.experts[x](a)[0] for e, x in enumerate(MODS))
    joint0 = torch.cat([mix, (weights[0, 1, :, None] * torch.stack([fuser.experts[x](reps["text"][0:1])[0]
                                                                    for x in MODS])).sum(0), torch.zeros(LATENT)])
    torch.testing.assert_close(out.fused[0], joint0 + F.relu(fuser.joint(joint0)))
    torch.testing.assert_close(weights[0, 0], w[0])
    # the same audio features with another availability get other router weights
    other = {m: r[0:1].expand(2, -1) for m, r in reps.items()}
    w2 = fuser(_state(other, have))[0].extras[ROUTER_WEIGHTS]
    assert not torch.allclose(w2[0, 0], w2[1, 0])               # identical audio, other mask
    # absent modalities contribute zeros; their values change nothing
    changed = dict(reps, visual=reps["visual"] + 10.0)
    torch.testing.assert_close(fuser(_state(changed, have))[0].fused, out.fused)


def test_stage_two_trains_the_experts_of_absent_modalities_through_present_ones():
    torch.manual_seed(4)
    fuser = MoMKEMixture(MODS, LATENT, depth=1, dropout=0.0, router_hidden=8)
    reps = {m: torch.randn(3, LATENT) for m in MODS}
    have = torch.tensor([[1, 0, 0]] * 3).bool()                  # audio only
    out, _ = fuser(_state(reps, have))
    out.fused.sum().backward()
    for m in MODS:                                                 # every expert serves audio
        assert fuser.experts[m][0].value.weight.grad.abs().sum() > 0


def test_stage_one_experts_carry_over_to_stage_two_by_name():
    first = MoMKEExperts(MODS, LATENT, num_classes=3, depth=2)
    second = MoMKEMixture(MODS, LATENT, depth=2)
    experts = {k: v for k, v in first.state_dict().items() if k.startswith("experts.")}
    assert experts and set(experts) <= set(second.state_dict())
    assert all(second.state_dict()[k].shape == v.shape for k, v in experts.items())


def test_recipe_stages(prepare_tree):
    tree = prepare_tree(RECIPES / "momke.yaml")
    experts, mixture = tree.stages
    assert experts.missing.train.type == "none" and experts.model.fuser.type == "momke_experts"
    assert experts.model.head.type == "identity"
    assert mixture.init_from.stage == "experts" and mixture.init_from.map is None
    assert mixture.model.fuser.type == "momke" and mixture.model.head.type == "mlp"
    # one model for every condition, selected on validation
    assert mixture.missing.train.type == "six_conditions" and mixture.missing.eval.type == "six_conditions"
    assert mixture.freeze == []


@pytest.mark.slow
def test_momke_two_stages_end_to_end(system, run_tiny):
    tree = read_recipe_tree(RECIPES / "momke.yaml", {n: e.path for n, e in system.recipes.items()})
    tree["model"]["latent_dim"] = 16
    tree["model"]["fuser"]["depth"] = 1
    tree["stages"][1]["model"]["fuser"]["depth"] = 1
    results = run_tiny(tree, ["data.n_test=500"])   # runs end to end: no score asserted
    trial = Path(results["directory"]) / "trials" / "seed0"
    test = results["trials"]["seed0"]["test"]
    assert {"a", "t", "v", "at", "av", "tv", "atv", "mean"} == set(test)
    experts, mixture = load_torch(trial / "stage-experts.pt"), load_torch(trial / "stage-mixture.pt")
    assert "fuser.heads.audio.weight" in experts and "fuser.heads.audio.weight" not in mixture
    assert "loss/fuser/experts" in (trial / "history-experts.json").read_text()
