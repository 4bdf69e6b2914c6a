"""MMIN layout (AIM3-RUC/MMIN): IEMOCAP 4-class (10 folds) and MSP-IMPROV (12 folds).

Feature root::

    A/<name>.h5   V/<name>.h5   L/<name>.h5     one dataset per utterance id, (T, D) each
    (A/comparE_mean_std.h5 is ignored: mmtk fits statistics on each fold's train split itself)

Target root (default ``<root>/target``)::

    <fold>/{trn,val,tst}_label.npy     one-hot rows (IEMOCAP) or integer labels (MSP)
    <fold>/{trn,val,tst}_int2name.npy  the utterance id of every row (bytes/str, or rows of them)
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from mmtk import DataError, Dataset, DataSplits
from mmtk.safeload import load_npy, shown

from .common import (
    BadSamples,
    ModalitySource,
    assemble,
    check_disjoint,
    check_link,
    h5_fetch,
    h5_open,
    ids_of,
    integer_label_check,
    log,
    pool_mean,
    read_unlabelled_ids,
    resolve_root,
    train_ids_to_unlabel,
    unlabel,
)
from .limits import Size

NAME = "mmin_layout"
# MMIN's folder letters, under the modality names mmtk uses (conditions print as a/t/v)
DEFAULT_FEATURES = {"audio": "A", "text": "L", "visual": "V"}
SPLIT_FILES = {"train": "trn", "val": "val", "test": "tst"}


class MMINLayout(Dataset):
    """Features in AIM3-RUC/MMIN's layout (IEMOCAP, MSP-IMPROV): A/V/L h5 frame sequences, per-fold labels.

    A/V/L h5 files of frame sequences plus per-fold trn/val/tst label and int2name .npy files.
    ``unlabeled_ids`` names a text file of utterance ids (one per line) whose labels are
    dropped when they are training samples of the fold (label -1: unlabelled); listed ids in
    validation or test keep theirs, and an id in no split is an error.
    """

    def __init__(self, root: Path | None = None, target_root: Path | None = None,
                 features: dict[str, str] | None = None, class_names: list[str] | None = None,
                 dims: dict[str, Size] | None = None, max_frames: Size | None = None,
                 pool: Literal["none", "mean"] = "none", allow_missing_modalities: bool = False,
                 on_bad_sample: Literal["error", "skip"] = "error",
                 unlabeled_ids: Path | None = None):
        self.root = resolve_root(root, NAME)
        self.target_root = Path(target_root) if target_root is not None else self.root / "target"
        self.features = dict(features or DEFAULT_FEATURES)
        if not self.features:
            raise DataError(f"dataset '{NAME}': data.features names no modality")
        self.class_names = list(class_names) if class_names else None
        self.dims = dict(dims or {})
        self.max_frames, self.pool = max_frames, pool
        self.allow_missing, self.on_bad_sample = allow_missing_modalities, on_bad_sample
        self.unlabeled_ids = unlabeled_ids

    @staticmethod
    def example_params(workdir: Path) -> dict:
        """Parameters reading a tiny example written into ``workdir`` (for contract tests)."""
        from . import examples
        return examples.mmin_layout(workdir)

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(sorted(self.features))

    def folds(self) -> list[int]:
        check_link(self.target_root, NAME, "the target folder")
        if not self.target_root.is_dir():
            raise DataError(f"dataset '{NAME}': the target folder {shown(self.target_root)} does "
                            "not exist (set data.target_root; by default it is <root>/target).")
        folds = sorted(int(p.name) for p in self.target_root.iterdir()
                       if p.is_dir() and p.name.isdigit())
        if not folds:
            raise DataError(f"dataset '{NAME}': no fold folders (1, 2, ...) in "
                            f"{shown(self.target_root)}.")
        return folds

    def feature_file(self, modality: str) -> Path:
        """``features[m]`` is an h5 file, or a folder holding exactly one feature h5."""
        spec = check_link(self.root / self.features[modality], NAME,
                          f"the feature file of '{modality}'")
        if spec.is_file():
            return spec
        if spec.is_dir():
            found = sorted(p for p in spec.glob("*.h5") if not p.stem.endswith("mean_std"))
            if len(found) == 1:
                return found[0]
            if found:
                raise DataError(f"dataset '{NAME}': {shown(spec)} holds several feature files "
                                f"({', '.join(p.name for p in found)}); name one in "
                                f"data.features.{modality}, e.g. {self.features[modality]}/"
                                f"{found[0].name}.")
        raise DataError(f"dataset '{NAME}': feature file for '{modality}' not found: looked for "
                        f"{shown(spec)} (an .h5 file, or a folder holding one feature .h5 file; "
                        f"set data.features.{modality} to the file).")

    def _split(self, fold_dir: Path, split: str) -> tuple[list[str], np.ndarray, Path]:
        stem = SPLIT_FILES[split]
        label_path, name_path = fold_dir / f"{stem}_label.npy", fold_dir / f"{stem}_int2name.npy"
        for p in (label_path, name_path):
            check_link(p, NAME, f"the {split} file")
            if not p.is_file():
                raise DataError(f"dataset '{NAME}': {split} file not found: looked for {shown(p)}.")
        who = f"dataset '{NAME}'"
        labels, names = load_npy(label_path, who), load_npy(name_path, who)
        if names.ndim not in (1, 2) or names.dtype.kind not in "SUiu":   # bytes, str, integers
            raise DataError(f"dataset '{NAME}': {name_path} holds {names.dtype} values of shape "
                            f"{names.shape}; expected (N,) or (N, 1) utterance ids as bytes or str.")
        ids = ids_of(names, NAME, name_path, split)
        if labels.dtype.kind not in "iuf":          # integers or floats (one-hot rows)
            raise DataError(f"dataset '{NAME}': {label_path} ({split} split) holds {labels.dtype} "
                            "values; one-hot rows or integer class labels are expected.")
        if len(ids) != len(labels):
            raise DataError(f"dataset '{NAME}': {label_path} has {len(labels)} rows but "
                            f"{name_path} has {len(ids)} ids; they must be aligned.")
        return ids, labels, label_path

    def load(self, fold: int | None = None) -> DataSplits:
        if fold is None:
            fold = self.folds()[0]
            log.info("dataset '%s': no fold chosen, using fold %s (data.folds: all runs every fold)",
                     NAME, fold)
        fold_dir = self.target_root / str(fold)
        if not fold_dir.is_dir():
            raise DataError(f"dataset '{NAME}': fold {fold} not found: looked for {shown(fold_dir)} "
                            f"(folds present: {', '.join(map(str, self.folds()))}).")
        raw = {s: self._split(fold_dir, s) for s in SPLIT_FILES}
        check_disjoint({s: r[0] for s, r in raw.items()}, NAME, str(fold_dir))
        unlabelled = train_ids_to_unlabel(read_unlabelled_ids(self.unlabeled_ids, NAME),
                                          {s: r[0] for s, r in raw.items()}, self.unlabeled_ids, NAME)
        num_classes, label_kind = self._num_classes(raw)
        bad = BadSamples(NAME, self.on_bad_sample)
        files = {m: self.feature_file(m) for m in self.modalities}
        handles = {m: h5_open(p, NAME) for m, p in files.items()}
        try:
            sources = [ModalitySource(m, str(files[m]), h5_fetch(handles[m], files[m], NAME),
                                      expect_dim=self.dims.get(m)) for m in self.modalities]
            parts, facts = {}, {}
            for split, (ids, labels, label_path) in raw.items():
                int_labels, check = self._labels(labels, label_kind, num_classes, ids, split,
                                                 label_path)
                parts[split], facts[split] = assemble(
                    split, ids, int_labels, sources, bad, self.allow_missing, check,
                    str(label_path), self.max_frames)
        finally:
            for h in handles.values():
                h.close()
        parts["train"] = unlabel(parts["train"], unlabelled)
        if self.pool == "mean":
            parts = {s: pool_mean(d) for s, d in parts.items()}
        names = self.class_names or [str(i) for i in range(num_classes)]
        info = {"dataset": NAME, "fold": fold, "feature_files": {m: str(p) for m, p in files.items()},
                "target_dir": str(fold_dir), "labels": label_kind, "splits": facts, **bad.info()}
        if self.unlabeled_ids is not None:
            info["unlabelled_train"] = int((~parts["train"].labeled).sum())
        return DataSplits(train=parts["train"], val=parts["val"], test=parts["test"],
                          num_classes=num_classes, class_names=names, info=info)

    def _num_classes(self, raw: dict) -> tuple[int, str]:
        shapes = {s: r[1].shape for s, r in raw.items()}
        ndims = {len(v) for v in shapes.values()}
        if ndims == {2}:
            widths = {v[1] for v in shapes.values()}
            if len(widths) != 1:
                raise DataError(f"dataset '{NAME}': one-hot label files disagree on the number of "
                                f"classes: {shapes}.")
            k = widths.pop()
            if self.class_names and len(self.class_names) != k:
                raise DataError(f"dataset '{NAME}': the labels are one-hot over {k} classes but "
                                f"data.class_names lists {len(self.class_names)}.")
            return k, "one-hot"
        if ndims == {1}:
            if self.class_names:
                return len(self.class_names), "integer"
            finite = [r[1][np.isfinite(r[1])] for r in raw.values()]   # others: _labels says
            top = max((int(v.max()) for v in finite if len(v)), default=0)
            return top + 1, "integer"
        raise DataError(f"dataset '{NAME}': label files must be one-hot (N, C) or integer (N,) "
                        f"arrays; got shapes {shapes}.")

    def _labels(self, labels: np.ndarray, kind: str, num_classes: int, ids: list[str],
                split: str, path: Path):
        if kind == "one-hot":
            rows = np.asarray(labels, dtype=np.float64)
            ok = np.isclose(rows.sum(1), 1.0) & np.isclose(rows.max(1), 1.0) & (rows.min(1) >= 0)
            # an encoded -1 marks a row that is not one-hot; the check reports it per sample
            out = np.where(ok, rows.argmax(1), -1)

            def check(label, sample_id=None):
                return ("label row is not one-hot (expected exactly one 1 and zeros)"
                        if label < 0 else None)
            return out, check
        values = np.asarray(labels)
        if not np.issubdtype(values.dtype, np.integer):
            whole = np.isfinite(values) & np.equal(np.mod(values, 1), 0)
            if not whole.all():
                row = int(np.flatnonzero(~whole)[0])
                raise DataError(f"dataset '{NAME}': {path}: sample '{ids[row]}' ({split} split, "
                                f"row {row}) has label {values[row]}, which is not an integer; "
                                f"{int((~whole).sum())} such label(s) in this file. Integer "
                                "labels must be whole numbers (class indices 0, 1, ...).")
            values = values.astype(np.int64)
        return values, integer_label_check(num_classes)
