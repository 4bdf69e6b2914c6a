"""Cross-modal attention fusion: modality representations attend to one another."""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmtk import Fuser, MmtkError, State
from mmtk.ops import masked_mean

from .limits import Dropout, Size


class CrossModalLayer(nn.Module):
    """Post-norm transformer layer over modality tokens with a key mask (B, M) bool.

    Written out (not ``nn.TransformerEncoderLayer``) so training and evaluation follow the
    same arithmetic: torch's fast path treats padded tokens differently at inference.
    """

    def __init__(self, dim: int, heads: int, ffn_ratio: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, dim * ffn_ratio), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(dim * ffn_ratio, dim))
        self.drop = nn.Dropout(dropout)
        self.attn_dropout = dropout

    def forward(self, x: Tensor, keys: Tensor) -> Tensor:
        b, m, d = x.shape
        q, k, v = self.qkv(x).view(b, m, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        mask = keys[:, None, None, :]                    # (B, 1, 1, M): True = may attend
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                           dropout_p=self.attn_dropout if self.training else 0.0)
        x = self.norm1(x + self.drop(self.out(a.transpose(1, 2).reshape(b, m, d))))
        return self.norm2(x + self.drop(self.ffn(x)))


class CrossAttentionFuser(Fuser):
    """Cross-modal attention over the modality representations, then pooling.

    Each modality's representation (plus a learned modality embedding) is a token; every
    token attends to the usable tokens: the modalities that have a representation
    (``state.represented``: present, or filled in by any reconstructor). With
    ``mask_absent: false`` every modality is usable (zero-filled semantics, as in the concat
    baseline). ``pool: concat`` concatenates the
    tokens in sorted modality order (unusable ones as zeros), ``mean`` averages usable ones.

    Parameters:
        heads: attention heads (must divide latent_dim)
        layers: transformer layers over the modality tokens
        ffn_ratio: feed-forward width, as a multiple of latent_dim
        dropout: dropout in attention and feed-forward layers
        pool: concat (out_dim = modalities x latent_dim, unusable tokens as zeros) or mean of
            the usable tokens
        mask_absent: hide modalities without a representation (false: every modality is used,
            zero-filled ones included)
    """

    def __init__(self, modalities: tuple[str, ...], latent_dim: int, heads: Size = 4,
                 layers: Size = 1, ffn_ratio: Size = 2, dropout: Dropout = 0.1,
                 pool: Literal["concat", "mean"] = "concat", mask_absent: bool = True):
        super().__init__()
        if latent_dim % heads:
            raise MmtkError(f"fuser cross_attention: latent_dim {latent_dim} is not divisible by "
                            f"heads={heads}; choose heads that divide the model's latent_dim")
        if layers < 1 or ffn_ratio < 1:
            raise MmtkError(f"fuser cross_attention: layers ({layers}) and ffn_ratio ({ffn_ratio}) "
                            "must be >= 1")
        self.modalities = tuple(sorted(modalities))
        self.embed = nn.Parameter(torch.zeros(len(self.modalities), latent_dim))
        nn.init.normal_(self.embed, std=0.02)
        self.layers = nn.ModuleList(CrossModalLayer(latent_dim, heads, ffn_ratio, dropout)
                                    for _ in range(layers))
        self.pool, self.mask_absent = pool, mask_absent
        self.out_dim = latent_dim * len(self.modalities) if pool == "concat" else latent_dim

    def forward(self, state: State) -> tuple[State, dict[str, Tensor]]:
        tokens = torch.stack([state.reps[m] for m in state.modalities], 1) + self.embed
        usable = state.represented if self.mask_absent else torch.ones_like(state.present)
        usable = usable | ~usable.any(1, keepdim=True)   # a sample with nothing usable: use all
        for layer in self.layers:
            tokens = layer(tokens, usable)
        if self.pool == "concat":
            state.fused = (tokens * usable[..., None]).flatten(1)
        else:
            state.fused = masked_mean(tokens, usable)
        return state, {}
