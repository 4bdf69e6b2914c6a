"""The flows of dicmor_flow: invertibility, log-determinants, and the likelihood against
normflows' own ClassCondFlow.log_prob."""
from __future__ import annotations

import math

import normflows as nf
import pytest
import torch

from mmtk.errors import MmtkError
from mmtk_recovery.dicmor import DiCMoRFlow
from mmtk_recovery.flows import class_log_probs, from_latent, make_flow, to_latent


def jitter(module, scale):
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():   # coupling nets start at zero: make the flows non-trivial
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))


def random_flow(dim=6, blocks=3, dtype=torch.float64, scale=0.3):
    torch.manual_seed(0)
    layers = make_flow(dim, blocks, hidden=16).to(dtype)
    jitter(layers, scale)
    return layers


def random_slot(dim=6, classes=3):
    torch.manual_seed(0)
    slot = DiCMoRFlow(("audio", "text", "visual"), dim, classes, blocks=2, hidden=16).double()
    jitter(slot, 0.2)
    return slot


def test_x_to_z_to_x_is_the_identity():
    layers = random_flow(dtype=torch.float32, scale=0.1)
    x = torch.randn(64, 6)
    z, _ = to_latent(layers, x)
    assert (z - x).abs().max() > 1e-2, "the test flow should not be the identity"
    assert torch.allclose(from_latent(layers, z), x, atol=1e-4)


def test_log_det_is_the_log_det_of_the_jacobian():
    layers = random_flow()
    x = torch.randn(3, 6, dtype=torch.float64)
    _, log_det = to_latent(layers, x)
    for i in range(3):
        jac = torch.autograd.functional.jacobian(lambda v: to_latent(layers, v[None])[0][0], x[i])
        assert log_det[i].item() == pytest.approx(torch.linalg.slogdet(jac)[1].item(), abs=1e-8)
    assert log_det.abs().max() > 1e-2, "the test flow should change volume"


def test_labelled_likelihood_is_normflows_class_conditional_log_prob():
    slot = random_slot()
    x = torch.randn(10, 6, dtype=torch.float64)
    y = torch.arange(10) % 3
    for m in slot.modalities:
        reference = nf.ClassCondFlow(slot.prior, list(slot.flows[m])).log_prob(x, y)
        assert torch.allclose(slot.log_prob(m, x, y), reference, atol=1e-10)
    # each modality's own flow: the three likelihoods differ
    assert not torch.allclose(slot.log_prob("audio", x, y), slot.log_prob("text", x, y))


def test_unlabelled_likelihood_is_the_equal_weight_class_mixture():
    slot = random_slot()
    x = torch.randn(7, 6, dtype=torch.float64)
    flow = nf.ClassCondFlow(slot.prior, list(slot.flows["text"]))
    per_class = torch.stack([flow.log_prob(x, torch.full((7,), c)) for c in range(3)], 1)
    expected = torch.logsumexp(per_class, 1) - math.log(3)
    assert torch.allclose(slot.log_prob("text", x, torch.full((7,), -1)), expected, atol=1e-10)


def test_class_log_probs_are_the_priors_per_class():
    slot = random_slot()
    z = torch.randn(5, 6, dtype=torch.float64)
    table = class_log_probs(slot.prior, z)
    for c in range(3):
        assert torch.allclose(table[:, c], slot.prior.log_prob(z, torch.full((5,), c)), atol=1e-12)


def test_an_odd_latent_width_is_refused_naming_it():
    with pytest.raises(MmtkError, match="latent_dim must be even"):
        DiCMoRFlow(("audio", "text"), 7, 3)


def test_soft_clamp_keeps_shifts_and_bounds_scales():
    from mmtk_recovery.flows import SoftClampedScales
    raw = torch.tensor([[0.5, -40.0, 7.0, 0.01, -2.0, 100.0]])
    out = SoftClampedScales(lambda x: raw, clamp=3.0)(torch.zeros(1, 3))
    assert torch.equal(out[:, 0::2], raw[:, 0::2])                        # shifts untouched
    assert torch.allclose(out[:, 1::2], 3.0 * torch.tanh(raw[:, 1::2] / 3.0))
    assert out[:, 1::2].abs().max() <= 3.0 and out[0, 3].item() == pytest.approx(0.01, rel=1e-4)


def test_a_recovery_far_off_the_latent_stays_finite_only_with_the_clamp():
    """What dicmor_flow's NaNs were: a flow run forwards on a latent it was not trained on."""
    torch.manual_seed(0)
    z = 30 * torch.randn(256, 8)
    outs = {}
    for clamp in (None, 3.0):
        layers = make_flow(8, 4, hidden=16, scale_clamp=clamp)
        for layer in layers:   # coupling nets with large outputs, as late in a diverging training
            if isinstance(layer, nf.flows.AffineCouplingBlock):
                jitter(layer, 1.0)
        with torch.no_grad():
            outs[clamp] = from_latent(layers, z)
    assert not torch.isfinite(outs[None]).all()       # overflow: inf, then NaN downstream
    assert torch.isfinite(outs[3.0]).all()
