"""CM-ARR's closed-form maths against independent computations."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mmtk.errors import MmtkError
from mmtk_cmarr.maths import (
    entropy_margin_loss,
    gaussian_entropy,
    pairwise_w2,
    supcon_loss,
    w2_distance,
    w2_infonce,
    w2_logits,
)


def _psd_sqrt(a: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh(a)
    return (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T


def bures_w2_squared(mu1, cov1, mu2, cov2) -> float:
    """General Gaussian W2² (Bures form with full matrices), independent of the diagonal
    shortcut: ||mu1-mu2||² + tr(S1 + S2 - 2 (S2^½ S1 S2^½)^½)."""
    r2 = _psd_sqrt(cov2)
    cross = _psd_sqrt(r2 @ cov1 @ r2)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(cov1 + cov2 - 2 * cross))


def _gaussians(n, d, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64), \
        torch.randn(n, d, generator=g, dtype=torch.float64)


def test_w2_matches_bures_formula_for_diagonal_gaussians():
    mu_a, lv_a = _gaussians(4, 5, 0)
    mu_b, lv_b = _gaussians(3, 5, 1)
    got = pairwise_w2(mu_a, lv_a, mu_b, lv_b)
    for i in range(4):
        for j in range(3):
            want = bures_w2_squared(mu_a[i].numpy(), np.diag(np.exp(lv_a[i].numpy())),
                                    mu_b[j].numpy(), np.diag(np.exp(lv_b[j].numpy())))
            assert got[i, j].item() == pytest.approx(want, rel=1e-6, abs=1e-9)
    rowwise = w2_distance(mu_a[:3], lv_a[:3], mu_b, lv_b)
    torch.testing.assert_close(rowwise, torch.diagonal(got[:3]))
    torch.testing.assert_close(w2_distance(mu_a[:3], lv_a[:3], mu_b, lv_b, squared=False),
                               rowwise.sqrt())


def test_w2_is_zero_for_identical_distributions_and_grows_with_variance_gap():
    mu, lv = _gaussians(5, 6, 2)
    assert torch.allclose(w2_distance(mu, lv, mu, lv), torch.zeros(5, dtype=mu.dtype))
    assert torch.allclose(torch.diagonal(pairwise_w2(mu, lv, mu, lv)), torch.zeros(5, dtype=mu.dtype),
                          atol=1e-9)
    # same means, different variances: the distance is the gap between standard deviations
    wider = lv + 2 * math.log(2.0)                    # sigma doubled
    want = torch.exp(0.5 * lv).pow(2).sum(-1)         # ||2 sigma - sigma||²
    torch.testing.assert_close(w2_distance(mu, lv, mu, wider), want)


def test_infonce_ranks_the_true_pair_first():
    g = torch.Generator().manual_seed(3)
    mu = torch.randn(8, 16, generator=g) * 3
    lv = torch.randn(8, 16, generator=g) * 0.3
    mu_b = mu + 0.1 * torch.randn(8, 16, generator=g)
    lv_b = lv + 0.05 * torch.randn(8, 16, generator=g)
    logits = w2_logits(mu, lv, mu_b, lv_b, temperature=0.07, scale=1 / 16)
    assert torch.equal(logits.argmax(1), torch.arange(8))
    assert torch.equal(logits.argmax(0), torch.arange(8))
    aligned = w2_infonce(mu, lv, mu_b, lv_b, 0.07, 1 / 16)
    shuffled = w2_infonce(mu, lv, mu_b.roll(1, 0), lv_b.roll(1, 0), 0.07, 1 / 16)
    assert aligned < shuffled
    assert aligned < math.log(8)     # better than chance


def test_infonce_rejects_misaligned_sets():
    mu, lv = _gaussians(4, 3, 0)
    with pytest.raises(MmtkError, match="same shape"):
        w2_infonce(mu, lv, mu[:3], lv[:3], 0.1)


def test_entropy_and_margin():
    lv = torch.zeros(2, 4)
    # a standard normal in D dims has entropy D/2 · (log 2π + 1)
    torch.testing.assert_close(gaussian_entropy(lv), torch.full((2,), 2 * (math.log(2 * math.pi) + 1)))
    per_dim = 0.5 * (math.log(2 * math.pi) + 1)
    assert entropy_margin_loss(lv, per_dim - 0.1).item() == 0.0
    assert entropy_margin_loss(lv, per_dim + 0.25).item() == pytest.approx(0.25)


def test_supcon_equals_hand_computed_value():
    features = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0], [-1.0, 0.0]])
    labels = torch.tensor([0, 0, 1, 1])
    # cosine similarities: s01=1, s02=0, s03=-1, s12=0, s13=-1, s23=0; temperature 1
    e = math.e
    anchor0 = math.log(e / (e + 1 + 1 / e))          # positive 1, others 2 and 3
    anchor1 = math.log(e / (e + 1 + 1 / e))          # positive 0, others 2 and 3
    anchor2 = math.log(1 / (1 + 1 + 1))              # positive 3; s20=s21=s23=0
    anchor3 = math.log(1 / (1 / e + 1 / e + 1))      # positive 2; s30=s31=-1, s32=0
    want = -(anchor0 + anchor1 + anchor2 + anchor3) / 4
    assert supcon_loss(features, labels, temperature=1.0).item() == pytest.approx(want, rel=1e-6)
    # temperature / base_temperature scales the loss
    scaled = supcon_loss(features, labels, temperature=1.0, base_temperature=0.5).item()
    assert scaled == pytest.approx(2 * want, rel=1e-6)


def test_supcon_skips_anchors_without_positive_and_handles_none():
    f = torch.randn(3, 4)
    lone = supcon_loss(f, torch.tensor([0, 0, 1]), 0.1)
    pair_only = -torch.log_softmax(torch.nn.functional.normalize(f[:2], dim=-1) @
                                   torch.nn.functional.normalize(f, dim=-1).T / 0.1
                                   + torch.tensor([[-1e9, 0, 0], [0, -1e9, 0]]), 1)[[0, 1], [1, 0]].mean()
    assert lone.item() == pytest.approx(pair_only.item(), rel=1e-5)
    assert supcon_loss(f, torch.tensor([0, 1, 2]), 0.1).item() == 0.0
    with pytest.raises(MmtkError, match="temperature"):
        supcon_loss(f, torch.tensor([0, 1, 2]), 0.0)
