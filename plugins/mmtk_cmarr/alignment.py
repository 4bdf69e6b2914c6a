"""Phase 1 — unsupervised distribution-based alignment (CM-ARR's UMC + W2-InfoNCE).

Each modality's representation becomes a diagonal Gaussian (mean, log-variance) through its
own :class:`GaussianBlock`. The aligner pulls together the Gaussians of different modalities
of the same sample and pushes apart those of other samples, with an InfoNCE over the
closed-form 2-Wasserstein distance. No labels are used.
"""
from __future__ import annotations

import itertools
import math
from typing import Annotated, Literal

import torch
from torch import Tensor, nn

from mmtk import Ge, MmtkError, Slot, State
from mmtk.ops import zero_loss

from .limits import Dropout, NonNegative, Positive, Real, Size, Temperature
from .maths import entropy_margin_loss, w2_infonce


def _mlp(dim: int, ratio: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, dim * ratio), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(dim * ratio, dim), nn.Dropout(dropout))


class GaussianBlock(nn.Module):
    """Vector (B, D) -> Gaussian (mu, logvar), each (B, D).

    Template: MAP's probability distribution encoder. The pooled vector is expanded into
    ``tokens`` tokens (Linear → GELU → LayerNorm) so that multi-head self-attention has a
    set to attend over; the mean-pooled attention output feeds two linear heads. The mean
    keeps a residual from the input; each head is refined by a pre-norm MLP residual.

    ``layer_scale`` (LayerScale, Touvron et al., "Going deeper with image transformers",
    ICCV 2021): when set, the two residual branches of the mean are multiplied by learned
    per-channel factors starting at this value, so a block that starts near 0 starts near the
    identity on the mean and grows only as far as training asks. Why it is offered: with
    ~200 labelled samples the full-strength block cost CM-ARR about four points (README).
    """

    def __init__(self, dim: int, tokens: int = 4, heads: int = 4, mlp_ratio: int = 4,
                 dropout: float = 0.1, logvar_clamp: float = 8.0, layer_scale: float | None = None):
        super().__init__()
        if dim % heads:
            raise MmtkError(f"gaussian block: latent_dim {dim} is not divisible by heads={heads}; "
                            "choose heads that divide the model's latent_dim")
        if tokens < 1 or mlp_ratio < 1:
            raise MmtkError(f"gaussian block: tokens ({tokens}) and mlp_ratio ({mlp_ratio}) must be >= 1")
        self.dim, self.tokens, self.logvar_clamp = dim, tokens, logvar_clamp
        self.expand = nn.Linear(dim, dim * tokens)
        self.act = nn.GELU()
        self.norm = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, bias=False, batch_first=True)
        self.to_mu = nn.Linear(dim, dim)
        self.to_logvar = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)
        self.norm_mu, self.norm_logvar = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.mlp_mu, self.mlp_logvar = _mlp(dim, mlp_ratio, dropout), _mlp(dim, mlp_ratio, dropout)
        if layer_scale is not None:
            self.scale_attn = nn.Parameter(torch.full((dim,), float(layer_scale)))
            self.scale_mlp = nn.Parameter(torch.full((dim,), float(layer_scale)))
        else:   # the shipped block: no extra parameters, so its checkpoints load as before
            self.scale_attn = self.scale_mlp = None

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.norm(self.act(self.expand(x)).view(x.shape[0], self.tokens, self.dim))
        a, _ = self.attn(h, h, h, need_weights=False)
        a = a.mean(1)
        attn_branch = self.drop(self.to_mu(a))
        mu = x + (attn_branch if self.scale_attn is None else self.scale_attn * attn_branch)
        mlp_branch = self.mlp_mu(self.norm_mu(mu))
        mu = mu + (mlp_branch if self.scale_mlp is None else self.scale_mlp * mlp_branch)
        logvar = self.drop(self.to_logvar(a))
        logvar = logvar + self.mlp_logvar(self.norm_logvar(logvar))
        # bounded so exp(logvar) can neither overflow nor vanish
        return mu, logvar.clamp(-self.logvar_clamp, self.logvar_clamp)


class IdentityGaussianHead(nn.Module):
    """Vector (B, D) -> Gaussian (mu, logvar) with no block: the mean is the input itself and
    the log-variance one linear map of it.

    Not in the paper. Offered so the alignment can be kept while the block is removed: the
    README's ablations found the block, not the alignment, costing CM-ARR about four points with
    180 labelled samples, in both the shared- and the private-signal setting.
    """

    def __init__(self, dim: int, logvar_clamp: float = 8.0):
        super().__init__()
        self.logvar_clamp = logvar_clamp
        self.to_logvar = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x, self.to_logvar(x).clamp(-self.logvar_clamp, self.logvar_clamp)


class GaussianW2Aligner(Slot):
    """Per-modality Gaussian blocks + InfoNCE over 2-Wasserstein distances (unsupervised).

    Sets ``state.gaussians[m] = (mu, logvar)`` and ``state.reps[m] = mu``. In training it
    emits ``w2_nce`` (mean over the modality pairs that have at least ``min_pairs`` samples
    with both modalities present) and, when ``entropy_margin`` is set, ``entropy``.

    Parameters:
        tokens: tokens the pooled vector is expanded into, so self-attention has a set to attend
            over
        heads: attention heads of each Gaussian block (must divide latent_dim)
        mlp_ratio: hidden width of the residual MLPs, as a multiple of latent_dim
        dropout: dropout in attention, heads and MLPs
        temperature: initial InfoNCE temperature (> 0)
        learn_temperature: learn the temperature (as its logarithm) instead of keeping it fixed
        min_temperature: lower bound of the learned temperature
        scale: factor on the W2 distances in the logits; null = 1 / latent_dim
        squared: contrast squared W2 distances (false: W2)
        entropy_margin: per-dimension entropy (nats) below which a Gaussian is penalised by the
            entropy loss; null: no entropy loss
        min_pairs: fewest samples with both modalities present for a modality pair to be
            contrasted
        logvar_clamp: bound on the absolute log-variance
        layer_scale: initial per-channel factor on the residual branches of each block's mean
            (LayerScale); small values start the block near the identity on the mean; null:
            branches at full strength
        block: attention (MAP's Gaussian block) or identity (no block: the mean is the encoder's
            output, the log-variance a linear map of it; tokens, heads, mlp_ratio, dropout and
            layer_scale then have no effect)
    """

    aux_losses = ("w2_nce", "entropy")

    def __init__(self, modalities: tuple[str, ...], latent_dim: int, tokens: Size = 4,
                 heads: Size = 4, mlp_ratio: Size = 4, dropout: Dropout = 0.1,
                 temperature: Temperature = 0.07, learn_temperature: bool = True,
                 min_temperature: Temperature = 0.01, scale: Positive | None = None,
                 squared: bool = True, entropy_margin: Real | None = None,
                 min_pairs: Annotated[int, Ge(2)] = 2, logvar_clamp: Positive = 8.0,
                 layer_scale: NonNegative | None = None,
                 block: Literal["attention", "identity"] = "attention"):
        super().__init__()
        if temperature <= 0 or min_temperature <= 0:
            raise MmtkError(f"aligner gaussian_w2: temperature ({temperature}) and min_temperature "
                            f"({min_temperature}) must be > 0")
        if scale is not None and scale <= 0:
            raise MmtkError(f"aligner gaussian_w2: scale must be > 0 or null (1/latent_dim), got {scale}")
        if min_pairs < 2:
            raise MmtkError(f"aligner gaussian_w2: min_pairs must be >= 2 (a contrast needs at "
                            f"least one negative), got {min_pairs}")
        self.modalities = tuple(sorted(modalities))
        if block == "identity":
            self.blocks = nn.ModuleDict({m: IdentityGaussianHead(latent_dim, logvar_clamp)
                                         for m in self.modalities})
        else:
            self.blocks = nn.ModuleDict({m: GaussianBlock(latent_dim, tokens, heads, mlp_ratio,
                                                          dropout, logvar_clamp, layer_scale)
                                         for m in self.modalities})
        log_t = torch.tensor(math.log(temperature))
        if learn_temperature:
            self.log_temperature = nn.Parameter(log_t)
        else:
            self.register_buffer("log_temperature", log_t)
        self.min_log_temperature = math.log(min_temperature)
        self.scale = scale if scale is not None else 1.0 / latent_dim
        self.squared, self.entropy_margin, self.min_pairs = squared, entropy_margin, min_pairs

    @property
    def temperature(self) -> Tensor:
        return self.log_temperature.clamp_min(self.min_log_temperature).exp()

    def forward(self, state: State) -> tuple[State, dict[str, Tensor]]:
        gaussians = {m: self.blocks[m](state.reps[m]) for m in state.modalities}
        state.gaussians = {**state.gaussians, **gaussians}
        state.reps = {**state.reps, **{m: g[0] for m, g in gaussians.items()}}
        if not state.training:
            return state, {}
        anchor = next(iter(gaussians.values()))[0]
        pair_losses = []
        for (i, m), (j, n) in itertools.combinations(enumerate(state.modalities), 2):
            both = state.present[:, i] & state.present[:, j]
            if int(both.sum()) < self.min_pairs:
                continue
            (mu_m, lv_m), (mu_n, lv_n) = gaussians[m], gaussians[n]
            pair_losses.append(w2_infonce(mu_m[both], lv_m[both], mu_n[both], lv_n[both],
                                          self.temperature, self.scale, self.squared))
        losses = {"w2_nce": torch.stack(pair_losses).mean() if pair_losses else zero_loss(anchor)}
        if self.entropy_margin is not None:
            terms = [entropy_margin_loss(gaussians[m][1][state.present[:, i]], self.entropy_margin)
                     for i, m in enumerate(state.modalities) if bool(state.present[:, i].any())]
            losses["entropy"] = torch.stack(terms).mean() if terms else zero_loss(anchor)
        return state, losses
