"""The closed-form maths CM-ARR's losses are built from, kept apart so tests can check it.

* 2-Wasserstein distance between diagonal Gaussians (alignment, phase 1);
* the distribution-based InfoNCE over those distances;
* the entropy margin that keeps the Gaussians from collapsing to points;
* the supervised point-based contrastive loss (refinement, phase 3).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from mmtk import MmtkError
from mmtk.ops import zero_loss


def _std(logvar: Tensor) -> Tensor:
    return torch.exp(0.5 * logvar)


def w2_distance(mu1: Tensor, logvar1: Tensor, mu2: Tensor, logvar2: Tensor,
                squared: bool = True) -> Tensor:
    """Row-wise W2 between N(mu1, diag exp(logvar1)) and N(mu2, diag exp(logvar2)): (B,).

    For diagonal (commuting) covariances the closed form is
    ``W2² = ||mu1 - mu2||² + ||sigma1 - sigma2||²`` with ``sigma = exp(logvar / 2)``.
    """
    d2 = (mu1 - mu2).pow(2).sum(-1) + (_std(logvar1) - _std(logvar2)).pow(2).sum(-1)
    return d2 if squared else d2.clamp_min(1e-12).sqrt()


def pairwise_w2(mu_a: Tensor, logvar_a: Tensor, mu_b: Tensor, logvar_b: Tensor,
                squared: bool = True) -> Tensor:
    """(Na, Nb) matrix of W2 between every Gaussian of set a and every Gaussian of set b."""
    # the Gaussian (mu, sigma) is a point in R^{2D} and W2 is the Euclidean distance there
    pa = torch.cat([mu_a, _std(logvar_a)], -1)
    pb = torch.cat([mu_b, _std(logvar_b)], -1)
    d2 = (pa.pow(2).sum(-1, keepdim=True) + pb.pow(2).sum(-1)[None, :]
          - 2.0 * pa @ pb.transpose(0, 1)).clamp_min(0.0)
    return d2 if squared else d2.clamp_min(1e-12).sqrt()


def w2_logits(mu_a: Tensor, logvar_a: Tensor, mu_b: Tensor, logvar_b: Tensor,
              temperature: Tensor | float, scale: float = 1.0, squared: bool = True) -> Tensor:
    """Similarity logits ``-scale · W2(a_i, b_j) / temperature`` (higher = closer)."""
    return -scale * pairwise_w2(mu_a, logvar_a, mu_b, logvar_b, squared) / temperature


def w2_infonce(mu_a: Tensor, logvar_a: Tensor, mu_b: Tensor, logvar_b: Tensor,
               temperature: Tensor | float, scale: float = 1.0, squared: bool = True) -> Tensor:
    """Symmetric InfoNCE: row i of set a is the positive of row i of set b; the other rows
    of the batch are negatives. Both directions (a→b and b→a) are averaged."""
    if mu_a.shape != mu_b.shape:
        raise MmtkError(f"w2_infonce needs two aligned sets of the same shape, got "
                        f"{tuple(mu_a.shape)} and {tuple(mu_b.shape)}; row i of each set must "
                        "be the same sample")
    logits = w2_logits(mu_a, logvar_a, mu_b, logvar_b, temperature, scale, squared)
    target = torch.arange(logits.shape[0], device=logits.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.transpose(0, 1), target))


def gaussian_entropy(logvar: Tensor) -> Tensor:
    """Differential entropy (nats) of a diagonal Gaussian, per row: (B,)."""
    d = logvar.shape[-1]
    return 0.5 * d * (math.log(2 * math.pi) + 1.0) + 0.5 * logvar.sum(-1)


def entropy_margin_loss(logvar: Tensor, margin_per_dim: float) -> Tensor:
    """``mean(max(0, margin - H/D))``: penalises Gaussians whose entropy per dimension falls
    below the margin, so the variances cannot collapse to zero (MAP's regulariser, per dim)."""
    per_dim = gaussian_entropy(logvar) / logvar.shape[-1]
    return torch.relu(margin_per_dim - per_dim).mean()


def supcon_loss(features: Tensor, labels: Tensor, temperature: float = 0.07,
                base_temperature: float | None = None) -> Tensor:
    """Supervised contrastive loss (Khosla et al. 2020, ``contrast_mode='all'``).

    ``features`` (N, d) are the views (any number per sample, flattened); they are
    L2-normalised here. For anchor i, positives are the other views with the same label and
    the denominator runs over every view but i itself:
    ``L_i = -(t / t_base) · mean_{p in P(i)} log( exp(s_ip/t) / sum_{a != i} exp(s_ia/t) )``.
    Anchors without any positive are left out; with none at all the loss is 0.
    """
    if features.dim() != 2 or labels.dim() != 1 or features.shape[0] != labels.shape[0]:
        raise MmtkError(f"supcon_loss expects features (N, d) and labels (N,), got "
                        f"{tuple(features.shape)} and {tuple(labels.shape)}")
    if temperature <= 0:
        raise MmtkError(f"supcon temperature must be > 0, got {temperature}")
    base = temperature if base_temperature is None else base_temperature
    n = features.shape[0]
    f = F.normalize(features, dim=-1)
    sim = (f @ f.transpose(0, 1)) / temperature
    self_mask = torch.eye(n, dtype=torch.bool, device=f.device)
    sim = sim.masked_fill(self_mask, float("-inf"))
    log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    positives = (labels[:, None] == labels[None, :]) & ~self_mask
    n_pos = positives.sum(1)
    anchors = n_pos > 0
    if not bool(anchors.any()):
        return zero_loss(features)
    mean_log_prob = log_prob.masked_fill(~positives, 0.0).sum(1)[anchors] / n_pos[anchors]
    return -(temperature / base) * mean_log_prob.mean()
