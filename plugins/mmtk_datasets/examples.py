"""Tiny example data in each on-disk format, for ``example_params`` (the registry-wide
contract test builds every dataset from it). Random numbers, not real data."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

N = 24


def _rng() -> np.random.Generator:
    return np.random.default_rng(0)


def mmin_layout(workdir: Path) -> dict:
    import h5py
    root, rng = Path(workdir) / "mmin_example", _rng()
    ids = [f"Ses01F_impro01_F{i:03d}" for i in range(N)]
    for letter, dim in (("A", 5), ("L", 6), ("V", 4)):
        (root / letter).mkdir(parents=True, exist_ok=True)
        with h5py.File(root / letter / "features.h5", "w") as f:
            for uid in ids:
                f.create_dataset(uid, data=rng.normal(size=(int(rng.integers(1, 6)), dim)))
    y = np.arange(N) % 4
    parts = {"trn": range(0, 16), "val": range(16, 20), "tst": range(20, 24)}
    for stem, rows in parts.items():
        fold = root / "target" / "1"
        fold.mkdir(parents=True, exist_ok=True)
        np.save(fold / f"{stem}_label.npy", np.eye(4)[y[list(rows)]])
        np.save(fold / f"{stem}_int2name.npy", np.array([[ids[i].encode()] for i in rows]))
    return {"root": str(root)}


def mmsa(workdir: Path) -> dict:
    rng, data = _rng(), {}
    for split, n in (("train", 16), ("valid", 4), ("test", 4)):
        data[split] = {
            "id": np.array([f"{split}{i}" for i in range(n)], dtype=object),
            "text": rng.normal(size=(n, 5, 8)).astype(np.float32),
            "text_bert": np.stack([np.full((n, 5), 101.0), np.ones((n, 5)), np.zeros((n, 5))], 1),
            "audio": rng.normal(size=(n, 6, 3)).astype(np.float32),
            "vision": rng.normal(size=(n, 4, 5)).astype(np.float32),
            "audio_lengths": [6] * n, "vision_lengths": [4] * n,
            "regression_labels": np.linspace(-2, 2, n).astype(np.float32)}
    path = Path(workdir) / "mmsa_example.pkl"
    path.write_bytes(pickle.dumps(data))
    return {"root": str(path)}


def arrays(workdir: Path) -> dict:
    import h5py
    root, rng = Path(workdir) / "arrays_example", _rng()
    root.mkdir(parents=True, exist_ok=True)
    ids = [f"s{i:03d}" for i in range(N)]
    with h5py.File(root / "audio.h5", "w") as f:
        for sid in ids:
            f.create_dataset(sid, data=rng.normal(size=(int(rng.integers(1, 6)), 4)))
    np.save(root / "text.npy", rng.normal(size=(N, 6)))
    np.savez(root / "features.npz", visual=rng.normal(size=(N, 3)))
    (root / "ids.txt").write_text("\n".join(ids) + "\n")
    (root / "labels.csv").write_text("id,label\n" + "".join(f"{s},{i % 3}\n" for i, s in enumerate(ids)))
    return {"root": str(root)}


def handwritten(workdir: Path) -> dict:
    from .handwritten import DIMS
    folder, rng = Path(workdir) / "mfeat_example", _rng()
    folder.mkdir(parents=True, exist_ok=True)
    y = np.repeat(np.arange(10), 5)
    for view, dim in DIMS.items():
        rows = np.c_[rng.normal(size=(len(y), dim)) + y[:, None], y]
        np.savetxt(folder / f"mfeat-{view}.csv", rows, delimiter=",", fmt="%.5f",
                   header=",".join(map(str, range(dim + 1))), comments="")
    return {"data_dir": str(folder), "missing_rate": 0.3}
