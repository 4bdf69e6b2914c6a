"""Late fusion: a product of experts over the modalities a sample has; each expert learns on
the samples that have its modality; an absent modality casts no vote."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mmtk import MmtkError, State
from mmtk_baselines.late_fusion import IdentityHead, LateFusion

MODS = ("audio", "text", "visual")


def _state(reps, have, labels=None):
    return State(reps=reps, present=have.clone(), modalities=MODS, training=labels is not None,
                 labels=labels, represented=have.clone())


def test_prediction_is_the_normalised_product_of_the_present_experts():
    torch.manual_seed(0)
    fuser = LateFusion(MODS, latent_dim=4, num_classes=3)
    reps = {m: torch.randn(2, 4) for m in MODS}
    have = torch.tensor([[True, False, True], [False, True, False]])
    out, _ = fuser(_state(reps, have))
    logp = {m: F.log_softmax(fuser.experts[m](reps[m]), -1) for m in MODS}
    expected0 = F.log_softmax(logp["audio"][0] + logp["visual"][0], -1)
    expected1 = logp["text"][1]                        # one expert: its own distribution
    assert torch.allclose(out.fused[0], expected0, atol=1e-6)
    assert torch.allclose(out.fused[1], expected1, atol=1e-6)
    # an absent modality's representation changes nothing
    other = dict(reps, text=reps["text"] + 100 * torch.randn(2, 4))
    other["text"][1] = reps["text"][1]
    assert torch.allclose(fuser(_state(other, have))[0].fused[0], out.fused[0])


def test_each_expert_learns_only_on_the_samples_that_have_its_modality():
    torch.manual_seed(1)
    fuser = LateFusion(MODS, latent_dim=4, num_classes=3)
    reps = {m: torch.randn(3, 4) for m in MODS}
    have = torch.tensor([[True, True, False], [True, False, False], [True, True, False]])
    labels = torch.tensor([0, 1, 2])
    _, losses = fuser(_state(reps, have, labels))
    losses["experts"].backward()
    assert fuser.experts["visual"].weight.grad is None or not fuser.experts["visual"].weight.grad.any()
    assert fuser.experts["audio"].weight.grad.abs().sum() > 0
    pairs = [F.cross_entropy(fuser.experts[m](reps[m][i:i + 1]), labels[i:i + 1])
             for i in range(3) for j, m in enumerate(MODS) if have[i, j]]
    assert losses["experts"].item() == pytest.approx(torch.stack(pairs).mean().item(), rel=1e-5)


def test_learnt_vote_weights_and_the_identity_head():
    fuser = LateFusion(MODS, latent_dim=4, num_classes=3, learn_weights=True)
    reps = {m: torch.randn(2, 4) for m in MODS}
    out, _ = fuser(_state(reps, torch.ones(2, 3, dtype=torch.bool)))
    out.fused.sum().backward()
    assert fuser.log_weights.grad is not None and fuser.log_weights.grad.abs().sum() > 0
    assert torch.equal(IdentityHead(3, 3)(out.fused), out.fused)
    with pytest.raises(MmtkError, match="passes the fuser's 12 values through"):
        IdentityHead(12, 3)
