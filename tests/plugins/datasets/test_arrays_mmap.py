"""arrays with mmap: true keeps features on disk and matches the in-memory read."""
import h5py
import numpy as np
import pytest
import torch

from mmtk.errors import DataError
from mmtk.lazy import LazyFeatures
from mmtk_datasets.arrays import Arrays


def write(root, n=60):
    rng = np.random.default_rng(0)
    np.save(root / "audio.npy", rng.normal(size=(n, 5)).astype(np.float32))
    np.save(root / "text.npy", rng.integers(0, 100, size=(n, 4)).astype(np.int64))
    (root / "ids.txt").write_text("\n".join(f"u{i}" for i in range(n)) + "\n")
    (root / "labels.csv").write_text("id,label\n" + "".join(f"u{i},{i % 3}\n" for i in range(n)))


def test_mmap_matches_memory_and_declared_token_ids_stay_integers(tmp_path):
    write(tmp_path)
    mem = Arrays(root=tmp_path, token_ids=["text"]).load()
    lazy = Arrays(root=tmp_path, token_ids=["text"], mmap=True).load()
    assert mem.train.inputs["text"].dtype == torch.long          # token ids are not floats
    assert isinstance(lazy.train.inputs["audio"], LazyFeatures)
    assert mem.train.ids == lazy.train.ids
    idx = torch.arange(len(mem.train))
    torch.testing.assert_close(mem.train.inputs["audio"], lazy.train.inputs["audio"][idx])
    assert not lazy.train.inputs["text"].is_floating_point()     # never normalised
    torch.testing.assert_close(mem.train.inputs["text"], lazy.train.inputs["text"][idx])


def test_undeclared_integer_arrays_are_float_features_in_both_paths(tmp_path):
    write(tmp_path)
    mem, lazy = Arrays(root=tmp_path).load(), Arrays(root=tmp_path, mmap=True).load()
    assert mem.train.inputs["text"].dtype == torch.float32
    idx = torch.arange(len(mem.train))
    torch.testing.assert_close(mem.train.inputs["text"], lazy.train.inputs["text"][idx])
    np.save(tmp_path / "text.npy", np.full((60, 4), 0.5, dtype=np.float32))
    with pytest.raises(DataError, match=r"text.npy holds float32 values.*token ids"):
        Arrays(root=tmp_path, token_ids=["text"], mmap=True).load()


def test_mmap_refuses_h5(tmp_path):
    write(tmp_path)
    (tmp_path / "audio.npy").unlink()
    with h5py.File(tmp_path / "audio.h5", "w") as f:
        for i in range(60):
            f[f"u{i}"] = np.zeros(5, dtype=np.float32)
    with pytest.raises(DataError, match="mmap: true reads <modality>.npy"):
        Arrays(root=tmp_path, mmap=True)
