"""IF-MMIN (Zuo et al., ICASSP 2023): MMIN's imagination guided by modality-invariant features.

Stage 1 of the recipe trains the encoders, one *shared* invariant encoder applied to every
modality's embedding, and a classifier on ``[specific ; invariant]``
(:class:`IFMMINInvariant`): cross-entropy plus the central moment discrepancy (CMD) between the
invariant features of every pair of modalities, so that the shared encoder maps each modality
into one common distribution. Stage 2 runs :class:`IFMMINImagination` as the reconstructor: the
invariant features of the observed (masked) embedding are added to the input of every block of
the imagination cascade, the forward loss ``mse`` is MMIN's (frozen teacher, see ``mmin.py``),
and ``invariant`` pulls the invariant features of the masked input towards those the frozen
stage-1 teacher gives for the complete input. MMIN's ``mmin_latents`` fuser hands the cascade's
bottlenecks to the classifier. No loss here needs labels.
"""
from __future__ import annotations

from dataclasses import replace
from itertools import combinations
from typing import Any

import torch
from torch import Tensor, nn

from mmtk import Fuser, MmtkError, Slot, State

from .autoencoders import AutoEncoder, check_layers
from .limits import Dropout, LayerSizes, Moments, Size
from .mmin import IMAGINED, LATENTS, TeacherImaginationContract, guard_pretrained_load, teacher_target

MIN_ROWS = 2                      # a central moment needs at least two samples


def central_moment_discrepancy(x1: Tensor, x2: Tensor, moments: int = 5) -> Tensor:
    """CMD between two samples (N1, D) and (N2, D) of features, orders 1..``moments``.

    ``||E x1 - E x2||_2 + sum_{k=2..K} ||c_k(x1) - c_k(x2)||_2`` with ``c_k`` the per-dimension
    k-th central moment (Zellinger et al., ICLR 2017, without their 1/|b-a|^k scaling of
    bounded features, as in IF-MMIN's and MISA's code). The rows of the two samples need not
    correspond: CMD compares distributions.
    """
    x1, x2 = x1.float(), x2.float()
    mean1, mean2 = x1.mean(0), x2.mean(0)
    total = torch.linalg.vector_norm(mean1 - mean2)
    centred1, centred2 = x1 - mean1, x2 - mean2
    for k in range(2, moments + 1):
        total = total + torch.linalg.vector_norm(centred1.pow(k).mean(0) - centred2.pow(k).mean(0))
    return total


def pairwise_cmd(samples: list[Tensor], moments: int) -> Tensor | None:
    """Mean CMD over the pairs of samples that both have ``MIN_ROWS`` rows; None if no pair does."""
    usable = [s for s in samples if s.shape[0] >= MIN_ROWS]
    pairs = [central_moment_discrepancy(a, b, moments) for a, b in combinations(usable, 2)]
    return torch.stack(pairs).mean() if pairs else None


class InvariantEncoder(nn.Module):
    """The shared encoder: ``depth`` × (Linear(L, L) + LeakyReLU), IF-MMIN's default variant."""

    def __init__(self, latent_dim: int, depth: int):
        super().__init__()
        self.net = nn.Sequential(*[layer for _ in range(depth)
                                   for layer in (nn.Linear(latent_dim, latent_dim), nn.LeakyReLU())])

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class IFMMINInvariant(Fuser):
    """IF-MMIN's pretraining fuser: [specific ; invariant] features, CMD between modalities.

    One shared encoder maps every modality's representation to an invariant feature; the fused
    vector is the representations followed by their invariant features (sorted modality order,
    2 × modalities × latent_dim wide). In training, ``cmd`` is the mean CMD between the invariant
    features of every pair of modalities, each taken over the samples where that modality is
    represented (at least two). Label-free: unlabelled samples count too.

    Parameters:
        depth: layers (Linear + LeakyReLU) of the shared invariant encoder; the stage-2
            reconstructor's ``depth`` must be the same
        moments: highest central moment K compared by CMD (1 compares the means only)
    """

    aux_losses = ("cmd",)

    def __init__(self, modalities: tuple[str, ...], latent_dim: int, depth: Size = 2,
                 moments: Moments = 5):
        super().__init__()
        self.shared = InvariantEncoder(latent_dim, depth)
        self.moments = moments
        self.out_dim = 2 * latent_dim * len(modalities)

    def forward(self, state: State) -> tuple[State, dict[str, Tensor]]:
        invariant = [self.shared(state.reps[m]) for m in state.modalities]
        state.fused = torch.cat([*(state.reps[m] for m in state.modalities), *invariant], -1)
        losses = {}
        if state.training:
            have = state.represented
            cmd = pairwise_cmd([inv[have[:, i]] for i, inv in enumerate(invariant)], self.moments)
            if cmd is not None:
                losses["cmd"] = cmd
        return state, losses


class InvariantCascadeAE(nn.Module):
    """IF-MMIN's imagination cascade: every block's input is the previous block's output plus
    the invariant features (the first block's: the observed embedding plus them).

    Returns ``(imagined (B, dim), latents (B, blocks * layers[-1]))``: a two-layer transition
    MLP of the last block's output, and the blocks' bottlenecks in block order.
    """

    def __init__(self, dim: int, layers: list[int], blocks: int, dropout: float = 0.0):
        super().__init__()
        self.blocks = nn.ModuleList(AutoEncoder(dim, layers, dropout) for _ in range(blocks))
        self.transition = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))
        self.latent_dim = blocks * layers[-1]

    def forward(self, observed: Tensor, invariant: Tensor) -> tuple[Tensor, Tensor]:
        out, latents = observed, []
        for block in self.blocks:
            out, latent = block(out + invariant)
            latents.append(latent)
        return self.transition(out), torch.cat(latents, -1)


class IFMMINImagination(TeacherImaginationContract, Slot):
    """IF-MMIN's imagination: invariant features added to every cascade block, frozen teacher.

    Needs the stage-1 weights of ``if_mmin_invariant``: ``init_from`` maps ``encoders.`` to
    ``encoders.`` and ``reconstructor.teacher.``, and ``fuser.shared.`` to
    ``reconstructor.invariant.`` and ``reconstructor.teacher_invariant.``. The teacher and its
    invariant encoder never train (their parameters need no gradient and they stay in eval
    mode); with ``pretrained_teacher: true`` (default) training refuses to start while either
    was never loaded.

    Training only: ``mse`` is MMIN's forward loss (MSE between the imagined embedding and the
    teacher's embedding of the complete inputs with the available modalities zeroed);
    ``invariant`` is the MSE between the invariant features of the observed embedding and the
    teacher's invariant features of the complete inputs, over the modalities the data has.
    Absent modalities' representations become their part of the imagination (marked in
    ``state.represented``); the cascade's bottlenecks go to ``mmin_latents``.

    Parameters:
        layers: encoder layer sizes of each autoencoder block, the last one being the bottleneck
        blocks: autoencoder blocks in the cascade
        dropout: dropout probability between the autoencoders' layers
        depth: layers of the invariant encoder: the stage-1 fuser's ``depth``
        pretrained_teacher: refuse to train while the teacher or its invariant encoder was never
            loaded from a pretraining stage
    """

    aux_losses = ("mse", "invariant")
    needs_targets = True
    NAME = "reconstructor 'if_mmin_imagination'"

    def __init__(self, modalities: tuple[str, ...], latent_dim: int, build_encoder: Any,
                 layers: LayerSizes = (256, 128, 64), blocks: Size = 5, dropout: Dropout = 0.0,
                 depth: Size = 2, pretrained_teacher: bool = True):
        super().__init__()
        layers = check_layers(layers, blocks, self.NAME)
        self.modalities = tuple(modalities)
        self.cascade = InvariantCascadeAE(latent_dim * len(self.modalities), layers, blocks, dropout)
        self.invariant = InvariantEncoder(latent_dim, depth)
        self.teacher = nn.ModuleDict({m: build_encoder(m) for m in self.modalities})
        self.teacher_invariant = InvariantEncoder(latent_dim, depth)
        for fixed in (self.teacher, self.teacher_invariant):
            fixed.requires_grad_(False)   # fixed targets, trained in stage 1
        self.pretrained_teacher = pretrained_teacher
        self.register_buffer("teacher_loaded", torch.zeros((), dtype=torch.bool))
        self.register_buffer("teacher_invariant_loaded", torch.zeros((), dtype=torch.bool))
        guard_pretrained_load(self.teacher, self.teacher_loaded, self.NAME, "the teacher",
                              "make model.encoders the same encoder blocks (types and parameters) "
                              "as in the pretraining stage")
        guard_pretrained_load(self.teacher_invariant, self.teacher_invariant_loaded, self.NAME,
                              "the teacher's invariant encoder", "set this reconstructor's depth "
                              "to the pretraining fuser's depth")
        self.train()

    def train(self, mode: bool = True) -> "IFMMINImagination":
        super().train(mode)
        self.teacher.eval()             # fixed targets: no dropout, ever
        self.teacher_invariant.eval()
        return self

    def _require_teacher(self) -> None:
        if self.pretrained_teacher and not (bool(self.teacher_loaded) and bool(self.teacher_invariant_loaded)):
            raise MmtkError(
                f"{self.NAME}: the teacher or its invariant encoder was never loaded from a "
                "pretraining stage; add to this stage init_from: {stage: NAME, map: {\"encoders.\": "
                "[\"encoders.\", \"reconstructor.teacher.\"], \"fuser.shared.\": "
                "[\"reconstructor.invariant.\", \"reconstructor.teacher_invariant.\"]}} after a "
                "stage whose fuser is if_mmin_invariant, and freeze: [reconstructor.teacher, "
                "reconstructor.teacher_invariant] (or set pretrained_teacher: false to train "
                "against a random teacher on purpose)")

    def _invariant_target(self, state: State) -> tuple[Tensor, Tensor]:
        """Teacher's invariant features of the complete inputs (B, M*L), and where they count."""
        targets = state.targets
        parts, weights = [], []
        with torch.no_grad():
            for i, m in enumerate(self.modalities):
                rep = self.teacher_invariant(self.teacher[m](targets.inputs[m], targets.lengths.get(m)))
                parts.append(rep)
                weights.append(targets.available[:, i:i + 1].expand_as(rep).to(rep.dtype))
        return torch.cat(parts, -1), torch.cat(weights, -1)

    def _losses(self, state: State, imagined: Tensor, invariant: Tensor) -> dict[str, Tensor]:
        self._require_teacher()
        losses = {}
        for name, guess, (target, weight) in (
                ("mse", imagined, teacher_target(self.teacher, self.modalities, state)),
                ("invariant", invariant, self._invariant_target(state))):
            sq = (guess.float() - target.float()) ** 2
            losses[name] = (sq * weight).sum() / weight.sum().clamp_min(1.0)
        return losses

    def forward(self, state: State) -> tuple[State, dict[str, Tensor]]:
        observed = torch.cat([state.reps[m] for m in self.modalities], -1)
        invariant = torch.cat([self.invariant(state.reps[m]) for m in self.modalities], -1)
        imagined, latents = self.cascade(observed, invariant)
        reps = dict(state.reps)
        for i, (m, guess) in enumerate(zip(self.modalities, imagined.chunk(len(self.modalities), -1))):
            reps[m] = torch.where(state.present[:, i:i + 1], reps[m], guess)
        losses = self._losses(state, imagined, invariant) if state.targets is not None else {}
        extras = {**state.extras, LATENTS: latents, IMAGINED: imagined}
        return replace(state, reps=reps, represented=torch.ones_like(state.present),
                       extras=extras), losses
