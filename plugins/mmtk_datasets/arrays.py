"""Generic per-modality arrays: any modalities a user (or ``mmtk extract``) writes to a folder.

The layout (file names, tables, manifest) is defined once in :mod:`mmtk.arrays_format`,
shared with the writer (``mmtk extract``); the exact rules are in this plugin's README.
Unlabelled training samples (label -1, NaN score): train ids that labels.csv leaves out, and
the ``unlabeled`` pool (split ``unlabeled`` in splits.csv, folds/<k>/unlabeled.txt, or
unlabeled.txt when the reader draws the split), whose labels, if any, are dropped.
Nothing here unpickles: ``.npy`` / ``.npz`` holding Python objects are refused.
"""
from __future__ import annotations

import contextlib
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from mmtk import DataError, Dataset, DataSplits, TensorData, stratified_split
from mmtk import arrays_format as fmt
from mmtk.safeload import load_npy, npz_member, open_npz, shown

from . import labels as class_labels
from .common import (
    BadSamples,
    ModalitySource,
    assemble,
    check_disjoint,
    check_link,
    h5_fetch,
    h5_open,
    log,
    pool_mean,
    read_lines,
    require_file,
    resolve_root,
    rows_fetch,
)
from .limits import Fraction, Seed, Size

NAME = "arrays"
WHO = f"dataset '{NAME}'"
SPLIT_NAMES = fmt.SPLIT_NAMES


class Arrays(Dataset):
    """Generic per-modality feature arrays (.h5 / .npy / features.npz) with labels.csv.

    Splits from an optional splits.csv or folds/<k>/{train,val,test}.txt; otherwise a seeded
    stratified split. Train ids without a label, and the ids of the ``unlabeled`` split
    (splits.csv), folds/<k>/unlabeled.txt or unlabeled.txt, are unlabelled training samples.
    """

    def __init__(self, root: Path | None = None, select: list[str] | None = None,
                 class_names: list[str] | None = None, dims: dict[str, Size] | None = None,
                 token_ids: list[str] | None = None, allow_missing_modalities: bool = False,
                 on_bad_sample: Literal["error", "skip"] = "error", test_fraction: Fraction = 0.2,
                 split_seed: Seed | None = None, max_frames: Size | None = None,
                 pool: Literal["none", "mean"] = "none", mmap: bool = False, seed: int = 0):
        self.root = resolve_root(root, NAME)
        self.files = self._discover()
        if select:
            unknown = sorted(set(select) - set(self.files))
            if unknown:
                raise DataError(f"{WHO}: data.select names '{unknown[0]}', which has no feature "
                                f"file in {shown(self.root)}; found: "
                                f"{', '.join(sorted(self.files)) or 'none'}.")
            self.files = {m: self.files[m] for m in select}
        self.class_names = list(class_names) if class_names else None
        self.dims = dict(dims or {})
        self.token_ids = self._token_ids(token_ids)
        self.allow_missing, self.on_bad_sample = allow_missing_modalities, on_bad_sample
        if not 0.0 < test_fraction < 1.0:
            raise DataError(f"{WHO}: test_fraction must be in (0, 1), got {test_fraction}")
        self.test_fraction = test_fraction
        self.split_seed = seed if split_seed is None else split_seed
        self.max_frames, self.pool = max_frames, pool
        self.mmap = mmap
        if mmap:
            not_npy = sorted(m for m, (kind, _) in self.files.items() if kind != "npy")
            if not_npy:
                raise DataError(f"{WHO}: mmap: true reads <modality>.npy files lazily, but "
                                f"{', '.join(not_npy)} in {shown(self.root)} are not .npy files; "
                                "convert them or set mmap: false.")

    # -- discovery (cheap: file names, the npz directory and the manifest only) -----------
    def _discover(self) -> dict[str, tuple[str, Path]]:
        files: dict[str, tuple[str, Path]] = {}

        def add(m: str, kind: str, path: Path) -> None:
            if m in files:
                raise DataError(f"{WHO}: modality '{m}' is given twice ({files[m][1].name} "
                                f"and {path.name}) in {shown(self.root)}; keep one.")
            files[m] = (kind, path)

        for path in sorted(self.root.iterdir()):
            if (path.suffix not in fmt.FEATURE_SUFFIXES or path.stem in fmt.RESERVED
                    or path.name.endswith(fmt.LENGTHS_SUFFIX)):
                continue
            check_link(path, NAME, "the feature file")      # a loop must not hide a modality
            if path.is_file():
                add(path.stem, path.suffix[1:], path)
        npz = check_link(self.root / fmt.NPZ, NAME, "the feature file")
        if npz.is_file():
            try:
                with zipfile.ZipFile(npz) as z:
                    keys = [n[:-4] for n in z.namelist() if n.endswith(".npy")]
            except (zipfile.BadZipFile, OSError) as exc:
                raise DataError(f"{WHO}: cannot read {shown(npz)} as an .npz file "
                                f"(corrupt?): {exc}") from None
            for key in keys:
                add(key, "npz", npz)
        if not files:
            raise DataError(f"{WHO}: no feature files in {shown(self.root)}: expected "
                            f"<modality>.h5, <modality>.npy or {fmt.NPZ}.")
        return files

    def _token_ids(self, given: list[str] | None) -> set[str]:
        """Modalities kept as int64 token ids: ``token_ids``, else those the manifest records as
        integer model inputs (``mmtk extract --raw`` of text). Integer arrays of any other
        modality are features and are cast to float32, as a float encoder expects."""
        if given is not None:
            unknown = sorted(set(given) - set(self.files))
            if unknown:
                raise DataError(f"{WHO}: data.token_ids names '{unknown[0]}', which has no "
                                f"feature file in {shown(self.root)}; found: "
                                f"{', '.join(sorted(self.files))}.")
            return set(given)
        manifest = fmt.read_manifest(self.root, WHO)
        return {m for m in self.files if fmt.holds_token_ids(manifest, m)}

    @staticmethod
    def example_params(workdir: Path) -> dict:
        """Parameters reading a tiny example written into ``workdir`` (for contract tests)."""
        from . import examples
        return examples.arrays(workdir)

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(sorted(self.files))

    def folds(self) -> list[int | None]:
        folder = check_link(self.root / fmt.FOLDS, NAME, "the folds folder")
        if not folder.is_dir():
            return [None]
        names = sorted(p.name for p in folder.iterdir() if p.is_dir())
        bad = [n for n in names if not n.isdigit()]
        if bad or not names:
            raise DataError(f"{WHO}: {shown(folder)} must hold folders named by "
                            f"integers (1, 2, ...); found {', '.join(names) or 'nothing'}.")
        return sorted(int(n) for n in names)

    # -- labels and splits ----------------------------------------------------------------
    def _table(self, path: Path, table: fmt.Table) -> list[tuple[int, str, str]]:
        """Rows of a per-sample table, where an id listed twice is an error."""
        rows = fmt.read_table(path, table.header, WHO)
        seen: dict[str, int] = {}
        for line, sid, _ in rows:
            if sid in seen:
                raise DataError(f"{WHO}: {path}: id '{sid}' is listed twice (lines "
                                f"{seen[sid]} and {line}).")
            seen[sid] = line
        return rows

    def _labels(self) -> tuple[class_labels.ClassLabels, Path]:
        path = require_file(self.root / fmt.LABELS.name, NAME, "labels file (header id,label)")
        rows = self._table(path, fmt.LABELS)
        return class_labels.parse(rows, self.class_names, path, NAME), path

    def _scores(self, wanted: list[str]) -> dict[str, float] | None:
        """Regression targets from the optional scores.csv; every used id needs a finite one."""
        path = check_link(self.root / fmt.SCORES.name, NAME, "the scores file")
        if not path.is_file():
            return None
        scores: dict[str, float] = {}
        for line, sid, value in self._table(path, fmt.SCORES):
            try:
                scores[sid] = float(value)
            except ValueError:
                raise DataError(f"{WHO}: {path}: line {line}: score {value!r} of id "
                                f"'{sid}' is not a number.") from None
            if not np.isfinite(scores[sid]):
                raise DataError(f"{WHO}: {path}: line {line}: score of id '{sid}' is "
                                f"{value} (NaN or infinite).")
        missing = [sid for sid in wanted if sid not in scores]
        if missing:
            raise DataError(f"{WHO}: {path}: id '{missing[0]}' has a label and a split "
                            f"but no score ({len(missing)} such id(s)); give every sample a score "
                            "or remove scores.csv.")
        return scores

    def _split_ids(self, fold: int | None, labels: class_labels.ClassLabels) -> tuple[dict, str]:
        splits_csv = check_link(self.root / fmt.SPLITS.name, NAME, "the splits file")
        folds_dir = check_link(self.root / fmt.FOLDS, NAME, "the folds folder")
        if splits_csv.is_file() and folds_dir.is_dir():
            raise DataError(f"{WHO}: {shown(self.root)} has both {fmt.SPLITS.name} and "
                            f"{fmt.FOLDS}/; keep one of them.")
        if folds_dir.is_dir():
            folds = self.folds()
            if fold is None:
                fold = folds[0]
                log.info("dataset '%s': no fold chosen, using fold %s", NAME, fold)
            fdir = folds_dir / str(fold)
            if not fdir.is_dir():
                raise DataError(f"{WHO}: fold {fold} not found: looked for "
                                f"{shown(fdir)} (folds: {', '.join(map(str, folds))}).")
            out = {}
            for split in SPLIT_NAMES:
                path = fmt.fold_file(self.root, fold, split)
                if split == "val" and not path.is_file() and not path.is_symlink():
                    continue
                require_file(path, NAME, f"{split} id list of fold {fold}")
                out[split] = (read_lines(path, NAME), path)
            pool = fdir / f"{fmt.UNLABELED}.txt"
            if check_link(pool, NAME, "the unlabelled id list").is_file():
                out[fmt.UNLABELED] = (read_lines(pool, NAME), pool)
            return out, f"{fmt.FOLDS}/{fold}"
        if fold is not None:
            raise DataError(f"{WHO}: fold {fold} was requested but {shown(self.root)} "
                            f"has no {fmt.FOLDS}/ folder.")
        if splits_csv.is_file():
            out: dict = {s: ([], splits_csv) for s in (*SPLIT_NAMES, fmt.UNLABELED)}
            for line, sid, split in fmt.read_table(splits_csv, fmt.SPLITS.header, WHO):
                if split not in out:
                    raise DataError(f"{WHO}: {splits_csv}: line {line}: split "
                                    f"'{split}' for id '{sid}' is not train, val, test or "
                                    f"{fmt.UNLABELED}.")
                out[split][0].append(sid)
            for optional in ("val", fmt.UNLABELED):
                if not out[optional][0]:
                    del out[optional]
            return out, fmt.SPLITS.name
        # stratify the usable labels; a sample with a label problem goes to train, where it is
        # reported (or skipped and counted) like any bad sample
        pool_path = check_link(self.root / f"{fmt.UNLABELED}.txt", NAME, "the unlabelled id list")
        pool = read_lines(pool_path, NAME) if pool_path.is_file() else []
        ids = [i for i in labels.index if i not in labels.problems and i not in set(pool)]
        y = torch.tensor([labels.index[i] for i in ids], dtype=torch.long)
        train, test = stratified_split(y, self.test_fraction, self.split_seed)
        out = {"train": ([ids[i] for i in train.tolist()] + [i for i in labels.problems if i not in set(pool)],
                         None), "test": ([ids[i] for i in test.tolist()], None)}
        if pool:
            out[fmt.UNLABELED] = (pool, pool_path)
        return (out, f"stratified {1 - self.test_fraction:g}/{self.test_fraction:g} split, seed "
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
            else:
                if ids_index is None:
                    ids_index = self._ids_index()
                if kind == "npy":
                    array = load_npy(path, WHO, mmap=True)
                    where = str(path)
                else:
                    if npz is None:
                        npz = stack.enter_context(open_npz(path, WHO))
                    array = npz_member(npz, m, path, WHO)
                    where = f"{path}[{m}]"
                self._check_rows(array, where, len(ids_index))
                fetch = rows_fetch(array, ids_index)
                lengths = self._lengths(m, array, ids_index)
                if lengths is not None:
                    fetch = _trimmed(fetch, lengths, ids_index)
            sources.append(ModalitySource(m, where, fetch, integer=m in self.token_ids,
                                          expect_dim=self.dims.get(m)))
        return sources

    @staticmethod
    def _check_rows(array: np.ndarray, where: str, n: int) -> None:
        if array.ndim not in (2, 3) or array.shape[0] != n:
            raise DataError(f"{WHO}: {where} has shape {tuple(array.shape)}; expected (N, D) or "
                            f"(N, T, D) with N = {n} rows as in {fmt.IDS}.")

    def _lengths(self, m: str, array: np.ndarray, index: dict[str, int]) -> np.ndarray | None:
        """Valid frames per row of a (N, T, D) array, from the optional <m>.lengths.npy."""
        path = check_link(fmt.lengths_path(self.root, m), NAME, "the lengths file")
        if array.ndim != 3 or not path.is_file():
            return None
        lengths = load_npy(path, WHO)
        if (lengths.shape != (len(index),) or not np.issubdtype(lengths.dtype, np.integer)
                or lengths.min(initial=1) < 1 or lengths.max(initial=0) > array.shape[1]):
            raise DataError(f"{WHO}: {path} must be (N,) = ({len(index)},) integers in "
                            f"1..{array.shape[1]} (valid frames per row of {m}.npy); got "
                            f"{lengths.dtype} of shape {tuple(lengths.shape)}"
                            f"{_range_of(lengths)}.")
        return lengths.astype(np.int64)

    def _ids_index(self) -> dict[str, int]:
        path = require_file(self.root / fmt.IDS, NAME,
                            f"{fmt.IDS} (row order of the .npy/.npz feature arrays)")
        ids = read_lines(path, NAME)
        index: dict[str, int] = {}
        for row, sid in enumerate(ids):
            if sid in index:
                raise DataError(f"{WHO}: {path}: id '{sid}' is listed twice (rows "
                                f"{index[sid] + 1} and {row + 1}).")
            index[sid] = row
        return index

    def _load_memory_mapped(self, split_ids: dict, labels: class_labels.ClassLabels,
                            label_path: Path, how: str, fold: int | None,
                            scores: dict[str, float] | None) -> DataSplits:
        """Features stay on disk (np.load mmap_mode='r'); rows are read per batch. Values are
        checked for NaN/inf by the core in streamed chunks; dims come from the files."""
        index = self._ids_index()
        arrays = {m: load_npy(p, WHO, mmap=True) for m, (_, p) in self.files.items()}
        for m, a in arrays.items():
            self._check_rows(a, str(self.files[m][1]), len(index))
            if m in self.token_ids and not np.issubdtype(a.dtype, np.integer):
                raise DataError(f"{WHO}: {self.files[m][1]} holds {a.dtype} values, but "
                                f"modality '{m}' is read as integer token ids (data.token_ids "
                                "or the manifest); write integers or leave it out of token_ids.")
        bad = BadSamples(NAME, self.on_bad_sample)
        parts = {}
        for split, (ids, _) in split_ids.items():
            kept = []
            for sid in ids:
                problem = labels.problems.get(sid)
                if problem:
                    bad.report(split, sid, label_path, problem, "label_out_of_range")
                else:
                    kept.append(sid)
            parts[split] = self._memory_mapped_split(kept, labels, arrays, index, scores)
        info = {"dataset": NAME, "root": str(self.root), "memory_mapped": True, "split": how,
                "fold": fold, "feature_files": {m: str(p) for m, (_, p) in self.files.items()},
                **bad.info()}
        return DataSplits(train=parts["train"], val=parts.get("val"), test=parts["test"],
                          num_classes=len(labels.names), class_names=labels.names, info=info)

    def _memory_mapped_split(self, ids: list[str], labels: class_labels.ClassLabels,
                             arrays: dict[str, np.ndarray], index: dict[str, int],
                             scores: dict[str, float] | None) -> TensorData:
        from mmtk import LazyFeatures

        missing = [sid for sid in ids if sid not in index]
        if missing:
            raise DataError(f"{WHO}: id '{missing[0]}' has a label and a split but is not "
                            f"in {self.root / fmt.IDS} (row order of the .npy arrays).")
        rows = np.array([index[sid] for sid in ids], dtype=np.int64)
        inputs, lengths = {}, {}
        for m, array in arrays.items():
            inputs[m] = LazyFeatures(array, rows, name=str(self.files[m][1]),
                                     integer=m in self.token_ids)
            stated = self._lengths(m, array, index)
            if stated is not None:
                lengths[m] = torch.from_numpy(stated[rows])
        y = torch.tensor([labels.index[sid] for sid in ids], dtype=torch.long)
        return TensorData(inputs, y, list(ids), lengths=lengths,
                          scores=None if scores is None else torch.tensor([scores[i] for i in ids]))

    # -- unlabelled samples ---------------------------------------------------------------
    def _unlabelled(self, split_ids: dict, labels: class_labels.ClassLabels,
                    label_path: Path) -> tuple[class_labels.ClassLabels, set[str]]:
        """Move the ``unlabeled`` pool into train and give it, and every train id without a
        label, label -1 (a pool id's own label is dropped). A val or test id needs a label."""
        pool_ids, _ = split_ids.pop(fmt.UNLABELED, ([], None))
        for split, (ids, path) in split_ids.items():
            for sid in ids:
                if sid not in labels.index and split != "train":
                    raise DataError(f"{WHO}: {path}: id '{sid}' ({split} split) has no "
                                    f"label in {label_path}; validation and test samples need "
                                    "one (an unlabelled sample belongs in train or the "
                                    f"'{fmt.UNLABELED}' split).")
        check_disjoint({**{s: v[0] for s, v in split_ids.items()}, fmt.UNLABELED: pool_ids}, NAME,
                       "the splits")
        unlabelled = set(pool_ids) | {i for i in split_ids["train"][0] if i not in labels.index}
        if pool_ids:
            train, where = split_ids["train"]
            split_ids["train"] = (train + list(pool_ids), where)
        index = {**labels.index, **dict.fromkeys(unlabelled, -1)}
        problems = {k: v for k, v in labels.problems.items() if k not in unlabelled}
        return replace(labels, index=index, problems=problems), unlabelled

    # -- load -----------------------------------------------------------------------------
    def load(self, fold: int | None = None) -> DataSplits:
        labels, label_path = self._labels()
        split_ids, how = self._split_ids(fold, labels)
        labels, unlabelled = self._unlabelled(split_ids, labels, label_path)
        check_disjoint({s: v[0] for s, v in split_ids.items()}, NAME, how)
        assigned = {sid for ids, _ in split_ids.values() for sid in ids}
        unassigned = len(set(labels.index) - assigned)
        if unassigned:
            log.warning("dataset '%s': %d labelled id(s) are in no split (%s) and are not used",
                        NAME, unassigned, how)
        scores = self._scores(sorted(assigned - unlabelled))
        if scores is not None:
            scores.update(dict.fromkeys(unlabelled, float("nan")))   # no target: unlabelled
        if self.mmap:
            return self._load_memory_mapped(split_ids, labels, label_path, how, fold, scores)
        bad = BadSamples(NAME, self.on_bad_sample)
        parts, facts = {}, {}
        with contextlib.ExitStack() as stack:
            sources = self._sources(stack)
            for split, (ids, _) in split_ids.items():
                y = np.array([labels.index[i] for i in ids], dtype=np.int64)
                score = None if scores is None else np.array([scores[i] for i in ids])
                parts[split], facts[split] = assemble(split, ids, y, sources, bad,
                                                      self.allow_missing, labels.check,
                                                      str(label_path), self.max_frames,
                                                      scores=score)
        if self.pool == "mean":
            parts = {s: pool_mean(d) for s, d in parts.items()}
        info = {"dataset": NAME, "root": str(self.root),
                "feature_files": {m: str(p) for m, (_, p) in self.files.items()},
                "split": how, "fold": fold, "splits": facts, "class_names_rule": labels.rule,
                **bad.info()}
        if self.token_ids:
            info["token_ids"] = sorted(self.token_ids)
        if unassigned:
            info["unassigned_ids"] = unassigned
        if unlabelled:
            info["unlabelled"] = len(unlabelled)
        return DataSplits(train=parts["train"], val=parts.get("val"), test=parts["test"],
                          num_classes=len(labels.names), class_names=labels.names, info=info)


def _range_of(values: np.ndarray) -> str:
    if values.size and np.issubdtype(values.dtype, np.number):
        return f", values {values.min()}..{values.max()}"
    return ""


def _trimmed(fetch, lengths: np.ndarray, index: dict[str, int]):
    """Cut a padded (T, D) row to its stated length."""
    def inner(sample_id: str) -> np.ndarray:
        return fetch(sample_id)[:int(lengths[index[sample_id]])]
    return inner
