"""Memory-mapped features behave exactly like in-memory tensors; length bucketing."""
import numpy as np
import pytest
import torch

from mmtk.data import Standardizer, TensorData, check_finite
from mmtk.data_loading import batch_indices
from mmtk.errors import DataError
from mmtk.lazy import LazyFeatures, open_npy


def make(tmp_path, n=50, t=7, d=4, seed=0):
    rng = np.random.default_rng(seed)
    seq = rng.normal(3.0, 2.0, size=(n, t, d)).astype(np.float32)
    lengths = rng.integers(1, t + 1, size=n)
    for i, L in enumerate(lengths):
        seq[i, L:] = 0
    vec = rng.normal(-1.0, 5.0, size=(n, d)).astype(np.float32)
    np.save(tmp_path / "seq.npy", seq)
    np.save(tmp_path / "vec.npy", vec)
    labels = torch.from_numpy(rng.integers(0, 3, size=n))
    ids = [f"u{i}" for i in range(n)]
    lengths = {"s": torch.from_numpy(lengths)}
    mem = TensorData({"s": torch.from_numpy(seq), "v": torch.from_numpy(vec)}, labels, ids, lengths=lengths)
    lazy = TensorData({"s": LazyFeatures(open_npy(tmp_path / "seq.npy"), name="seq.npy"),
                       "v": LazyFeatures(open_npy(tmp_path / "vec.npy"), name="vec.npy")}, labels, ids,
                      lengths=lengths)
    return mem, lazy


def test_lazy_matches_memory(tmp_path):
    mem, lazy = make(tmp_path)
    assert lazy.nbytes() == 0 and mem.nbytes() > 0
    idx = torch.tensor([7, 3, 3, 39, 0])
    sub_m, sub_l = mem.subset(torch.arange(10, 50)), lazy.subset(torch.arange(10, 50))
    s_m, s_l = Standardizer.fit(sub_m), Standardizer.fit(sub_l)
    for m in ("s", "v"):
        torch.testing.assert_close(s_m.mean[m], s_l.mean[m], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(s_m.std[m], s_l.std[m], rtol=1e-5, atol=1e-5)
    bm, bl = s_m.apply(sub_m).batch(idx), s_l.apply(sub_l).batch(idx)
    for m in ("s", "v"):
        torch.testing.assert_close(bm.inputs[m], bl.inputs[m], rtol=1e-5, atol=1e-5)


def test_lazy_nan_is_reported_with_id(tmp_path):
    mem, _ = make(tmp_path)
    arr = np.load(tmp_path / "vec.npy")
    arr[17, 2] = np.nan
    np.save(tmp_path / "bad.npy", arr)
    data = TensorData({"v": LazyFeatures(open_npy(tmp_path / "bad.npy"), name="bad.npy")}, mem.labels, mem.ids)
    with pytest.raises(DataError, match=r"'u17'.*bad.npy"):
        check_finite(data, "train", "test")


def test_bucketing_covers_every_sample_once_with_less_padding(tmp_path):
    mem, _ = make(tmp_path, n=400, t=30)
    order = torch.randperm(400, generator=torch.Generator().manual_seed(0))
    plain = batch_indices(order, 16, mem, False, torch.Generator().manual_seed(1))
    bucketed = batch_indices(order, 16, mem, True, torch.Generator().manual_seed(1))
    assert sorted(torch.cat(bucketed).tolist()) == list(range(400))
    lengths = mem.lengths["s"]

    def padding(batches):
        return sum(int(lengths[b].max()) * len(b) - int(lengths[b].sum()) for b in batches)

    assert padding(bucketed) < 0.5 * padding(plain)
    trimmed = mem.batch(bucketed[0], trim=True).inputs["s"]
    assert trimmed.shape[1] == int(lengths[bucketed[0]].max())


def test_integer_lazy_features_stay_integers_and_are_never_scaled(tmp_path):
    ids = np.arange(40).reshape(10, 4).astype(np.int64)
    np.save(tmp_path / "tok.npy", ids)
    lazy = LazyFeatures(open_npy(tmp_path / "tok.npy"), integer=True)
    data = TensorData({"t": lazy}, torch.zeros(10, dtype=torch.long), [f"u{i}" for i in range(10)])
    assert Standardizer.fit(data).mean == {}
    batch = data.subset(torch.arange(2, 6)).inputs["t"][torch.tensor([3, 0])]
    assert batch.dtype == torch.long and batch.tolist() == [ids[5].tolist(), ids[2].tolist()]
