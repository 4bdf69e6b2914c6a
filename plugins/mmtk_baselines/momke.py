"""MoMKE-style modality experts (Xu, Jiang, Liang, ACM MM 2024): unimodal experts, then a soft mixture.

Stage 1 (:class:`MoMKEExperts`): one expert network per modality, each trained with its own
classifier head on the samples that have its modality; the stage's prediction is the product
of the experts (used for validation selection only; it trains nothing). Stage 2
(:class:`MoMKEMixture`), initialised from stage 1: every available modality's representation
goes through *every* expert, a per-modality router mixes the experts' outputs with softmax
weights that depend on that representation and on which modalities the sample has, and a
residual MLP over the concatenated mixtures feeds the classifier. Stage 2 trains once, under a
training protocol covering every missing condition (the reference trains one model per test
condition).

mmtk's samples are single utterances: the reference experts' self-attention runs over the
utterances of a dialogue, which for one token reduces to its value projection, so an expert
layer here is ``x + v(x) + MLP(v(x))``, the reference block on one token.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmtk import Fuser, State

from .limits import Dropout, Size

ROUTER_WEIGHTS = "momke_router_weights"   # state.extras: (B, M, M), modality -> expert weights


class ExpertLayer(nn.Module):
    """One expert layer on one vector: a value projection plus a GELU MLP of it, added residually."""

    def __init__(self, dim: int, dropout: float):
        super().__init__()
        self.value = nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(dim, dim), nn.Dropout(dropout))

    def forward(self, x: Tensor) -> Tensor:
        v = self.value(x)
        return x + v + self.mlp(v)


def modality_experts(modalities: tuple[str, ...], dim: int, depth: int, dropout: float) -> nn.ModuleDict:
    """One expert (``depth`` expert layers) per modality; both stages build it the same way, so
    ``init_from`` carries ``fuser.experts.`` from stage 1 to stage 2 by name."""
    return nn.ModuleDict({m: nn.Sequential(*[ExpertLayer(dim, dropout) for _ in range(depth)])
                          for m in modalities})


def masked_mean_cross_entropy(logits: Tensor, labels: Tensor, cells: Tensor) -> Tensor:
    """Mean cross-entropy over the (sample, modality) ``cells``; logits (B, M, C). Rows with
    label -1 (unlabelled) must be left out of ``cells``; with no cell the loss is a 0 that
    is still part of the graph."""
    safe = labels.clamp_min(0)      # an unlabelled row's -1 is never scored (not in cells)
    per = F.cross_entropy(logits.flatten(0, 1), safe.repeat_interleave(logits.shape[1]),
                          reduction="none").view_as(cells)
    weight = cells.to(per.dtype)
    return (per * weight).sum() / weight.sum().clamp_min(1.0)


class MoMKEExperts(Fuser):
    """MoMKE's first stage: one expert and one classifier head per modality, trained unimodally.

    ``experts`` (needs labels) is the mean cross-entropy of every modality's own head over the
    labelled samples where that modality is represented: each expert learns only from its
    modality (a batch without labels gives 0). The
    fused output is the normalised product of the heads' probabilities over the represented
    modalities, computed from detached logits: it is the stage's prediction (read by the
    ``identity`` head and used for validation selection) and trains nothing, so the task loss
    adds no gradient and the experts are trained exactly by their own heads.

    Parameters:
        depth: expert layers per modality (the stage-2 fuser's ``depth`` must be the same)
        dropout: dropout on each modality's representation and inside the expert layers
    """

    aux_losses = ("experts",)
    needs_labels = True
    label_losses = ("experts",)

    def __init__(self, modalities: tuple[str, ...], latent_dim: int, num_classes: int,
                 depth: Size = 4, dropout: Dropout = 0.5):
        super().__init__()
        self.experts = modality_experts(tuple(modalities), latent_dim, depth, dropout)
        self.heads = nn.ModuleDict({m: nn.Linear(latent_dim, num_classes) for m in modalities})
        self.dropout = nn.Dropout(dropout)
        self.out_dim = num_classes

    @staticmethod
    def contract_partners() -> dict:
        return {"head": {"type": "baselines:identity"}}

    def forward(self, state: State) -> tuple[State, dict[str, Tensor]]:
        have = state.represented                                          # (B, M)
        logits = torch.stack([self.heads[m](self.experts[m](self.dropout(state.reps[m])))
                              for m in state.modalities], 1)             # (B, M, C)
        votes = F.log_softmax(logits.detach(), -1) * have[..., None].to(logits.dtype)
        state.fused = F.log_softmax(votes.sum(1), -1)
        losses = {}
        if state.labels is not None:
            scored = have & state.labeled[:, None]                        # labelled samples only
            losses["experts"] = masked_mean_cross_entropy(logits, state.labels, scored)
        return state, losses


class MoMKEMixture(Fuser):
    """MoMKE's second stage: a soft mixture of all modality experts for each available modality.

    For each modality m a router (Linear, GELU, Linear) reads m's representation and the
    sample's availability mask and gives softmax weights over the experts; m's output is the
    weighted sum of every expert applied to m's representation, zeros where m is not
    represented. The concatenated outputs ``x`` (modalities × latent_dim) become
    ``x + dropout(relu(Linear(x)))``, the classifier's input. Initialise ``experts`` from a
    ``momke_experts`` stage (``init_from`` without a map copies them by name).

    Parameters:
        depth: expert layers per modality, as in the ``momke_experts`` stage
        dropout: dropout on each representation, inside the expert layers and on the residual
        router_hidden: hidden width of each router
    """

    def __init__(self, modalities: tuple[str, ...], latent_dim: int, depth: Size = 4,
                 dropout: Dropout = 0.5, router_hidden: Size = 128):
        super().__init__()
        self.modalities = tuple(modalities)
        count = len(self.modalities)
        self.experts = modality_experts(self.modalities, latent_dim, depth, dropout)
        self.routers = nn.ModuleDict({m: nn.Sequential(nn.Linear(latent_dim + count, router_hidden), nn.GELU(),
                                                       nn.Linear(router_hidden, count))
                                      for m in self.modalities})
        self.joint = nn.Linear(count * latent_dim, count * latent_dim)
        self.dropout = nn.Dropout(dropout)
        self.out_dim = count * latent_dim

    def forward(self, state: State) -> tuple[State, dict[str, Tensor]]:
        have = state.represented
        availability = have.to(state.reps[self.modalities[0]].dtype)
        mixed, weights = [], []
        for i, m in enumerate(self.modalities):
            rep = self.dropout(state.reps[m])
            outs = torch.stack([self.experts[e](rep) for e in self.modalities], 1)   # (B, E, L)
            weight = torch.softmax(self.routers[m](torch.cat([rep, availability], -1)), -1)
            mixture = (weight[..., None] * outs).sum(1)
            mixed.append(torch.where(have[:, i:i + 1], mixture, torch.zeros_like(mixture)))
            weights.append(weight)
        joint = torch.cat(mixed, -1)
        state.fused = joint + self.dropout(F.relu(self.joint(joint)))
        state.extras = {**state.extras, ROUTER_WEIGHTS: torch.stack(weights, 1)}
        return state, {}
