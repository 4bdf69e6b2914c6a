"""DiCMoR-style distribution-consistent recovery (Wang, Cui, Li; ICCV 2023).

Every modality has its own normalizing flow into one latent space shared by all modalities,
where each class is a Gaussian (class means and scales learnt). A missing modality m of a
sample is recovered from each available modality n by the inverse of m's OWN flow applied to
n's latent: ``from_latent(flow_m, to_latent(flow_n, x_n))``; with two available, both
recoveries are averaged; a residual MLP then refines the result.
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from mmtk import Slot, State
from mmtk.ops import zero_loss

from .filling import fill_missing
from .flows import from_latent, import_normflows, latent_log_prob, make_flow, to_latent
from .limits import Clamp, Size
from .precision import float32, full
from .refinement import refiners


class DiCMoRFlow(Slot):
    """DiCMoR-style recovery: per-modality flows into class-conditional Gaussian latents.

    A missing modality is recovered by the inverse of its own flow applied to the latent of
    each available modality (several available: their recoveries averaged), then refined by
    a residual MLP; present modalities pass through unchanged and recovered ones are marked
    in ``state.represented``. Training only: ``nll``, the negative log-likelihood per
    dimension of the present representations of labelled samples under their modality's
    flow and their class's Gaussian; ``nll_unlabelled``, the same for unlabelled samples
    (label -1) under the equal-weight mixture of the class Gaussians (a label-free loss;
    weight 0 leaves them out); ``rec``, the MSE between each refined recovery and the true,
    detached representation of the complete input, only for modalities the data really has
    (``targets.available``).

    Parameters:
        blocks: flow steps per modality (affine coupling + learnt invertible linear map)
        hidden: width of the coupling networks
        scale_map: how coupling scales are bounded: sigmoid (Glow) or exp (RealNVP)
        scale_clamp: soft bound of the coupling nets' scale outputs, clamp·tanh(s/clamp), so a
            recovery (a flow run forwards on another modality's latent) cannot overflow;
            null: unbounded (the reference's flows; can end in NaN, see the plugin README)
        refine: refine each recovery with a residual MLP
        refine_hidden: width of the refinement MLP
        detach_nll_input: nll trains the flows only and does not pull the representations
            towards them (the reference code's encoders are frozen there)
        detach_recovery: recoveries are detached from the flows (as in the reference code), so
            the flows learn from nll only and rec and the task loss train the refinement
        target_after: what rec compares a recovery with: the complete input's representation
            after the encoders or after the aligner
    """

    aux_losses = ("nll", "nll_unlabelled", "rec")
    label_losses = ("nll",)   # the class's Gaussian needs the label; the mixture does not
    needs_targets = True
    needs_labels = True

    def __init__(self, modalities: tuple[str, ...], latent_dim: int, num_classes: int,
                 blocks: Size = 4, hidden: Size = 128,
                 scale_map: Literal["sigmoid", "exp"] = "sigmoid", scale_clamp: Clamp | None = 3.0,
                 refine: bool = True,
                 refine_hidden: Size = 128,
                 detach_nll_input: bool = True, detach_recovery: bool = True,
                 target_after: Literal["encoders", "aligner"] = "aligner"):
        super().__init__()
        nf = import_normflows()
        self.modalities = tuple(sorted(modalities))
        self.dim = latent_dim
        self.target_after = target_after
        self.detach_nll_input, self.detach_recovery = detach_nll_input, detach_recovery
        # one class-conditional latent shared by every modality's flow (DiCMoR's priors are
        # shared by the three flows): a common space where recovery can cross modalities
        self.prior = nf.distributions.ClassCondDiagGaussian(latent_dim, max(num_classes, 1))
        self.flows = nn.ModuleDict({m: make_flow(latent_dim, blocks, hidden, scale_map, scale_clamp)
                                    for m in self.modalities})
        self.refiners = refiners(self.modalities, latent_dim, refine_hidden) if refine else None

    # -- pieces ------------------------------------------------------------------------------
    def log_prob(self, modality: str, x: Tensor, labels: Tensor) -> Tensor:
        """log p(x) per sample under ``modality``'s flow (label -1: the class mixture)."""
        with float32(x):
            z, log_det = to_latent(self.flows[modality], full(x))
            return latent_log_prob(self.prior, z, labels) + log_det

    def translate(self, source: str, target: str, x: Tensor) -> Tensor:
        """``target``'s representation recovered from ``source``'s: the inverse of target's
        own flow on source's latent."""
        with float32(x):
            z, _ = to_latent(self.flows[source], full(x))
            return from_latent(self.flows[target], z)

    def recover(self, state: State, target: str, rows: Tensor) -> Tensor:
        """(len(rows), D): ``target`` recovered for the given rows from every modality
        present there, averaged, then refined."""
        i = self.modalities.index(target)
        like = full(state.reps[target])
        total = torch.zeros(len(rows), self.dim, dtype=like.dtype, device=like.device)
        count = torch.zeros(len(rows), 1, dtype=total.dtype, device=total.device)
        for j, source in enumerate(self.modalities):
            have = state.present[rows, j] if j != i else torch.zeros_like(rows, dtype=torch.bool)
            if not bool(have.any()):
                continue
            at = have.nonzero().squeeze(1)
            guess = self.translate(source, target, state.reps[source][rows[at]])
            total = total.index_add(0, at, guess)
            count = count.index_add(0, at, torch.ones_like(guess[:, :1]))
        guess = total / count.clamp_min(1)
        if self.detach_recovery:
            guess = guess.detach()
        return self.refiners[target](guess) if self.refiners is not None else guess

    # -- the slot ----------------------------------------------------------------------------
    def forward(self, state: State) -> tuple[State, dict[str, Tensor]]:
        truth = state.targets.reps(after=self.target_after) if state.targets is not None else None
        new_state, rec_terms = fill_missing(state, self.modalities,
                                            lambda m, rows: self.recover(state, m, rows), truth)
        if not state.training:
            return new_state, {}
        anchor = state.reps[self.modalities[0]]
        losses = {}
        if state.labels is not None:   # a label-free prefix run: no likelihood is guessed
            labelled = state.labels >= 0   # = state.labeled (the label contract)
            losses["nll"] = self._nll(state, labelled, anchor)
            losses["nll_unlabelled"] = self._nll(state, ~labelled, anchor)
        if truth is not None:
            losses["rec"] = torch.stack(rec_terms).mean() if rec_terms else zero_loss(anchor)
        return new_state, losses

    def _nll(self, state: State, samples: Tensor, anchor: Tensor) -> Tensor:
        """Mean negative log-likelihood per dimension of the present representations of
        ``samples`` (labelled ones: their class's Gaussian; unlabelled: the mixture)."""
        terms = []
        for i, m in enumerate(self.modalities):
            rows = state.present[:, i] & samples
            if not bool(rows.any()):
                continue
            x = state.reps[m][rows]
            x = x.detach() if self.detach_nll_input else x
            terms.append(-self.log_prob(m, x, state.labels[rows]).mean() / self.dim)
        return torch.stack(terms).mean() if terms else zero_loss(anchor)
