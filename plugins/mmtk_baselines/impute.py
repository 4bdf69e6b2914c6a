"""Imputation baselines: GCNet's AE and CRA feature imputation, and mean imputation.

``ae_impute`` / ``cra_impute`` follow the AE and CRA baselines shipped with GCNet (Lian et
al., TPAMI 2023): an autoencoder (plain, or a cascade of residual blocks) runs on the fused
embedding of the observed modalities; per-modality linear decoders map its output back to
each modality's *input features*; the reconstruction loss counts only the modalities that
were dropped (their ground truth exists only in training); the classifier reads the
autoencoder's output (the reconstructed fused embedding), not the raw encoder outputs.

``mean_impute`` replaces an absent modality's representation by the mean representation of
that modality over present training samples (see :class:`MeanImpute`).
"""
from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor, nn

from mmtk import MmtkError, Slot, State
from mmtk.ops import masked_mean, sequence_mask, zero_loss

from .autoencoders import AutoEncoder, CascadeResidualAE, check_layers
from .limits import Dropout, LayerSizes, Momentum, Size


def utterance_features(x: Tensor, lengths: Tensor | None) -> Tensor:
    """(B, D) features as they are; (B, T, D) frames averaged over each sample's real frames."""
    if x.dim() == 2:
        return x
    return masked_mean(x, sequence_mask(x, lengths))


class _FeatureImputer(Slot):
    """Shared body of ``ae_impute`` and ``cra_impute``; subclasses build ``self.net``."""

    aux_losses = ("recon",)
    needs_targets = True
    net: nn.Module

    def _setup(self, in_dims: dict[str, int], modalities: tuple[str, ...], latent_dim: int) -> int:
        self.modalities = tuple(modalities)
        missing = [m for m in self.modalities if m not in in_dims]
        if missing:
            raise MmtkError(f"{type(self).__name__}: no input size known for modalities "
                            f"{missing} (in_dims has {sorted(in_dims)})")
        dim = latent_dim * len(self.modalities)
        self.decoders = nn.ModuleDict({m: nn.Linear(dim, in_dims[m]) for m in self.modalities})
        return dim

    def _run_net(self, fused: Tensor) -> Tensor:
        out, _ = self.net(fused)
        return out

    def forward(self, state: State) -> tuple[State, dict[str, Tensor]]:
        fused = torch.cat([state.reps[m] for m in self.modalities], -1)
        rebuilt = self._run_net(fused)
        chunks = rebuilt.chunk(len(self.modalities), -1)
        reps = {**state.reps, **dict(zip(self.modalities, chunks))}
        losses: dict[str, Tensor] = {}
        if state.targets is not None:
            losses["recon"] = self._recon_loss(rebuilt, state)
        # every modality now has the autoencoder's representation, absent ones included
        return replace(state, reps=reps, represented=torch.ones_like(state.present)), losses

    def _recon_loss(self, rebuilt: Tensor, state: State) -> Tensor:
        """Mean over dropped (sample, modality) cells of the per-dimension MSE of the features."""
        targets = state.targets
        total = zero_loss(rebuilt)
        cells = 0
        for i, m in enumerate(self.modalities):
            dropped = ~state.present[:, i] & targets.available[:, i]
            n = int(dropped.sum())
            if n == 0:
                continue
            truth = utterance_features(targets.inputs[m], targets.lengths.get(m))[dropped]
            guess = self.decoders[m](rebuilt[dropped])
            total = total + ((guess.float() - truth.float()) ** 2).mean(-1).sum()
            cells += n
        return total / max(cells, 1)


class AEImpute(_FeatureImputer):
    """GCNet's AE imputation baseline: one FC autoencoder on the fused embedding.

    Layers 256-128 by default. Linear decoders reconstruct the dropped modalities' input
    features (loss ``recon``, dropped cells only); the classifier reads the AE's output.

    Parameters:
        layers: encoder layer sizes of the autoencoder, the last one being the bottleneck
        dropout: dropout probability between layers
    """

    def __init__(self, in_dims: dict[str, int], modalities: tuple[str, ...], latent_dim: int,
                 layers: LayerSizes = (256, 128), dropout: Dropout = 0.0):
        super().__init__()
        layers = check_layers(layers, 1, "reconstructor 'ae_impute'")
        dim = self._setup(in_dims, modalities, latent_dim)
        self.net = AutoEncoder(dim, layers, dropout)


class CRAImpute(_FeatureImputer):
    """GCNet's CRA imputation baseline: a cascade of residual AEs on the fused embedding.

    Two blocks of 256-128 by default; otherwise as ``ae_impute``.

    Parameters:
        layers: encoder layer sizes of each autoencoder block, the last one being the bottleneck
        blocks: residual autoencoder blocks in the cascade
        dropout: dropout probability between layers
    """

    def __init__(self, in_dims: dict[str, int], modalities: tuple[str, ...], latent_dim: int,
                 layers: LayerSizes = (256, 128), blocks: Size = 2, dropout: Dropout = 0.0):
        super().__init__()
        layers = check_layers(layers, blocks, "reconstructor 'cra_impute'")
        dim = self._setup(in_dims, modalities, latent_dim)
        self.net = CascadeResidualAE(dim, layers, blocks, dropout)


class MeanImpute(Slot):
    """Mean imputation: absent representations become training-split mean representations.

    An absent modality's representation becomes the mean representation of that modality
    over present *training* samples.

    The means live in buffers (saved with the model). Each training batch updates them with
    the batch mean of the present rows, as an exponential moving average with ``momentum``
    (the encoders keep changing, so old batches are forgotten, like batch-norm statistics);
    ``momentum: null`` keeps a cumulative average of every training batch instead.
    Evaluation only reads them. The imputed values carry no gradient. A modality never seen
    present in training is imputed with zeros.

    Parameters:
        momentum: weight of each new training batch in the running means; null: cumulative
            average over all training batches
    """

    def __init__(self, modalities: tuple[str, ...], latent_dim: int, momentum: Momentum | None = 0.1):
        super().__init__()
        if momentum is not None and not 0.0 < momentum <= 1.0:
            raise MmtkError(f"reconstructor 'mean_impute': momentum must be in (0, 1] or null "
                            f"(cumulative average), got {momentum}")
        self.modalities = tuple(modalities)
        self.momentum = momentum
        self.register_buffer("means", torch.zeros(len(self.modalities), latent_dim))
        self.register_buffer("counts", torch.zeros(len(self.modalities)))

    @torch.no_grad()
    def _update(self, state: State) -> None:
        for i, m in enumerate(self.modalities):
            rows = state.present[:, i]
            n = int(rows.sum())
            if n == 0:
                continue
            batch_mean = state.reps[m][rows].detach().float().mean(0)
            if self.counts[i] == 0:
                self.means[i] = batch_mean
            elif self.momentum is None:
                self.means[i] += (batch_mean - self.means[i]) * (n / (float(self.counts[i]) + n))
            else:
                self.means[i] += (batch_mean - self.means[i]) * self.momentum
            self.counts[i] += n

    def forward(self, state: State) -> tuple[State, dict[str, Tensor]]:
        if state.training:
            self._update(state)
        reps = dict(state.reps)
        for i, m in enumerate(self.modalities):
            rep = reps[m]
            fill = self.means[i].to(rep.dtype).expand_as(rep)
            reps[m] = torch.where(state.present[:, i:i + 1], rep, fill)
        # a modality with a training mean is represented everywhere now; one never seen has none
        represented = state.represented | (self.counts > 0)[None, :]
        return replace(state, reps=reps, represented=represented), {}
