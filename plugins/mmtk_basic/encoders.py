"""Modality encoders: features (B, D) or frames (B, T, D) -> one vector (B, latent_dim)."""
from __future__ import annotations

from typing import Annotated

import torch
from torch import Tensor, nn

from mmtk import NonEmpty
from mmtk.ops import masked_max, masked_mean, sequence_mask

from .limits import Dropout, Size


class MLPEncoder(nn.Module):
    """Two-layer MLP; frame sequences are mean-pooled over real frames first.

    Parameters:
        hidden: width of the hidden layer
        dropout: dropout probability after the hidden layer (training only)
    """

    def __init__(self, in_dim: int, latent_dim: int, hidden: Size = 256, dropout: Dropout = 0.1):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, latent_dim), nn.ReLU())

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        if x.dim() == 3:
            x = masked_mean(x, sequence_mask(x, lengths))
        return self.net(x)


class LSTMEncoder(nn.Module):
    """Single-layer LSTM with max-pooling over time (MMIN's acoustic/visual encoder).

    ``pool_padding: false`` (default) excludes padded frames from the max; ``true`` pools
    over every step as MMIN's reference code does.

    Parameters:
        layers: stacked LSTM layers
        bidirectional: run the LSTM both ways; each direction then has latent_dim / 2 units
        pool_padding: take the max over every time step, padding included, as MMIN's reference
            code does (false: real frames only, and padding never enters the recurrence)
    """

    def __init__(self, in_dim: int, latent_dim: int, layers: Size = 1, bidirectional: bool = False,
                 pool_padding: bool = False):
        super().__init__()
        hidden = latent_dim // 2 if bidirectional else latent_dim
        self.lstm = nn.LSTM(in_dim, hidden, num_layers=layers, batch_first=True,
                            bidirectional=bidirectional)
        self.pool_padding = pool_padding

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(1)
        if lengths is not None and not self.pool_padding:
            # padded frames must not enter the recurrence either
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths.clamp_min(1).cpu(), batch_first=True,
                                                       enforce_sorted=False)
            out, _ = self.lstm(packed)
            out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        else:
            out, _ = self.lstm(x)
        return masked_max(out, sequence_mask(out, None if self.pool_padding else lengths))


class TextCNNEncoder(nn.Module):
    """TextCNN: convolutions of heights 3/4/5 over the full embedding width, max over time.

    Parameters:
        channels: convolution filters per kernel height
        kernel_sizes: kernel heights (time steps), one convolution each
        dropout: dropout probability on the pooled features before the projection
    """

    def __init__(self, in_dim: int, latent_dim: int, channels: Size = 128,
                 kernel_sizes: Annotated[list[Size], NonEmpty()] = (3, 4, 5), dropout: Dropout = 0.5):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv1d(in_dim, channels, k, padding=k // 2) for k in kernel_sizes)
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Sequential(nn.Linear(channels * len(kernel_sizes), latent_dim), nn.ReLU())

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(1)
        # padded frames become zeros, exactly like the convolution's own padding
        valid = sequence_mask(x, lengths)
        h = (x * valid[..., None]).transpose(1, 2)  # (B, D, T)
        pooled = []
        for conv in self.convs:
            c = torch.relu(conv(h))[..., : x.shape[1]].transpose(1, 2)
            pooled.append(masked_max(c, valid))
        return self.proj(self.dropout(torch.cat(pooled, -1)))
