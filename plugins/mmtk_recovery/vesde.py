"""The variance-exploding SDE of score-based diffusion (Song et al., ICLR 2021), on vectors.

Forward SDE ``dx = sigma**t dw`` for t in [0, 1]: the perturbation kernel is
``x_t = x_0 + std(t) * z`` with ``std(t)² = (sigma**(2t) - 1) / (2 ln sigma)``. A score
network ``s(x, t) ≈ ∇ log p_t(x)`` is trained by denoising score matching
(:func:`dsm_loss`) and sampled backwards from t = 1 (:func:`sample`) with Euler–Maruyama on
the reverse SDE or Euler on the probability-flow ODE. The noise of a sampling run is given to
:func:`sample` as a tensor, so a caller decides whether it is random or fixed.
"""
from __future__ import annotations

import math
from typing import Callable, Literal

import torch
from torch import Tensor

ScoreFn = Callable[[Tensor, Tensor], Tensor]   # (x (B, D), t (B,)) -> score (B, D)
Sampler = Literal["euler_maruyama", "ode"]


class VESDE:
    """``std(t)`` and the diffusion coefficient ``g(t) = sigma**t`` of the VE SDE."""

    def __init__(self, sigma: float):
        self.sigma = float(sigma)

    def std(self, t: Tensor) -> Tensor:
        return torch.sqrt((self.sigma ** (2 * t) - 1.0) / (2 * math.log(self.sigma)))

    def g(self, t: Tensor) -> Tensor:
        return self.sigma ** t


def dsm_loss(score: ScoreFn, x0: Tensor, sde: VESDE, t: Tensor | None = None,
             z: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Denoising score matching: mean over samples and dimensions of
    ``(std(t) * s(x0 + std(t) z, t) + z)²``, t ~ U(eps, 1), z ~ N(0, I) unless given.

    A perfect score of Gaussian data N(mu, s² I) makes each term's expectation
    ``s² / (s² + std(t)²)`` (the tests check this); the per-dimension mean keeps the loss's
    scale independent of the representation width.
    """
    if t is None:
        t = torch.rand(x0.shape[0], device=x0.device, dtype=x0.dtype) * (1.0 - eps) + eps
    if z is None:
        z = torch.randn_like(x0)
    std = sde.std(t)[:, None]
    return ((std * score(x0 + std * z, t) + z) ** 2).mean()


def sample(score: ScoreFn, sde: VESDE, noise: Tensor, steps: int,
           kind: Sampler = "euler_maruyama", eps: float = 1e-3) -> Tensor:
    """Integrate from t = 1 down to t = eps in ``steps`` steps (one score evaluation each).

    ``noise`` is (B, steps + 1, D) standard normal: ``noise[:, 0]`` draws x_1 ~ N(0, std(1)²),
    ``noise[:, k]`` is Euler–Maruyama's noise of step k (the ODE uses ``noise[:, 0]`` only).
    As in Song's sampler, the last step adds no noise (its mean is returned).
    """
    n = noise.shape[0]
    times = torch.linspace(1.0, eps, steps, device=noise.device, dtype=noise.dtype)
    dt = (1.0 - eps) / max(steps - 1, 1)
    x = noise[:, 0] * sde.std(times[:1])
    for k in range(steps):
        t = times[k].expand(n)
        g2 = sde.g(t)[:, None] ** 2
        if kind == "ode":
            x = x + 0.5 * g2 * score(x, t) * dt
            continue
        mean = x + g2 * score(x, t) * dt
        x = mean if k == steps - 1 else mean + math.sqrt(dt) * sde.g(t)[:, None] * noise[:, k + 1]
    return x
