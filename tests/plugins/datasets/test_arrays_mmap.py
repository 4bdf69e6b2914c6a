"""arrays with mmap: true keeps features on disk and matches the in-memory read."""
import numpy as np
import pytest
import torch

from mmtk.builder import Builder
from mmtk.errors import DataError
from mmtk.lazy import LazyFeatures
from mmtk.plugins import load_plugins

REG = load_plugins().registry


def write(root, n=60):
    rng = np.random.default_rng(0)
    np.save(root / "audio.npy", rng.normal(size=(n, 5)).astype(np.float32))
    np.save(root / "text.npy", rng.integers(0, 100, size=(n, 4)).astype(np.int64))
    (root / "ids.txt").write_text("\n".join(f"u{i}" for i in range(n)) + "\n")
    (root / "labels.csv").write_text("id,label\n" + "".join(f"u{i},{i % 3}\n" for i in range(n)))


def test_mmap_matches_memory_and_integers_stay_integers(tmp_path):
    write(tmp_path)
    builder = Builder(REG, tmp_path)
    mem = builder.dataset({"type": "arrays", "root": str(tmp_path)}).load()
    lazy = builder.dataset({"type": "arrays", "root": str(tmp_path), "mmap": True}).load()
    assert mem.train.inputs["text"].dtype == torch.long          # token ids are not floats
    assert isinstance(lazy.train.inputs["audio"], LazyFeatures)
    assert mem.train.ids == lazy.train.ids
    idx = torch.arange(len(mem.train))
    torch.testing.assert_close(mem.train.inputs["audio"], lazy.train.inputs["audio"][idx])


def test_mmap_refuses_h5(tmp_path):
    write(tmp_path)
    (tmp_path / "audio.npy").unlink()
    import h5py
    with h5py.File(tmp_path / "audio.h5", "w") as f:
        for i in range(60):
            f[f"u{i}"] = np.zeros(5, dtype=np.float32)
    with pytest.raises(DataError, match="mmap: true reads <modality>.npy"):
        Builder(REG, tmp_path).dataset({"type": "arrays", "root": str(tmp_path), "mmap": True})
