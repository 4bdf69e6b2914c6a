"""Generic per-modality arrays: any modalities a user (or ``mmtk extract``) writes to a folder.

Layout of ``root/`` (the exact rules are in this plugin's README)::

    <modality>.h5        one dataset per sample id: (T, D) or (D,); variable T allowed
    <modality>.npy       (N, D) or (N, T, D), rows aligned with ids.txt
    features.npz         one array per modality (key = modality), rows aligned with ids.txt
    ids.txt              one id per line (needed by .npy / .npz modalities)
    labels.csv           header ``id,label``
    scores.csv           optional, header ``id,score``: a float regression target per sample
    splits.csv           optional, header ``id,split`` with train / val / test
    folds/<k>/{train,val,test}.txt   optional instead of splits.csv; val.txt may be left out
"""
from __future__ import annotations

import contextlib
import csv
import zipfile
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from mmtk.data import DataSplits, Dataset, TensorData, stratified_split
from mmtk.errors import DataError

from .common import (BadSamples, ModalitySource, assemble, check_disjoint, h5_fetch,
                     h5_open, integer_label_check, log, pool_mean, read_lines, require_file,
                     resolve_root, rows_fetch)

NAME = "arrays"
RESERVED = {"ids", "labels", "splits", "features", "scores"}
SPLIT_NAMES = ("train", "val", "test")


class Arrays(Dataset):
    """Generic per-modality feature arrays (.h5 / .npy / features.npz) with labels.csv and
    optional splits.csv or folds/<k>/{train,val,test}.txt; otherwise a seeded stratified split."""

    def __init__(self, root: Path | None = None, select: list[str] | None = None,
                 class_names: list[str] | None = None, dims: dict[str, int] | None = None,
                 allow_missing_modalities: bool = False,
                 on_bad_sample: Literal["error", "skip"] = "error", test_fraction: float = 0.2,
                 split_seed: int | None = None, max_frames: int | None = None,
                 pool: Literal["none", "mean"] = "none", mmap: bool = False, seed: int = 0):
        self.root = resolve_root(root, NAME)
        self.files = self._discover()
        if select:
            unknown = sorted(set(select) - set(self.files))
            if unknown:
                raise DataError(f"dataset '{NAME}': data.select names '{unknown[0]}', which has "
                                f"no feature file in {self.root.resolve()}; found: "
                                f"{', '.join(sorted(self.files)) or 'none'}.")
            self.files = {m: self.files[m] for m in select}
        self.class_names = list(class_names) if class_names else None
        self.dims = dict(dims or {})
        self.allow_missing, self.on_bad_sample = allow_missing_modalities, on_bad_sample
        if not 0.0 < test_fraction < 1.0:
            raise DataError(f"dataset '{NAME}': test_fraction must be in (0, 1), got {test_fraction}")
        self.test_fraction = test_fraction
        self.split_seed = seed if split_seed is None else split_seed
        self.max_frames, self.pool = max_frames, pool
        self.mmap = mmap
        if mmap:
            not_npy = sorted(m for m, (kind, _) in self.files.items() if kind != "npy")
            if not_npy:
                raise DataError(f"dataset '{NAME}': mmap: true reads <modality>.npy files lazily, but "
                                f"{', '.join(not_npy)} in {self.root.resolve()} are not .npy files; "
                                "convert them or set mmap: false.")

    # -- discovery (cheap: file names and the npz directory only) -------------------------
    def _discover(self) -> dict[str, tuple[str, Path]]:
        files: dict[str, tuple[str, Path]] = {}

        def add(m: str, kind: str, path: Path) -> None:
            if m in files:
                raise DataError(f"dataset '{NAME}': modality '{m}' is given twice ({files[m][1].name} "
                                f"and {path.name}) in {self.root.resolve()}; keep one.")
            files[m] = (kind, path)

        for path in sorted(self.root.iterdir()):
            if path.suffix in (".h5", ".npy") and path.stem not in RESERVED and path.is_file():
                add(path.stem, path.suffix[1:], path)
        npz = self.root / "features.npz"
        if npz.is_file():
            try:
                with zipfile.ZipFile(npz) as z:
                    keys = [n[:-4] for n in z.namelist() if n.endswith(".npy")]
            except (zipfile.BadZipFile, OSError) as exc:
                raise DataError(f"dataset '{NAME}': cannot read {npz.resolve()} as an .npz file "
                                f"(corrupt?): {exc}") from None
            for key in keys:
                add(key, "npz", npz)
        if not files:
            raise DataError(f"dataset '{NAME}': no feature files in {self.root.resolve()}: expected "
                            "<modality>.h5, <modality>.npy or features.npz.")
        return files

    @staticmethod
    def example_params(workdir: Path) -> dict:
        """Parameters reading a tiny example written into ``workdir`` (for contract tests)."""
        from . import examples
        return examples.arrays(workdir)

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(sorted(self.files))

    def folds(self) -> list[int | None]:
        folder = self.root / "folds"
        if not folder.is_dir():
            return [None]
        names = sorted(p.name for p in folder.iterdir() if p.is_dir())
        bad = [n for n in names if not n.isdigit()]
        if bad or not names:
            raise DataError(f"dataset '{NAME}': {folder.resolve()} must hold folders named by "
                            f"integers (1, 2, ...); found {', '.join(names) or 'nothing'}.")
        return sorted(int(n) for n in names)

    # -- labels and splits ----------------------------------------------------------------
    def _csv(self, path: Path, header: tuple[str, str]) -> list[tuple[int, str, str]]:
        rows = []
        with open(path, newline="") as f:
            reader = csv.reader(f)
            head = next(reader, None)
            if head is None or tuple(h.strip() for h in head) != header:
                raise DataError(f"dataset '{NAME}': {path.resolve()} must start with the header "
                                f"'{','.join(header)}', found {','.join(head or []) or 'nothing'!r}.")
            for line, row in enumerate(reader, start=2):
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) != 2 or not row[0].strip() or not row[1].strip():
                    raise DataError(f"dataset '{NAME}': {path}: line {line} should be "
                                    f"'{header[0]},{header[1]}' with both values set, got {row!r}.")
                rows.append((line, row[0].strip(), row[1].strip()))
        return rows

    def _csv_one_row_per_id(self, path: Path, header: tuple[str, str]) -> list[tuple[int, str, str]]:
        """:meth:`_csv` rows of a per-sample file, where an id listed twice is an error."""
        rows = self._csv(path, header)
        seen: dict[str, int] = {}
        for line, sid, _ in rows:
            if sid in seen:
                raise DataError(f"dataset '{NAME}': {path}: id '{sid}' is listed twice (lines "
                                f"{seen[sid]} and {line}).")
            seen[sid] = line
        return rows

    def _labels(self) -> tuple[dict[str, int], list[str], Path]:
        path = require_file(self.root / "labels.csv", NAME, "labels file (header id,label)")
        rows = self._csv_one_row_per_id(path, ("id", "label"))
        raw = [r[2] for r in rows]
        integer = all(_is_int(v) for v in raw)
        if self.class_names:
            names = self.class_names
            index = {n: i for i, n in enumerate(names)}
            # a label that matches no class name is flagged later as out of range (-1)
            labels = {sid: (int(v) if integer else index.get(v, -1)) for _, sid, v in rows}
        elif integer:
            values = [int(v) for v in raw]
            k = max(values, default=-1) + 1
            names = [str(i) for i in range(k)]
            labels = {sid: int(v) for _, sid, v in rows}
        else:
            names = sorted(set(raw))
            index = {n: i for i, n in enumerate(names)}
            labels = {sid: index[v] for _, sid, v in rows}
        return labels, names, path

    def _scores(self, wanted: list[str]) -> dict[str, float] | None:
        """Regression targets from the optional scores.csv; every used id needs a finite one."""
        path = self.root / "scores.csv"
        if not path.is_file():
            return None
        scores: dict[str, float] = {}
        for line, sid, value in self._csv_one_row_per_id(path, ("id", "score")):
            try:
                scores[sid] = float(value)
            except ValueError:
                raise DataError(f"dataset '{NAME}': {path}: line {line}: score {value!r} of id "
                                f"'{sid}' is not a number.") from None
            if not np.isfinite(scores[sid]):
                raise DataError(f"dataset '{NAME}': {path}: line {line}: score of id '{sid}' is "
                                f"{value} (NaN or infinite).")
        missing = [sid for sid in wanted if sid not in scores]
        if missing:
            raise DataError(f"dataset '{NAME}': {path}: id '{missing[0]}' has a label and a split "
                            f"but no score ({len(missing)} such id(s)); give every sample a score "
                            "or remove scores.csv.")
        return scores

    def _split_ids(self, fold: int | None, labels: dict[str, int]) -> tuple[dict, str]:
        splits_csv, folds_dir = self.root / "splits.csv", self.root / "folds"
        if splits_csv.is_file() and folds_dir.is_dir():
            raise DataError(f"dataset '{NAME}': {self.root.resolve()} has both splits.csv and "
                            "folds/; keep one of them.")
        if folds_dir.is_dir():
            folds = self.folds()
            if fold is None:
                fold = folds[0]
                log.info("dataset '%s': no fold chosen, using fold %s", NAME, fold)
            fdir = folds_dir / str(fold)
            if not fdir.is_dir():
                raise DataError(f"dataset '{NAME}': fold {fold} not found: looked for "
                                f"{fdir.resolve()} (folds: {', '.join(map(str, folds))}).")
            out = {}
            for split in SPLIT_NAMES:
                path = fdir / f"{split}.txt"
                if split == "val" and not path.is_file():
                    continue
                require_file(path, NAME, f"{split} id list of fold {fold}")
                out[split] = (read_lines(path), path)
            return out, f"folds/{fold}"
        if fold is not None:
            raise DataError(f"dataset '{NAME}': fold {fold} was requested but {self.root.resolve()} "
                            "has no folds/ folder.")
        if splits_csv.is_file():
            out: dict = {s: ([], splits_csv) for s in SPLIT_NAMES}
            for line, sid, split in self._csv(splits_csv, ("id", "split")):
                if split not in out:
                    raise DataError(f"dataset '{NAME}': {splits_csv}: line {line}: split "
                                    f"'{split}' for id '{sid}' is not train, val or test.")
                out[split][0].append(sid)
            if not out["val"][0]:
                del out["val"]
            return out, "splits.csv"
        ids = list(labels)
        y = torch.tensor([labels[i] for i in ids])
        train, test = stratified_split(y, self.test_fraction, self.split_seed)
        return ({"train": ([ids[i] for i in train.tolist()], None),
                 "test": ([ids[i] for i in test.tolist()], None)},
                f"stratified {1 - self.test_fraction:g}/{self.test_fraction:g} split, seed "
                f"{self.split_seed}")

    # -- features -------------------------------------------------------------------------
    def _sources(self, stack) -> list[ModalitySource]:
        ids_index: dict[str, int] | None = None
        npz = None
        sources = []
        for m in self.modalities:
            kind, path = self.files[m]
            if kind == "h5":
                handle = stack.enter_context(h5_open(path, NAME))
                fetch = h5_fetch(handle, path, NAME)
                where = str(path)
                first = next(iter(handle.values()), None)
                dtype = first.dtype if first is not None else np.dtype(np.float32)
            else:
                if ids_index is None:
                    ids_index = self._ids_index()
                if kind == "npy":
                    try:
                        array = np.load(path, mmap_mode="r", allow_pickle=False)
                    except Exception as exc:
                        raise DataError(f"dataset '{NAME}': cannot read {path.resolve()} as a .npy "
                                        f"file (corrupt?): {type(exc).__name__}: {exc}") from None
                    where = str(path)
                else:
                    if npz is None:
                        npz = stack.enter_context(np.load(path, allow_pickle=False))
                    try:
                        array = npz[m]
                    except Exception as exc:
                        raise DataError(f"dataset '{NAME}': cannot read array '{m}' of "
                                        f"{path.resolve()} (corrupt?): {type(exc).__name__}: "
                                        f"{exc}") from None
                    where = f"{path}[{m}]"
                if array.ndim not in (2, 3) or array.shape[0] != len(ids_index):
                    raise DataError(f"dataset '{NAME}': {where} has shape {tuple(array.shape)}; "
                                    f"expected (N, D) or (N, T, D) with N = {len(ids_index)} rows "
                                    "as in ids.txt.")
                fetch = rows_fetch(array, ids_index)
                dtype = array.dtype
            # integer arrays (token ids written by `mmtk extract --raw`) stay integers
            sources.append(ModalitySource(m, where, fetch, integer=bool(np.issubdtype(dtype, np.integer)),
                                          expect_dim=self.dims.get(m)))
        return sources

    def _ids_index(self) -> dict[str, int]:
        path = require_file(self.root / "ids.txt", NAME,
                            "ids.txt (row order of the .npy/.npz feature arrays)")
        ids = read_lines(path)
        index: dict[str, int] = {}
        for row, sid in enumerate(ids):
            if sid in index:
                raise DataError(f"dataset '{NAME}': {path}: id '{sid}' is listed twice (rows "
                                f"{index[sid] + 1} and {row + 1}).")
            index[sid] = row
        return index

    def _load_memory_mapped(self, split_ids: dict, labels: dict[str, int], names: list[str],
                            how: str, fold: int | None, scores: dict[str, float] | None) -> DataSplits:
        """Features stay on disk (np.load mmap_mode='r'); rows are read per batch. Values are
        checked for NaN/inf by the core in streamed chunks; dims come from the files."""
        index = self._ids_index()
        arrays = {m: np.load(p, mmap_mode="r", allow_pickle=False) for m, (_, p) in self.files.items()}
        for m, a in arrays.items():
            if a.ndim not in (2, 3) or a.shape[0] != len(index):
                raise DataError(f"dataset '{NAME}': {self.files[m][1]} has shape {tuple(a.shape)}; "
                                f"expected (N, D) or (N, T, D) with N = {len(index)} rows as in ids.txt.")
        parts = {split: _memory_mapped_split(self, ids, labels, arrays, index, scores)
                 for split, (ids, _) in split_ids.items()}
        info = {"dataset": NAME, "root": str(self.root), "memory_mapped": True, "split": how,
                "fold": fold, "feature_files": {m: str(p) for m, (_, p) in self.files.items()}}
        return DataSplits(train=parts["train"], val=parts.get("val"), test=parts["test"],
                          num_classes=len(names), class_names=names, info=info)

    # -- load -----------------------------------------------------------------------------
    def load(self, fold: int | None = None) -> DataSplits:
        labels, names, label_path = self._labels()
        split_ids, how = self._split_ids(fold, labels)
        for split, (ids, path) in split_ids.items():
            for sid in ids:
                if sid not in labels:
                    raise DataError(f"dataset '{NAME}': {path}: id '{sid}' ({split} split) has no "
                                    f"label in {label_path}.")
        check_disjoint({s: v[0] for s, v in split_ids.items()}, NAME, how)
        assigned = {sid for ids, _ in split_ids.values() for sid in ids}
        unassigned = len(labels) - len(assigned)
        if unassigned:
            log.warning("dataset '%s': %d labelled id(s) are in no split (%s) and are not used",
                        NAME, unassigned, how)
        scores = self._scores(sorted(assigned))
        if self.mmap:
            return self._load_memory_mapped(split_ids, labels, names, how, fold, scores)
        bad = BadSamples(NAME, self.on_bad_sample)
        check = integer_label_check(len(names))
        parts, facts = {}, {}
        with contextlib.ExitStack() as stack:
            sources = self._sources(stack)
            for split, (ids, _) in split_ids.items():
                y = np.array([labels[i] for i in ids], dtype=np.int64)
                score = None if scores is None else np.array([scores[i] for i in ids])
                parts[split], facts[split] = assemble(split, ids, y, sources, bad,
                                                      self.allow_missing, check, str(label_path),
                                                      self.max_frames, scores=score)
        if self.pool == "mean":
            parts = {s: pool_mean(d) for s, d in parts.items()}
        info = {"dataset": NAME, "root": str(self.root),
                "feature_files": {m: str(p) for m, (_, p) in self.files.items()},
                "split": how, "fold": fold, "splits": facts, "class_names_rule":
                "given" if self.class_names else
                ("integer labels" if names == [str(i) for i in range(len(names))] else "sorted names"),
                **bad.info()}
        if unassigned:
            info["unassigned_ids"] = unassigned
        return DataSplits(train=parts["train"], val=parts.get("val"), test=parts["test"],
                          num_classes=len(names), class_names=names, info=info)


def _memory_mapped_split(self: Arrays, ids: list[str], labels: dict[str, int],
                         arrays: dict[str, np.ndarray], index: dict[str, int],
                         scores: dict[str, float] | None) -> TensorData:
    from mmtk.lazy import LazyFeatures

    missing = [sid for sid in ids if sid not in index]
    if missing:
        raise DataError(f"dataset '{NAME}': id '{missing[0]}' has a label and a split but is not "
                        f"in {self.root / 'ids.txt'} (row order of the .npy arrays).")
    rows = np.array([index[sid] for sid in ids], dtype=np.int64)
    inputs, lengths = {}, {}
    for m, array in arrays.items():
        inputs[m] = LazyFeatures(array, rows, name=str(self.files[m][1]))
        length_file = self.root / f"{m}.lengths.npy"
        if array.ndim == 3 and length_file.is_file():
            lengths[m] = torch.from_numpy(np.load(length_file)[rows].astype(np.int64))
    y = torch.tensor([labels[sid] for sid in ids], dtype=torch.long)
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= len(self._labels()[1])):
        raise DataError(f"dataset '{NAME}': a label is out of range in {self.root / 'labels.csv'}.")
    return TensorData(inputs, y, list(ids), lengths=lengths,
                      scores=None if scores is None else torch.tensor([scores[i] for i in ids]))


def _is_int(text: str) -> bool:
    try:
        int(text)
        return True
    except ValueError:
        return False

