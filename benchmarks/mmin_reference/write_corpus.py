"""Write a SYNTHETIC corpus in AIM3-RUC/MMIN's on-disk layout, for running MMIN's own code
and mmtk's `mmin_layout` recipes on identical data.

The features come from mmtk's embedded `synthetic` generator (four classes in an
arousal/valence plane, each modality a blurred view, shared style, private noise) turned into
frame sequences. The layout is the one `mmtk_datasets.mmin` reads and the one the tests in
tests/plugins/datasets/ write (`write_mmin`), with what MMIN's loader needs on top:

    A/comparE.h5            one (T, D) dataset per utterance id, variable T, raw scale
                            (per-dimension offset and scale, as openSMILE LLDs have)
    A/comparE_mean_std.h5   group "<fold>" with datasets mean, std over that fold's train frames
                            (MMIN's --norm_method=trn reads them; mmtk ignores them)
    V/denseface.h5          fixed-length (T, D), zero rows after the real frames (as released)
    L/bert_large.h5         fixed-length (T, D), zero rows after the real frames (as released)
    target/<fold>/{trn,val,tst}_label.npy      one-hot float rows
    target/<fold>/{trn,val,tst}_int2name.npy   (N, 1) utterance ids as bytes

Not real emotion data. Usage:

    python benchmarks/mmin_reference/write_corpus.py OUT_DIR [--n 3000] [--seed 0]
        [--frames A V L] [--min-audio-frames K]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import h5py
import numpy as np
import torch

from mmtk_basic.synthetic import CLASS_NAMES, Synthetic

LETTERS = {"audio": "A", "text": "L", "visual": "V"}
FILES = {"audio": "comparE.h5", "text": "bert_large.h5", "visual": "denseface.h5"}
SPLIT_SHARES = {"trn": 0.8, "val": 0.1, "tst": 0.1}   # like IEMOCAP's 8 / 1 / 1 speakers


def generate(n: int, seed: int, dims: dict[str, int], frames: dict[str, int],
             min_audio_frames: int | None = None):
    """Features (N, T, D), lengths (N,) per modality and labels (N,), from `synthetic`.

    ``min_audio_frames`` redraws the audio lengths uniformly in [min, T] (the generator's own
    are in [T/2, T]); the frames beyond a shortened length are dropped."""
    splits = Synthetic(n_samples=n, dims=dims, frames=frames, data_seed=seed).load()
    parts = [splits.train, splits.test]
    feats = {m: torch.cat([p.inputs[m] for p in parts]).numpy() for m in dims}
    lengths = {m: torch.cat([p.lengths[m] for p in parts]).numpy() for m in dims}
    labels = torch.cat([p.labels for p in parts]).numpy()
    if min_audio_frames is not None:
        t = frames["audio"]
        if not 1 <= min_audio_frames <= t:
            raise SystemExit(f"--min-audio-frames must lie in [1, {t}], got {min_audio_frames}")
        rng = np.random.default_rng(seed + 3)
        lengths["audio"] = rng.integers(min_audio_frames, t + 1, len(labels))
    return feats, lengths, labels


def split_rows(labels: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Stratified, seeded trn/val/tst rows."""
    rng = np.random.default_rng(seed + 1)
    out: dict[str, list] = {s: [] for s in SPLIT_SHARES}
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_val, n_tst = (int(round(len(idx) * SPLIT_SHARES[s])) for s in ("val", "tst"))
        out["val"] += idx[:n_val].tolist()
        out["tst"] += idx[n_val:n_val + n_tst].tolist()
        out["trn"] += idx[n_val + n_tst:].tolist()
    return {s: rng.permutation(np.array(v)) for s, v in out.items()}


def write_features(root: Path, ids: list[str], feats, lengths, seed: int) -> dict[str, np.ndarray]:
    """The three h5 files; returns the raw audio frames per utterance (for the statistics)."""
    rng = np.random.default_rng(seed + 2)
    dim_a = feats["audio"].shape[2]
    # openSMILE LLDs live on very different scales per dimension; MMIN standardises them
    scale, offset = np.exp(rng.normal(0, 1, dim_a)), rng.normal(0, 3, dim_a)
    audio_raw = {}
    for m, letter in LETTERS.items():
        (root / letter).mkdir(parents=True, exist_ok=True)
        with h5py.File(root / letter / FILES[m], "w") as f:
            for i, uid in enumerate(ids):
                x = feats[m][i]
                if m == "audio":   # variable length, raw scale, no padding stored
                    x = (x[: lengths[m][i]] * scale + offset).astype(np.float32)
                    audio_raw[uid] = x
                else:              # fixed length, zero rows after the real frames
                    x = x.astype(np.float32)
                f.create_dataset(uid, data=x)
    return audio_raw


def write_targets(root: Path, ids: list[str], labels: np.ndarray, rows, audio_raw, fold: int = 1):
    fdir = root / "target" / str(fold)
    fdir.mkdir(parents=True, exist_ok=True)
    k = len(CLASS_NAMES)
    for stem, idx in rows.items():
        np.save(fdir / f"{stem}_label.npy", np.eye(k, dtype=np.float32)[labels[idx]])
        np.save(fdir / f"{stem}_int2name.npy", np.array([[ids[i].encode()] for i in idx]))
    train_frames = np.concatenate([audio_raw[ids[i]] for i in rows["trn"]])
    std = train_frames.std(0)
    std[std == 0] = 1.0
    with h5py.File(root / "A" / "comparE_mean_std.h5", "w") as f:
        g = f.create_group(str(fold))
        g.create_dataset("mean", data=train_frames.mean(0).astype(np.float32))
        g.create_dataset("std", data=std.astype(np.float32))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--n", type=int, default=3000, help="utterances")
    ap.add_argument("--seed", type=int, default=0, help="data seed (task, samples, split)")
    ap.add_argument("--dims", type=int, nargs=3, default=[130, 64, 128], metavar=("A", "V", "L"))
    ap.add_argument("--frames", type=int, nargs=3, default=[20, 10, 10], metavar=("A", "V", "L"),
                    help="most frames; real lengths are drawn in [T/2, T]")
    ap.add_argument("--min-audio-frames", type=int, default=None,
                    help="draw audio lengths uniformly in [this, T] instead (e.g. --frames 100 10 10 "
                         "--min-audio-frames 20: 20-100 frames, like IEMOCAP utterances)")
    args = ap.parse_args()
    dims = {"audio": args.dims[0], "visual": args.dims[1], "text": args.dims[2]}
    frames = {"audio": args.frames[0], "visual": args.frames[1], "text": args.frames[2]}
    feats, lengths, labels = generate(args.n, args.seed, dims, frames, args.min_audio_frames)
    ids = [f"Ses{i % 5 + 1:02d}{'FM'[i % 2]}_syn_{i:05d}" for i in range(len(labels))]
    rows = split_rows(labels, args.seed)
    audio_raw = write_features(args.out, ids, feats, lengths, args.seed)
    write_targets(args.out, ids, labels, rows, audio_raw)
    print(f"wrote {len(ids)} utterances to {args.out} (fold 1: "
          + ", ".join(f"{s} {len(v)}" for s, v in rows.items()) + ")")


if __name__ == "__main__":
    main()
