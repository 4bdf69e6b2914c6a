"""The refinement block both recovery methods put after a recovered representation.

DiCMoR and IMDer refine a recovered feature with an RCAN-style residual convolution group on
sequences; mmtk's representations are vectors, so the block here is a small residual MLP:
``x + MLP(x)``. Its last layer starts at zero, so a new block is the identity and training
starts from the recovered representation itself.
"""
from __future__ import annotations

from torch import Tensor, nn


class ResidualRefiner(nn.Module):
    """``x + Linear(GELU(Linear(LayerNorm(x))))``, starting as the identity."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.GELU(),
                                 nn.Linear(hidden, dim))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.net(x)


def refiners(modalities: tuple[str, ...], dim: int, hidden: int) -> nn.ModuleDict:
    """One refinement block per modality: each modality's recovery is refined on its own."""
    return nn.ModuleDict({m: ResidualRefiner(dim, hidden) for m in modalities})
