"""Phase 2 — reconstruction of missing modalities with normalizing flows (``normflows``).

One flow per modality links its (aligned) representation x to a latent z of the same size
that lives in a space shared by all modalities (the base distribution is shared, optionally
one Gaussian per class). normflows' convention: ``forward`` is z → x, ``inverse`` x → z.
A missing modality m of a sample is inferred from each available modality n as
``flow_m.forward(flow_n.inverse(x_n))``; several inferences are fused.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmtk import MmtkError, Slot, State
from mmtk.ops import masked_mean, zero_loss

from .limits import Size

if TYPE_CHECKING:
    import normflows as nf  # imported where a flow is built, so that loading the plugin stays fast


def make_flow(dim: int, blocks: int = 4, hidden: int = 128,
              scale_map: Literal["sigmoid", "exp"] = "sigmoid",
              base: nn.Module | None = None) -> nf.NormalizingFlow:
    """A RealNVP/Glow-style vector flow: ``blocks`` × (affine coupling, fixed permutation).

    The coupling nets start at zero, so a new flow is the identity. ActNorm is left out on
    purpose: its data-dependent initialisation gives NaN on a one-sample first batch.
    """
    import normflows as nf
    if dim % 2 or dim < 2:
        raise MmtkError(f"flow reconstructor: latent_dim must be even (affine coupling splits it "
                        f"in halves), got {dim}")
    if blocks < 1 or hidden < 1:
        raise MmtkError(f"flow reconstructor: blocks ({blocks}) and hidden ({hidden}) must be >= 1")
    layers: list[nn.Module] = []
    for _ in range(blocks):
        net = nf.nets.MLP([dim // 2, hidden, hidden, dim], init_zeros=True)
        layers += [nf.flows.AffineCouplingBlock(net, scale=True, scale_map=scale_map),
                   nf.flows.Permute(dim, mode="shuffle")]
    return nf.NormalizingFlow(q0=base if base is not None else nf.distributions.DiagGaussian(dim),
                              flows=layers)


class FlowReconstructor(Slot):
    """Normalizing-flow reconstruction of absent modalities (CM-ARR phase 2).

    Losses (training only): ``nll`` — negative log-likelihood per dimension of each present
    modality's representation under its flow (class-conditional base with labels, or a
    standard one); ``rec`` — MSE between each reconstructed representation and the true,
    detached representation of the complete input after the aligner (``state.targets``),
    for modalities dropped by the training protocol that the data really has.
    At evaluation only present modalities are read. Reconstructed modalities are marked in
    ``state.represented`` (B, M), so later slots use them.
    ``mode: none`` reconstructs nothing (absent modalities keep the representation of their
    zero-filled input): the zero-filled ablation with the recipe's loss weights still valid.

    Parameters:
        base: the flows' shared base distribution: class_conditional (one Gaussian per class,
            uses labels in training) or standard
        blocks: affine-coupling blocks per flow
        hidden: width of the coupling networks
        scale_map: how coupling scales are bounded: sigmoid (Glow) or exp (RealNVP)
        fuse: how the inferences from several present modalities combine: gated (learned softmax
            gate) or mean
        refine: add a residual MLP refinement to each reconstruction
        detach_nll_input: the NLL trains the flows only and does not pull the representations
            towards them
        target_after: what rec compares a reconstruction with: the complete input's
            representation after the encoders or after the aligner
        rec_loss: the error rec measures: mse, or smooth_l1 (less sensitive to outliers)
        mode: flow, or none to reconstruct nothing (the zero-filled ablation)
    """

    aux_losses = ("nll", "rec")
    needs_targets = True
    needs_labels = True
    label_losses = ("nll",)   # with a class-conditional base; rec never reads labels

    def __init__(self, modalities: tuple[str, ...], latent_dim: int, num_classes: int,
                 base: Literal["class_conditional", "standard"] = "class_conditional",
                 blocks: Size = 4, hidden: Size = 128,
                 scale_map: Literal["sigmoid", "exp"] = "sigmoid",
                 fuse: Literal["gated", "mean"] = "gated", refine: bool = True,
                 detach_nll_input: bool = True, target_after: str = "aligner",
                 rec_loss: Literal["mse", "smooth_l1"] = "mse",
                 mode: Literal["flow", "none"] = "flow"):
        super().__init__()
        if target_after not in ("encoders", "aligner"):
            raise MmtkError(f"flow reconstructor: target_after must be 'encoders' or 'aligner' (the "
                            f"representation the reconstructor receives), got {target_after!r}")
        self.modalities = tuple(sorted(modalities))
        self.dim, self.num_classes = latent_dim, num_classes
        self.base_kind, self.fuse, self.mode = base, fuse, mode
        self.detach_nll_input, self.target_after, self.rec_loss = detach_nll_input, target_after, rec_loss
        # labels are only needed for a class-conditional base (instance attribute wins)
        self.needs_labels = base == "class_conditional" and mode == "flow"
        self.needs_targets = mode == "flow"
        if mode == "none":
            return
        import normflows as nf

        def make_base() -> nn.Module:
            if base == "class_conditional":
                return nf.distributions.ClassCondDiagGaussian(latent_dim, num_classes)
            return nf.distributions.DiagGaussian(latent_dim)
        self.flows = nn.ModuleDict({m: make_flow(latent_dim, blocks, hidden, scale_map, make_base())
                                    for m in self.modalities})
        if fuse == "gated":
            self.gates = nn.ModuleDict({m: nn.Linear(latent_dim, 1) for m in self.modalities})
        if refine:
            self.refiners = nn.ModuleDict({m: nn.Sequential(
                nn.LayerNorm(latent_dim), nn.Linear(latent_dim, latent_dim), nn.GELU(),
                nn.Linear(latent_dim, latent_dim)) for m in self.modalities})
        self.refine = refine

    # -- pieces ------------------------------------------------------------------------------
    def log_prob(self, modality: str, x: Tensor, labels: Tensor | None) -> Tensor:
        """log p(x) under modality's flow (per sample); the label picks the class's Gaussian."""
        flow = self.flows[modality]
        z, log_det = flow.inverse_and_log_det(x)
        if self.base_kind == "class_conditional":
            if labels is None:
                raise MmtkError("flow reconstructor: a class-conditional base needs labels "
                                "(they exist only in training)")
            return flow.q0.log_prob(z, labels) + log_det
        return flow.q0.log_prob(z) + log_det

    def translate(self, source: str, target: str, x: Tensor) -> Tensor:
        """Infer ``target``'s representation from ``source``'s: x_s → z → x_t."""
        return self.flows[target].forward(self.flows[source].inverse(x))

    def _fuse(self, target: str, candidates: Tensor, available: Tensor) -> Tensor:
        """candidates (B, K, D), available (B, K) -> (B, D), using available ones only."""
        candidates = candidates.masked_fill(~available[..., None], 0.0)
        if self.fuse == "mean":
            return masked_mean(candidates, available)
        scores = self.gates[target](candidates).squeeze(-1).masked_fill(~available, float("-inf"))
        none = ~available.any(1, keepdim=True)
        weights = torch.softmax(scores.masked_fill(none, 0.0), 1) * available
        return (weights[..., None] * candidates).sum(1)

    # -- the slot ----------------------------------------------------------------------------
    def forward(self, state: State) -> tuple[State, dict[str, Tensor]]:
        present = state.present
        if self.mode == "none":
            return state, {}
        mods = state.modalities
        x = dict(state.reps)
        z = {m: self.flows[m].inverse(x[m]) for m in mods}
        truth = None
        if state.training and state.targets is not None:
            truth = state.targets.reps(after=self.target_after)
        reps, represented = dict(x), state.represented.clone()
        rec_terms = []
        anything = present.any(1)
        for i, m in enumerate(mods):
            missing = ~present[:, i] & anything
            if not bool(missing.any()):
                continue
            sources = [(j, n) for j, n in enumerate(mods) if n != m]
            cands = torch.stack([self.flows[m].forward(z[n]) for _, n in sources], 1)
            avail = torch.stack([present[:, j] for j, _ in sources], 1)
            guess = self._fuse(m, cands, avail)
            if self.refine:
                guess = guess + self.refiners[m](guess)
            reps[m] = torch.where(missing[:, None], guess, x[m])
            represented[:, i] |= missing
            if truth is not None:
                rows = missing & state.targets.available[:, i].to(missing.device)
                if bool(rows.any()):
                    loss_fn = F.mse_loss if self.rec_loss == "mse" else F.smooth_l1_loss
                    rec_terms.append(loss_fn(guess[rows], truth[m][rows].detach()))
        state.reps, state.represented = reps, represented
        if not state.training:
            return state, {}
        anchor = next(iter(x.values()))
        nll_terms = []
        # without labels (e.g. when run inside Targets' label-free prefix) a class-conditional
        # NLL cannot be computed: it is skipped, never guessed
        can_nll = self.base_kind == "standard" or state.labels is not None
        for i, m in enumerate(mods):
            rows = present[:, i]
            if self.base_kind == "class_conditional" and state.labeled is not None:
                rows = rows & state.labeled   # the class's Gaussian needs the label
            if not can_nll or not bool(rows.any()):
                continue
            xin = x[m][rows].detach() if self.detach_nll_input else x[m][rows]
            labels = state.labels[rows] if state.labels is not None else None
            nll_terms.append(-self.log_prob(m, xin, labels).mean() / self.dim)
        losses = {"nll": torch.stack(nll_terms).mean() if nll_terms else zero_loss(anchor)}
        if truth is not None:
            losses["rec"] = torch.stack(rec_terms).mean() if rec_terms else zero_loss(anchor)
        return state, losses
