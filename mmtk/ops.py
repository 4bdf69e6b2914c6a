"""Small tensor operations that components of every plugin need, written once.

* frame masks: which steps of a zero-padded ``(B, T, ...)`` batch are real;
* pooling over the real steps only (mean, max);
* a zero loss that stays attached to the autograd graph.
"""
from __future__ import annotations

import torch
from torch import Tensor


def frame_mask(lengths: Tensor, steps: int) -> Tensor:
    """(B, steps) bool: True for each sample's first ``lengths[b]`` steps, False for padding."""
    return torch.arange(steps, device=lengths.device)[None, :] < lengths[:, None]


def sequence_mask(x: Tensor, lengths: Tensor | None) -> Tensor:
    """(B, T) bool mask of the real steps of ``x`` (B, T, ...) on ``x``'s device; every step
    is real when ``lengths`` is None."""
    if lengths is None:
        return torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
    return frame_mask(lengths.to(x.device), x.shape[1])


def _broadcast(mask: Tensor, x: Tensor) -> Tensor:
    """(B, T) mask viewed as (B, T, 1, ...) to broadcast over ``x``'s trailing dimensions."""
    return mask.view(*mask.shape, *([1] * (x.dim() - mask.dim())))


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``x`` (B, T, ...) over the steps where ``mask`` (B, T) is True -> (B, ...).

    A sample without any real step pools to zeros (its count is clamped to 1).
    """
    m = _broadcast(mask, x)
    return (x * m).sum(1) / m.sum(1).clamp_min(1)


def masked_max(x: Tensor, mask: Tensor) -> Tensor:
    """Maximum of ``x`` (B, T, ...) over the steps where ``mask`` (B, T) is True -> (B, ...).

    A sample without any real step pools to zeros, never to -inf.
    """
    pooled = x.masked_fill(~_broadcast(mask, x), float("-inf")).amax(1)
    return torch.where(torch.isfinite(pooled), pooled, torch.zeros_like(pooled))


def zero_loss(like: Tensor) -> Tensor:
    """A scalar 0 computed from ``like``, for a loss with nothing to measure in this batch.

    Unlike ``torch.zeros(())`` it is part of the graph, so ``backward()`` works and every
    parameter that produced ``like`` takes part in the step (DDP expects that).
    """
    return like.sum() * 0.0
