"""The LSTM encoder's shared zero-row path gives what encoding every row would give."""
import pytest
import torch

from mmtk_basic.encoders import LSTMEncoder


def _batch(lengths, steps=7, dim=5, zero_rows=(1, 3, 4)):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(len(lengths), steps, dim, generator=g)
    lengths = torch.tensor(lengths)
    x = x * (torch.arange(steps)[None, :] < lengths[:, None])[..., None]   # zero padding
    x[list(zero_rows)] = 0.0                                              # masked-out rows
    return x, lengths


def _rows_one_by_one(enc, x, lengths):
    """Every row encoded on its own: the reference the shared path must reproduce."""
    return torch.cat([enc._encode(x[i:i + 1], None if lengths is None else lengths[i:i + 1])
                      for i in range(len(x))])


@pytest.mark.parametrize("pool_padding", [False, True])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("with_lengths", [True, False])
def test_shared_zero_rows_match_encoding_every_row(pool_padding, layers, with_lengths):
    torch.manual_seed(0)
    enc = LSTMEncoder(5, 6, layers=layers, pool_padding=pool_padding)
    x, lengths = _batch([7, 3, 5, 0, 2, 6])
    lengths = lengths if with_lengths else None
    shared = enc(x, lengths)
    assert shared.shape == (6, 6)
    expected = _rows_one_by_one(enc, x, lengths)
    torch.testing.assert_close(shared, expected, rtol=1e-5, atol=1e-6)
    # zero rows of different lengths really differ when padding is excluded (the running max)
    if with_lengths and not pool_padding:
        assert not torch.allclose(shared[1], shared[4])
        assert torch.equal(shared[3], torch.zeros(6))        # length 0 pools to zeros


def test_shared_zero_rows_give_the_same_gradients():
    torch.manual_seed(0)
    enc = LSTMEncoder(5, 6)
    x, lengths = _batch([7, 3, 5, 4, 2, 6])
    weights = torch.randn(6, 6)
    (enc(x, lengths) * weights).sum().backward()
    shared = [p.grad.clone() for p in enc.parameters()]
    enc.zero_grad()
    (_rows_one_by_one(enc, x, lengths) * weights).sum().backward()
    for got, want in zip(shared, [p.grad for p in enc.parameters()]):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


def test_all_zero_and_no_zero_batches():
    torch.manual_seed(0)
    enc = LSTMEncoder(5, 6)
    x, lengths = _batch([7, 3, 5, 4, 2, 6], zero_rows=range(6))
    torch.testing.assert_close(enc(x, lengths), _rows_one_by_one(enc, x, lengths), rtol=1e-5, atol=1e-6)
    x, lengths = _batch([7, 3, 5, 4, 2, 6], zero_rows=())
    torch.testing.assert_close(enc(x, lengths), _rows_one_by_one(enc, x, lengths), rtol=1e-5, atol=1e-6)


def test_bidirectional_encodes_every_row():
    """A backward direction sees the future: no shared zero run (and still right)."""
    torch.manual_seed(0)
    enc = LSTMEncoder(5, 6, bidirectional=True)
    x, lengths = _batch([7, 3, 5, 4, 2, 6])
    torch.testing.assert_close(enc(x, lengths), _rows_one_by_one(enc, x, lengths), rtol=1e-5, atol=1e-6)


def test_textcnn_zero_rows_pool_to_relu_bias_exactly():
    """The TextCNN's shortcut for all-zero rows: the same values and gradients as
    convolving them, lengths 0 included (pooled to zeros); dropout draws stay the same."""
    from mmtk_basic.encoders import TextCNNEncoder
    torch.manual_seed(0)
    enc = TextCNNEncoder(5, 6, channels=4)
    x, lengths = _batch([7, 3, 5, 0, 2, 6])
    weights = torch.randn(6, 6)
    for training in (False, True):
        enc.train(training)
        torch.manual_seed(1)
        fast = enc(x, lengths)
        (fast * weights).sum().backward()
        grads = [p.grad.clone() for p in enc.parameters()]
        enc.zero_grad()
        torch.manual_seed(1)
        slow = enc.proj(enc.dropout(enc._pool(x, torch.arange(7)[None, :] < lengths[:, None])))
        (slow * weights).sum().backward()
        torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-6)
        for got, want in zip(grads, [p.grad for p in enc.parameters()]):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
        enc.zero_grad()
