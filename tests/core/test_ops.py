"""mmtk.ops: frame masks, pooling over real steps only, the graph-connected zero loss."""
from __future__ import annotations

import torch

from mmtk.ops import frame_mask, masked_max, masked_mean, sequence_mask, zero_loss


def test_frame_mask_marks_the_first_lengths_steps():
    mask = frame_mask(torch.tensor([0, 2, 3]), 3)
    assert mask.dtype == torch.bool
    assert mask.tolist() == [[False, False, False], [True, True, False], [True, True, True]]


def test_sequence_mask_follows_lengths_or_keeps_every_step():
    x = torch.zeros(2, 4, 5)
    assert sequence_mask(x, torch.tensor([1, 4])).tolist() == [[True, False, False, False], [True] * 4]
    everything = sequence_mask(x, None)
    assert everything.shape == (2, 4) and bool(everything.all())


def _padded(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 5, 4, generator=g)
    lengths = torch.tensor([2, 5, 0])
    return x, lengths, frame_mask(lengths, 5)


def test_masked_mean_is_the_mean_of_real_steps_and_ignores_padding():
    x, lengths, mask = _padded()
    pooled = masked_mean(x, mask)
    torch.testing.assert_close(pooled[0], x[0, :2].mean(0))
    torch.testing.assert_close(pooled[1], x[1].mean(0))
    assert torch.equal(pooled[2], torch.zeros(4)), "a sample with no real step pools to zeros"
    noisy = torch.where(mask[..., None], x, torch.full_like(x, 1e6))
    torch.testing.assert_close(masked_mean(noisy, mask), pooled)


def test_masked_mean_of_two_dimensional_inputs():
    wave = torch.tensor([[1.0, 3.0, 100.0], [2.0, 4.0, 6.0]])
    mask = frame_mask(torch.tensor([2, 3]), 3)
    torch.testing.assert_close(masked_mean(wave, mask), torch.tensor([2.0, 4.0]))


def test_masked_max_ignores_padding_and_never_gives_minus_infinity():
    x, lengths, mask = _padded()
    x = x - 10.0                               # every real value below the zeros of padding
    padded = torch.where(mask[..., None], x, torch.full_like(x, 50.0))
    pooled = masked_max(padded, mask)
    torch.testing.assert_close(pooled[0], x[0, :2].amax(0))
    torch.testing.assert_close(pooled[1], x[1].amax(0))
    assert torch.equal(pooled[2], torch.zeros(4))


def test_pooling_sends_gradient_to_real_steps_only():
    x, lengths, mask = _padded()
    for pool in (masked_mean, masked_max):
        leaf = x.clone().requires_grad_(True)
        pool(leaf, mask).sum().backward()
        assert bool((leaf.grad[~mask] == 0).all()), f"{pool.__name__} sends gradient to padding"
        assert bool((leaf.grad[mask].abs().sum(-1) > 0).any())


def test_zero_loss_is_zero_and_stays_in_the_graph():
    w = torch.nn.Parameter(torch.randn(3))
    loss = zero_loss(w * 2.0)
    assert loss.dim() == 0 and loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert w.grad is not None and torch.equal(w.grad, torch.zeros(3))
