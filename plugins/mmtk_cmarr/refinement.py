"""Phase 3 — supervised point-based contrastive refinement (SupCon over modality views)."""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from mmtk import MmtkError, Slot, State
from mmtk.ops import zero_loss

from .limits import Size, Temperature
from .maths import supcon_loss


class SupConRefiner(Slot):
    """Supervised contrastive loss on the completed per-modality representations.

    Every usable modality representation of a sample is one view of it (``views:
    completed`` = present or filled in by a reconstructor, ``state.represented``; ``views:
    present`` = observed ones only). Views with
    the same label attract, others repel (cosine similarity / ``temperature``). Unlabelled
    samples (label -1) are left out of the loss. With
    ``projection_dim`` set, the loss is taken on a small projection head (SupCon's design);
    otherwise on the representations themselves. The representations pass through
    unchanged: refinement acts through the gradient of the loss.

    Parameters:
        temperature: SupCon temperature on cosine similarities (> 0)
        base_temperature: the loss is scaled by temperature / base_temperature; null =
            temperature
        projection_dim: output size of a 2-layer projection head the loss is taken on; null: on
            the representations
        views: which modality representations are views: completed (present or reconstructed) or
            present
    """

    aux_losses = ("supcon",)
    needs_labels = True

    def __init__(self, latent_dim: int, temperature: Temperature = 0.07,
                 base_temperature: Temperature | None = None, projection_dim: Size | None = None,
                 views: Literal["completed", "present"] = "completed"):
        super().__init__()
        if temperature <= 0 or (base_temperature is not None and base_temperature <= 0):
            raise MmtkError(f"refiner supcon: temperature ({temperature}) and base_temperature "
                            f"({base_temperature}) must be > 0")
        if projection_dim is not None and projection_dim < 1:
            raise MmtkError(f"refiner supcon: projection_dim must be >= 1 or null, got {projection_dim}")
        self.temperature, self.base_temperature, self.views = temperature, base_temperature, views
        self.projection = None if projection_dim is None else nn.Sequential(
            nn.Linear(latent_dim, latent_dim), nn.ReLU(), nn.Linear(latent_dim, projection_dim))

    def forward(self, state: State) -> tuple[State, dict[str, Tensor]]:
        if not state.training or state.labels is None:
            return state, {}
        usable = state.represented if self.views == "completed" else state.present
        feats, labels = [], []
        for i, m in enumerate(state.modalities):
            rows = usable[:, i] & state.labeled     # a supervised loss: labelled samples only
            feats.append(state.reps[m][rows])
            labels.append(state.labels[rows])
        features = torch.cat(feats)
        if self.projection is not None:
            features = self.projection(features)
        loss = supcon_loss(features, torch.cat(labels), self.temperature, self.base_temperature)
        if features.shape[0] == 0:
            loss = zero_loss(next(iter(state.reps.values())))
        return state, {"supcon": loss}
