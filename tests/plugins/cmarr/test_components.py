"""CM-ARR's slots on hand-made states: what they read, what they write, what they emit."""
from __future__ import annotations

import pytest
import torch

from mmtk.errors import MmtkError
from mmtk.pipeline import State
from mmtk_cmarr.alignment import GaussianW2Aligner
from mmtk_cmarr.fusion import CrossAttentionFuser
from mmtk_cmarr.reconstruction import FlowReconstructor
from mmtk_cmarr.refinement import SupConRefiner

MODS = ("audio", "text", "visual")
D = 8


def state(present, training, seed=0, labels=None, reps=None):
    g = torch.Generator().manual_seed(seed)
    n = present.shape[0]
    reps = reps or {m: torch.randn(n, D, generator=g) for m in MODS}
    return State(reps=dict(reps), present=present, modalities=MODS, training=training, labels=labels)


def _perturb(module, seed=0):
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return module


PRESENT = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1],
                        [1, 1, 1], [1, 1, 0], [1, 1, 0], [0, 0, 0]], dtype=torch.bool)
LABELS = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])


def test_aligner_sets_gaussians_and_means_and_contrasts_only_present_pairs():
    aligner = GaussianW2Aligner(MODS, D, tokens=2, heads=2, entropy_margin=0.5)
    s, losses = aligner(state(PRESENT, training=True))
    for m in MODS:
        mu, logvar = s.gaussians[m]
        assert mu.shape == logvar.shape == (10, D)
        assert torch.equal(s.reps[m], mu)
    assert set(losses) == {"w2_nce", "entropy"} and all(torch.isfinite(v) for v in losses.values())
    # row 0 has audio only, so it is in no modality pair: changing it leaves the contrast as is
    aligner.eval()   # no dropout; losses are still computed because the states say training
    base = aligner(state(PRESENT, training=True))[1]["w2_nce"]
    other = state(PRESENT, training=True)
    other.reps["audio"][0] += 5.0
    assert aligner(other)[1]["w2_nce"].item() == pytest.approx(base.item(), rel=1e-6)
    # at evaluation no loss is computed
    assert aligner(state(PRESENT, training=False))[1] == {}


def test_aligner_single_modality_batches_give_a_finite_zero_loss():
    only_text = torch.tensor([[0, 1, 0]] * 4, dtype=torch.bool)
    _, losses = GaussianW2Aligner(MODS, D, tokens=2, heads=2)(state(only_text, training=True))
    assert losses["w2_nce"].item() == 0.0


def test_aligner_layer_scale_zero_starts_as_the_identity_on_the_mean_and_learns_its_scale():
    torch.manual_seed(0)
    scaled = GaussianW2Aligner(MODS, D, tokens=2, heads=2, layer_scale=0.0)
    torch.manual_seed(0)
    shipped = GaussianW2Aligner(MODS, D, tokens=2, heads=2)
    inputs = state(PRESENT, training=True)
    s, losses = scaled(state(PRESENT, training=True))
    for m in MODS:
        assert torch.equal(s.reps[m], inputs.reps[m])          # mean = input at the start
    # the log-variance head is not scaled: with the same initial weights it is the shipped one's
    shipped.eval(), scaled.eval()
    a, b = shipped(state(PRESENT, training=False))[0], scaled(state(PRESENT, training=False))[0]
    for m in MODS:
        assert torch.allclose(a.gaussians[m][1], b.gaussians[m][1])
        assert not torch.allclose(a.gaussians[m][0], b.gaussians[m][0])
    # the scales are parameters the alignment loss trains (so the block can grow)
    scaled.train()
    losses = scaled(state(PRESENT, training=True))[1]
    losses["w2_nce"].backward()
    grads = [scaled.blocks[m].scale_attn.grad for m in MODS] + [scaled.blocks[m].scale_mlp.grad for m in MODS]
    assert all(g is not None and bool(g.abs().sum() > 0) for g in grads)
    # the shipped block has no such parameters: its checkpoints keep their keys
    assert not any("scale_" in k for k in shipped.state_dict())


def test_aligner_without_a_block_keeps_the_encoder_output_as_the_mean_and_still_aligns():
    aligner = GaussianW2Aligner(MODS, D, block="identity", entropy_margin=0.5)
    inputs = state(PRESENT, training=True)
    s, losses = aligner(state(PRESENT, training=True))
    for m in MODS:
        mu, logvar = s.gaussians[m]
        assert torch.equal(mu, inputs.reps[m]) and torch.equal(s.reps[m], mu)
        assert logvar.shape == (10, D) and bool((logvar.abs() <= aligner.blocks[m].logvar_clamp).all())
    # the alignment still trains what produced the Gaussians: the log-variance heads
    losses["w2_nce"].backward()
    assert all(bool(aligner.blocks[m].to_logvar.weight.grad.abs().sum() > 0) for m in MODS)
    # the block's own parameters are gone, not merely unused
    names = {k for k in aligner.state_dict() if k.startswith("blocks.")}
    assert names == {f"blocks.{m}.to_logvar.{w}" for m in MODS for w in ("weight", "bias")}
    # heads need not divide latent_dim when there is no attention
    GaussianW2Aligner(MODS, 10, heads=4, block="identity")


def test_aligner_rejects_bad_heads():
    with pytest.raises(MmtkError, match="divisible"):
        GaussianW2Aligner(MODS, 10, heads=4)


def test_reconstruction_at_evaluation_reads_only_present_modalities():
    rec = _perturb(FlowReconstructor(MODS, D, num_classes=3, blocks=2, hidden=16)).eval()
    with torch.no_grad():
        a, _ = rec(state(PRESENT, training=False, seed=0))
        changed = state(PRESENT, training=False, seed=0)
        for i, m in enumerate(MODS):   # new values wherever the modality is absent
            changed.reps[m] = torch.where(PRESENT[:, i:i + 1], changed.reps[m], torch.randn(10, D))
        b, _ = rec(changed)
    has_any = PRESENT.any(1)
    for i, m in enumerate(MODS):
        rows = has_any | PRESENT[:, i]
        torch.testing.assert_close(a.reps[m][rows], b.reps[m][rows])
    assert torch.equal(a.represented, PRESENT | has_any[:, None])


def test_reconstruction_fuses_both_available_modalities():
    rec = _perturb(FlowReconstructor(MODS, D, num_classes=3, blocks=2, hidden=16)).eval()
    two = torch.tensor([[0, 1, 1]], dtype=torch.bool)     # audio missing, text+visual present
    with torch.no_grad():
        base = rec(state(two, training=False, seed=1))[0].reps["audio"]
        for m in ("text", "visual"):
            s = state(two, training=False, seed=1)
            s.reps[m] = s.reps[m] + 1.0
            assert not torch.allclose(rec(s)[0].reps["audio"], base), f"{m} is not used"
        # the observed modalities pass through untouched
        s = state(two, training=False, seed=1)
        out = rec(s)[0]
        assert torch.equal(out.reps["text"], s.reps["text"])


class _FakeTargets:
    def __init__(self, reps, available):
        self._reps, self.available = reps, available

    def reps(self, after="encoders"):
        return self._reps


def test_reconstruction_losses_in_training_only_where_truth_exists():
    rec = FlowReconstructor(MODS, D, num_classes=3, blocks=2, hidden=16)
    s = state(PRESENT, training=True, labels=LABELS)
    truth = {m: torch.randn(10, D) for m in MODS}
    available = torch.ones(10, 3, dtype=torch.bool)
    available[0] = torch.tensor([True, False, False])   # row 0 really lacks text and visual
    s.targets = _FakeTargets(truth, available)
    out, losses = rec(s)
    assert set(losses) == {"nll", "rec"} and all(torch.isfinite(v) for v in losses.values())
    losses["rec"].backward()
    # the identity-initialised flow, gated fusion and refiner receive gradient from rec
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in rec.refiners.parameters())
    # standard base: no labels needed
    std = FlowReconstructor(MODS, D, num_classes=3, base="standard", blocks=1, hidden=8)
    assert not std.needs_labels
    _, l2 = std(state(PRESENT, training=True))
    assert set(l2) == {"nll"}


def test_reconstruction_mode_none_is_the_zero_filled_identity():
    rec = FlowReconstructor(MODS, D, num_classes=3, mode="none")
    s = state(PRESENT, training=True, labels=LABELS)
    before = {m: r.clone() for m, r in s.reps.items()}
    out, losses = rec(s)
    assert losses == {} and all(torch.equal(out.reps[m], before[m]) for m in MODS)
    assert torch.equal(out.represented, PRESENT)
    assert not list(rec.parameters())


def test_supcon_refiner_uses_completed_views_and_leaves_reps_alone():
    ref = SupConRefiner(D, temperature=0.1)
    s = state(PRESENT, training=True, labels=LABELS)
    s.represented = torch.ones_like(PRESENT)
    before = {m: r.clone() for m, r in s.reps.items()}
    out, losses = ref(s)
    assert torch.isfinite(losses["supcon"]) and all(torch.equal(out.reps[m], before[m]) for m in MODS)
    present_only = SupConRefiner(D, temperature=0.1, views="present")
    _, l2 = present_only(state(PRESENT, training=True, labels=LABELS))
    assert l2["supcon"].item() != pytest.approx(losses["supcon"].item())
    assert ref(state(PRESENT, training=False))[1] == {}


@pytest.mark.parametrize("pool", ["concat", "mean"])
def test_cross_attention_ignores_unusable_modalities(pool):
    fuser = CrossAttentionFuser(MODS, D, heads=2, pool=pool).eval()
    with torch.no_grad():
        a = fuser(state(PRESENT, training=False, seed=2))[0].fused
        changed = state(PRESENT, training=False, seed=2)
        for i, m in enumerate(MODS):
            changed.reps[m] = torch.where(PRESENT[:, i:i + 1], changed.reps[m], torch.randn(10, D))
        b = fuser(changed)[0].fused
    assert a.shape == (10, fuser.out_dim) and torch.isfinite(a).all()
    rows = PRESENT.any(1)    # the all-absent row falls back to every modality
    torch.testing.assert_close(a[rows], b[rows])
    zero_filled = CrossAttentionFuser(MODS, D, heads=2, pool=pool, mask_absent=False).eval()
    with torch.no_grad():
        assert not torch.allclose(zero_filled(state(PRESENT, False, seed=2))[0].fused,
                                  zero_filled(changed)[0].fused)
