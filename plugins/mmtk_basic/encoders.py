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


def rows_with_data(x: Tensor) -> Tensor | None:
    """(B,) mask of the rows of ``x`` that are not all zero, on a CPU batch that has an all-zero
    row (a masked-out modality: half the rows of a six-condition batch); None otherwise, so
    the encoder runs as usual. Not on a GPU: finding the rows would sync it, and there they
    are cheap."""
    if x.device.type != "cpu":
        return None
    real = x.flatten(1).any(1)
    return None if bool(real.all()) else real


class LSTMEncoder(nn.Module):
    """Single-layer LSTM with max-pooling over time (MMIN's acoustic/visual encoder).

    ``pool_padding: false`` (default) excludes padded frames from the max; ``true`` pools
    over every step as MMIN's reference code does. On a CPU the all-zero rows of a batch (a
    masked-out modality) share one run of the LSTM: the same result, a fraction of the work.

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
        # On CPU the recurrence dominates a step, so the zero rows share one run of it.
        real = rows_with_data(x) if not self.lstm.bidirectional and x.shape[1] > 0 else None
        if real is not None:
            return self._sharing_zero_rows(x, lengths, real)
        return self._encode(x, lengths)

    def _encode(self, x: Tensor, lengths: Tensor | None) -> Tensor:
        if lengths is not None and not self.pool_padding:
            # padded frames must not enter the recurrence either
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths.clamp_min(1).cpu(), batch_first=True,
                                                       enforce_sorted=False)
            out, _ = self.lstm(packed)
            out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        else:
            out, _ = self.lstm(x)
        return masked_max(out, sequence_mask(out, None if self.pool_padding else lengths))

    def _sharing_zero_rows(self, x: Tensor, lengths: Tensor | None, real: Tensor) -> Tensor:
        """The encoding of ``x`` with the LSTM run on the non-zero rows and on ONE zero
        sequence. Exact: a unidirectional LSTM's step t depends only on steps <= t, so a
        zero row of length L pools the first L steps of that one run (its running max)."""
        rows, zero_rows = real.nonzero().flatten(), (~real).nonzero().flatten()
        zero_run, _ = self.lstm(x.new_zeros(1, *x.shape[1:]))   # (1, T, H)
        if self.pool_padding or lengths is None:
            shared = zero_run[0].amax(0).expand(len(zero_rows), -1)
        else:
            running_max = zero_run[0].cummax(0).values           # (T, H): max of the first t+1 steps
            steps = lengths[zero_rows].to(x.device).clamp(0, x.shape[1])
            shared = torch.where((steps > 0)[:, None], running_max[(steps - 1).clamp_min(0)],
                                 torch.zeros((), dtype=running_max.dtype))
        out = x.new_zeros(len(x), zero_run.shape[-1], dtype=shared.dtype).index_copy(0, zero_rows, shared)
        if len(rows):
            own = self._encode(x[rows], None if lengths is None else lengths[rows])
            out = out.index_copy(0, rows, own.to(out.dtype))
        return out


class TextCNNEncoder(nn.Module):
    """TextCNN: convolutions of heights 3/4/5 over the full embedding width, max over time.

    On a CPU the all-zero rows of a batch (a masked-out modality) skip the convolutions: they
    pool to the convolutions' relu(bias), exactly what convolving them gives.

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
        valid = sequence_mask(x, lengths)
        real = rows_with_data(x)
        if real is not None:
            # an all-zero row convolves to the biases at every step, so it pools to relu(bias)
            rows = real.nonzero().flatten()
            shared = torch.cat([torch.relu(conv.bias) for conv in self.convs])
            pooled = valid.any(1, keepdim=True) * shared      # a row without a real step pools to 0
            if len(rows):
                own = self._pool(x[rows], valid[rows])
                pooled = pooled.to(own.dtype).index_copy(0, rows, own)
            return self.proj(self.dropout(pooled))
        return self.proj(self.dropout(self._pool(x, valid)))

    def _pool(self, x: Tensor, valid: Tensor) -> Tensor:
        # padded frames become zeros, exactly like the convolution's own padding
        h = (x * valid[..., None]).transpose(1, 2)  # (B, D, T)
        pooled = []
        for conv in self.convs:
            c = torch.relu(conv(h))[..., : x.shape[1]].transpose(1, 2)
            pooled.append(masked_max(c, valid))
        return torch.cat(pooled, -1)
