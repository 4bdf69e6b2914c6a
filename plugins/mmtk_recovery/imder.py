"""IMDer-style diffusion recovery (Wang et al., "Incomplete Multimodality-Diffused Emotion
Recognition", NeurIPS 2023).

Every modality has a score network for a variance-exploding SDE, conditioned on the
representations of the modalities available in the sample (masked by availability). A
missing modality is recovered by sampling its representation from noise with that network,
then refined by a residual MLP. At evaluation the sampling noise is fixed and seeded
(:mod:`.noise`), so evaluation is deterministic and repeatable.
"""
from __future__ import annotations

from typing import Literal, Optional

import torch
from torch import Tensor, nn

from mmtk import Slot, State
from mmtk.ops import zero_loss

from .filling import fill_missing
from .limits import Seed, SigmaMax, Size, TimeEps
from .noise import FixedNoise
from .precision import float32, full
from .refinement import refiners
from .score_net import RunningStandardizer, ScoreNet, condition
from .vesde import VESDE, Sampler, dsm_loss, sample


class IMDerDiffusion(Slot):
    """IMDer-style recovery: a conditional score network per modality for a VE SDE.

    A missing modality's representation is sampled from noise by the reverse SDE
    (Euler–Maruyama) or the probability-flow ODE in ``steps`` steps, the score network
    conditioned on the sample's available modalities, then refined by a residual MLP;
    present modalities pass through and recovered ones are marked in ``state.represented``.
    The diffusion runs on each modality's representation standardised by running statistics
    of its training truth (buffers, like BatchNorm's). Sampling runs without gradients, in
    training too (as in the reference code). At evaluation the noise is fixed: drawn per
    batch row from ``sample_seed``, the same in every pass and run. Training only:
    ``score``, denoising score matching of each modality's true, detached representation
    (only where the data really has it) given the modalities present in the sample;
    ``rec``, the MSE between each refined recovery and the truth.

    Parameters:
        sigma: the VE SDE's sigma: the noise scale grows as sigma ** t (25 in the reference)
        steps: sampling steps (score evaluations per recovered modality) at evaluation
        train_steps: sampling steps in training; null: the same as steps
        sampler: euler_maruyama (the reverse SDE, as the reference) or ode (the
            probability-flow ODE: no noise after the first draw)
        sample_seed: seed of the fixed evaluation noise
        time_eps: sampling stops at this time instead of 0 (numerical stability)
        hidden: width of the score networks
        layers: residual layers of each score network
        refine: refine each recovery with a residual MLP
        refine_hidden: width of the refinement MLP
        target_after: what score and rec take as the truth: the complete input's
            representation after the encoders or after the aligner
    """

    aux_losses = ("score", "rec")
    needs_targets = True

    def __init__(self, modalities: tuple[str, ...], latent_dim: int,
                 sigma: SigmaMax = 25.0, steps: Size = 50, train_steps: Optional[Size] = None,
                 sampler: Sampler = "euler_maruyama", sample_seed: Seed = 0,
                 time_eps: TimeEps = 1e-3, hidden: Size = 128, layers: Size = 2,
                 refine: bool = True, refine_hidden: Size = 128,
                 target_after: Literal["encoders", "aligner"] = "aligner"):
        super().__init__()
        self.modalities = tuple(sorted(modalities))
        self.dim, self.sde = latent_dim, VESDE(sigma)
        self.steps, self.train_steps = steps, train_steps or steps
        self.sampler, self.time_eps, self.target_after = sampler, time_eps, target_after
        self.noise = FixedNoise(sample_seed)
        sources = len(self.modalities) - 1
        self.scores = nn.ModuleDict({m: ScoreNet(latent_dim, sources, self.sde, hidden, layers)
                                     for m in self.modalities})
        self.scales = nn.ModuleDict({m: RunningStandardizer(latent_dim) for m in self.modalities})
        self.refiners = refiners(self.modalities, latent_dim, refine_hidden) if refine else None

    # -- pieces ------------------------------------------------------------------------------
    def condition_of(self, state: State, target: str, rows: Tensor) -> Tensor:
        """The condition of ``target``'s score network for the given rows: the other
        modalities' representations, masked by their presence (detached: the score loss
        trains the score networks only), in float32."""
        others = [j for j, m in enumerate(self.modalities) if m != target]
        reps = [self.scales[self.modalities[j]].to_unit(full(state.reps[self.modalities[j]][rows].detach()))
                for j in others]
        return condition(reps, state.present[rows][:, others])

    def score_fn(self, target: str, cond: Tensor):
        net = self.scores[target]
        return lambda x, t: net(x, t, cond)

    def draw(self, target: str, cond: Tensor, rows: Tensor, training: bool) -> Tensor:
        """(len(rows), D) representations of ``target`` sampled given ``cond`` (in
        standardised units, then back); fixed noise at evaluation, fresh noise in training."""
        steps = self.train_steps if training else self.steps
        shape = (steps + 1, self.dim)
        if training:
            noise = torch.randn(len(rows), *shape, device=cond.device, dtype=cond.dtype)
        else:
            noise = self.noise.rows(self.modalities.index(target), rows, shape, cond)
        with torch.no_grad(), float32(cond):
            unit = sample(self.score_fn(target, cond), self.sde, noise, steps, self.sampler,
                          self.time_eps)
            return self.scales[target].from_unit(unit)

    # -- the slot ----------------------------------------------------------------------------
    def forward(self, state: State) -> tuple[State, dict[str, Tensor]]:
        truth = state.targets.reps(after=self.target_after) if state.targets is not None else None
        if truth is not None and self.training:   # a frozen slot keeps its statistics
            self._update_scales(state, truth)

        def recover(m: str, rows: Tensor) -> Tensor:
            drawn = self.draw(m, self.condition_of(state, m, rows), rows, state.training)
            return self.refiners[m](drawn) if self.refiners is not None else drawn

        new_state, rec_terms = fill_missing(state, self.modalities, recover, truth)
        if truth is None:
            return new_state, {}
        anchor = state.reps[self.modalities[0]]
        return new_state, {"score": self._score_loss(state, truth, anchor),
                           "rec": torch.stack(rec_terms).mean() if rec_terms else zero_loss(anchor)}

    def _update_scales(self, state: State, truth: dict[str, Tensor]) -> None:
        """The running statistics of each modality's truth, where the data has it."""
        for i, m in enumerate(self.modalities):
            have = state.targets.available[:, i].to(truth[m].device)
            self.scales[m].update(full(truth[m][have]))

    def _score_loss(self, state: State, truth: dict[str, Tensor], anchor: Tensor) -> Tensor:
        """Denoising score matching of every modality where the data really has it."""
        terms = []
        for i, m in enumerate(self.modalities):
            rows = state.targets.available[:, i].to(anchor.device).nonzero().squeeze(1)
            if len(rows) == 0:
                continue
            cond = self.condition_of(state, m, rows)
            with float32(cond):
                unit = self.scales[m].to_unit(full(truth[m][rows]))
                terms.append(dsm_loss(self.score_fn(m, cond), unit, self.sde))
        return torch.stack(terms).mean() if terms else zero_loss(anchor)
