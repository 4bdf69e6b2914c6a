"""Late fusion (a product of experts over the available modalities): the reference a user picks first.

One classifier per modality, each trained on the samples that have that modality; a sample's
prediction sums the log-probabilities of the modalities it has (equivalently, multiplies the
experts' probabilities and renormalises). With the ``linear`` encoder every expert is a
multinomial logistic regression on its modality's features. Nothing is imputed and nothing is
reconstructed: an absent modality simply casts no vote.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmtk import Fuser, MmtkError, State
from mmtk.ops import masked_mean, sequence_mask


class LinearEncoder(nn.Module):
    """One linear map of the features (no non-linearity); frame sequences are mean-pooled first."""

    def __init__(self, in_dim: int, latent_dim: int):
        super().__init__()
        self.net = nn.Linear(in_dim, latent_dim)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        if x.dim() == 3:
            x = masked_mean(x, sequence_mask(x, lengths))
        return self.net(x)


class LateFusion(Fuser):
    """Sum of per-modality log-probabilities over the modalities a sample has.

    Each modality has its own linear classifier on its representation. In training each expert
    also gets its own cross-entropy on the samples that have its modality (the auxiliary loss
    ``fuser/experts``, on labelled samples only), so every expert is a classifier in its own
    right, as when one classifier per modality is trained separately. The fused output is the normalised product of the
    experts, read by the ``identity`` head as class logits.

    Parameters:
        learn_weights: also learn one non-negative weight per modality for its vote (the
            learnt fusion on top); false: every expert votes with weight 1
    """

    aux_losses = ("experts",)
    needs_labels = True

    def __init__(self, modalities: tuple[str, ...], latent_dim: int, num_classes: int,
                 learn_weights: bool = False):
        super().__init__()
        self.experts = nn.ModuleDict({m: nn.Linear(latent_dim, num_classes) for m in modalities})
        self.log_weights = nn.Parameter(torch.zeros(len(modalities))) if learn_weights else None
        self.out_dim = num_classes

    def forward(self, state: State) -> tuple[State, dict[str, Tensor]]:
        have = state.represented.float()                                   # (B, M)
        logits = torch.stack([self.experts[m](state.reps[m]) for m in state.modalities], 1)  # (B, M, C)
        logp = F.log_softmax(logits, -1)
        weights = have if self.log_weights is None else have * self.log_weights.exp()
        state.fused = F.log_softmax((weights[..., None] * logp).sum(1), -1)
        losses = {}
        if state.labels is not None:
            labels = state.labels.clamp_min(-1)                            # -1: unlabelled, ignored
            per = F.cross_entropy(logits.flatten(0, 1), labels.repeat_interleave(len(state.modalities)),
                                  reduction="none", ignore_index=-1).view_as(have)
            scored = have * state.labeled[:, None]
            losses["experts"] = (per * scored).sum() / scored.sum().clamp_min(1.0)
        return state, losses


class IdentityHead(nn.Module):
    """Passes the fuser's output through as the logits (its width must be the class count)."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        if in_dim != out_dim:
            raise MmtkError(f"head 'identity' passes the fuser's {in_dim} values through, but the task "
                            f"needs {out_dim} per sample; use it after a fuser whose output is the "
                            "class scores (e.g. late_fusion)")

    def forward(self, fused: Tensor) -> Tensor:
        return fused

    @staticmethod
    def contract_partners() -> dict:
        """The contract test's pipeline: a fuser whose output is the class scores."""
        return {"fuser": {"type": "baselines:late_fusion"}}
