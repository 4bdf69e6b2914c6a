"""Glow-style normalizing flows on representation vectors, on ``normflows``.

A flow is a list of normflows layers. normflows' convention: a layer's ``forward`` maps
z → x and its ``inverse`` maps x → z, each returning the log-determinant of its Jacobian.
:func:`to_latent` runs the layers backwards (x → z, as ``normflows.ClassCondFlow.log_prob``
does), :func:`from_latent` forwards (z → x).

The latent is shared by every modality's flow: one diagonal Gaussian per class
(``normflows.distributions.ClassCondDiagGaussian``, class means and scales learnt).
"""
from __future__ import annotations

import importlib.util
import math
from types import ModuleType
from typing import Literal

import torch
from torch import Tensor, nn

from mmtk import MmtkError


def import_normflows() -> ModuleType:
    """normflows, or an error saying how to install it (imported only when a flow is built)."""
    if importlib.util.find_spec("normflows") is None:
        raise MmtkError("reconstructor 'dicmor_flow' needs the package 'normflows', which is not "
                        "installed; install it with: pip install 'mmtk[cmarr]' (or pip install "
                        "normflows)")
    import normflows
    return normflows


class SoftClampedScales(nn.Module):
    """A coupling network whose scale outputs (normflows reads them at ``[:, 1::2]``) are
    soft-clamped to ``(-clamp, clamp)`` by ``clamp * tanh(s / clamp)``.

    Why: recovery runs a flow forwards on another modality's latent, off the distribution it
    was trained on; there an unbounded scale divides by a sigmoid near 0 (or multiplies by a
    large exp) in every block, and the recovered representation overflows to inf, then NaN.
    Bounded scales bound each block's gain. Near 0 the clamp is the identity.
    """

    def __init__(self, net: nn.Module, clamp: float):
        super().__init__()
        self.net, self.clamp = net, float(clamp)

    def forward(self, x: Tensor) -> Tensor:
        out = self.net(x)
        scales = self.clamp * torch.tanh(out[:, 1::2] / self.clamp)
        return torch.stack([out[:, 0::2], scales], dim=2).flatten(1)   # shift, scale interleaved again


def make_flow(dim: int, blocks: int, hidden: int,
              scale_map: Literal["sigmoid", "exp"] = "sigmoid", scale_clamp: float | None = 3.0) -> nn.ModuleList:
    """``blocks`` × (affine coupling, learnt invertible linear map), Glow's step for vectors.

    The invertible linear map (LU-parametrised, starting at a fixed permutation) plays the
    part of Glow's invertible 1×1 convolution. Coupling nets start at zero, so a new flow is
    a permutation. ActNorm is left out: its data-dependent start gives NaN on a one-sample
    first batch. ``scale_clamp``: bound of the coupling scales (see :class:`SoftClampedScales`;
    None: unbounded).
    """
    nf = import_normflows()
    if dim % 2 or dim < 2:
        raise MmtkError(f"reconstructor 'dicmor_flow': latent_dim must be even (affine coupling "
                        f"splits the representation in halves), got {dim}; set model.latent_dim")
    layers: list[nn.Module] = []
    for _ in range(blocks):
        net = nf.nets.MLP([dim // 2, hidden, hidden, dim], init_zeros=True)
        if scale_clamp is not None:
            net = SoftClampedScales(net, scale_clamp)
        layers += [nf.flows.AffineCouplingBlock(net, scale=True, scale_map=scale_map),
                   nf.flows.LULinearPermute(dim)]
    return nn.ModuleList(layers)


def to_latent(layers: nn.ModuleList, x: Tensor) -> tuple[Tensor, Tensor]:
    """x → z and log |det dz/dx| per sample."""
    log_det = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
    z = x
    for layer in reversed(layers):
        z, step = layer.inverse(z)
        log_det = log_det + step
    return z, log_det


def from_latent(layers: nn.ModuleList, z: Tensor) -> Tensor:
    """z → x (the generative direction)."""
    x = z
    for layer in layers:
        x, _ = layer(x)
    return x


def class_log_probs(prior: nn.Module, z: Tensor) -> Tensor:
    """(B, C): log N(z; mean_c, diag scale_c²) for every class c of a ClassCondDiagGaussian."""
    loc = prior.loc.t()                          # (C, D)
    log_scale = prior.log_scale.t()
    scaled = (z[:, None, :] - loc[None]) / torch.exp(log_scale)[None]
    return -0.5 * z.shape[1] * math.log(2 * math.pi) - (log_scale[None] + 0.5 * scaled ** 2).sum(-1)


def latent_log_prob(prior: nn.Module, z: Tensor, labels: Tensor) -> Tensor:
    """log p(z) per sample: its class's Gaussian where labelled (label >= 0), the mixture of
    every class with equal weights where unlabelled (label < 0)."""
    per_class = class_log_probs(prior, z)
    labelled = labels >= 0
    own = per_class.gather(1, labels.clamp_min(0)[:, None]).squeeze(1)
    mixture = torch.logsumexp(per_class, 1) - math.log(per_class.shape[1])
    return torch.where(labelled, own, mixture)
