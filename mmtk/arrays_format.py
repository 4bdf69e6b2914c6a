"""The generic arrays format: one definition for its writer and its reader.

``mmtk extract`` (plugin ``mmtk_hf``) writes it and the ``arrays`` dataset (plugin
``mmtk_datasets``) reads it; plugins do not import each other, so both take the file names,
the table layout and the manifest from here. A folder holds::

    <modality>.h5          one dataset per sample id: (T, D) or (D,); variable T allowed
    <modality>.npy         (N, D) or (N, T, D), rows aligned with ids.txt
    <modality>.lengths.npy optional (N,) valid frames of a (N, T, D) .npy
    features.npz           one array per modality (key = modality), rows aligned with ids.txt
    ids.txt                one id per line (needed by .npy / .npz modalities)
    labels.csv             header ``id,label``
    scores.csv             optional, header ``id,score``: a float regression target per sample
    splits.csv             optional, header ``id,split`` with train / val / test / unlabeled
    folds/<k>/{train,val,test}.txt   optional instead of splits.csv; val.txt may be left out
    folds/<k>/unlabeled.txt, or unlabeled.txt (without splits)  optional: an unlabelled pool
                           (trained on with label -1; a label these ids have is dropped)
    manifest.json          optional: per modality, how the arrays were made

Text files are UTF-8 (a byte-order mark is accepted).
"""
from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from .errors import DataError
from .safeload import read_text, shown

FORMAT = "mmtk-arrays"
VERSION = 1
MANIFEST = "manifest.json"
IDS = "ids.txt"
NPZ = "features.npz"
FEATURE_SUFFIXES = (".h5", ".npy")
LENGTHS_SUFFIX = ".lengths.npy"
FOLDS = "folds"
SPLIT_NAMES = ("train", "val", "test")
UNLABELED = "unlabeled"        # the split (and <name>.txt id list) of unlabelled training samples
# manifest "kind" of model inputs (`mmtk extract --raw`); integer inputs are token ids
INPUTS_KIND = "inputs"


@dataclass(frozen=True)
class Table:
    """A two-column CSV file with a fixed header."""

    name: str
    header: tuple[str, str]


LABELS = Table("labels.csv", ("id", "label"))
SCORES = Table("scores.csv", ("id", "score"))
SPLITS = Table("splits.csv", ("id", "split"))
# file stems that are not modalities
RESERVED = {Path(IDS).stem, Path(NPZ).stem, Path(LABELS.name).stem, Path(SCORES.name).stem,
            Path(SPLITS.name).stem}


def feature_path(root: Path, modality: str, suffix: str = ".h5") -> Path:
    return Path(root) / f"{modality}{suffix}"


def lengths_path(root: Path, modality: str) -> Path:
    return Path(root) / f"{modality}{LENGTHS_SUFFIX}"


def fold_file(root: Path, fold: int, split: str) -> Path:
    return Path(root) / FOLDS / str(fold) / f"{split}.txt"


# ------------------------------------------------------------------------- text files ---
def read_id_list(path: Path, who: str) -> list[str]:
    """The ids of an ``ids.txt`` or fold file: one per line, blank lines ignored."""
    return [line.strip() for line in read_text(path, who).splitlines() if line.strip()]


def read_table(path: Path, header: tuple[str, str], who: str) -> list[tuple[int, str, str]]:
    """Rows ``(line number, first, second)`` of a two-column CSV that starts with ``header``."""
    text = read_text(path, who)
    rows = []
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        head = next(reader, None)
        if head is None or tuple(h.strip() for h in head) != header:
            raise DataError(f"{who}: {shown(path)} must start with the header "
                            f"'{','.join(header)}', found {','.join(head or []) or 'nothing'!r}.")
        while True:
            line = reader.line_num + 1          # where the row starts (a quoted value may span lines)
            row = next(reader, None)
            if row is None:
                break
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != 2 or not row[0].strip() or not row[1].strip():
                raise DataError(f"{who}: {path}: line {line} should be "
                                f"'{header[0]},{header[1]}' with both values set, got {row!r}.")
            rows.append((line, row[0].strip(), row[1].strip()))
    except csv.Error as exc:
        raise DataError(f"{who}: {shown(path)} is not a valid CSV: {exc}.") from None
    return rows


def format_table(header: tuple[str, str], rows: Iterable[tuple[str, str]]) -> str:
    """CSV text of ``header`` and ``rows`` (what :func:`read_table` reads back)."""
    return ",".join(header) + "\n" + "".join(f"{_quoted(str(a))},{_quoted(str(b).strip())}\n"
                                             for a, b in rows)


def _quoted(value: str) -> str:
    # csv.writer leaves a lone '\r' unquoted with '\n' line ends, which breaks the row
    if any(c in value for c in ',"\n\r'):
        return '"' + value.replace('"', '""') + '"'
    return value


# --------------------------------------------------------------------------- manifest ---
def empty_manifest() -> dict:
    return {"format": FORMAT, "version": VERSION, "modalities": {}}


def read_manifest(root: Path, who: str = "arrays") -> dict:
    """``root/manifest.json``, or an empty manifest when there is none."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        return empty_manifest()
    try:
        manifest = json.loads(read_text(path, who))
    except ValueError as exc:
        raise DataError(f"{who}: cannot read {shown(path)}: {exc}; fix or delete it.") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("modalities"), dict):
        raise DataError(f"{who}: {shown(path)} is not an mmtk arrays manifest (no 'modalities' "
                        "mapping); fix or delete it, or use another folder.")
    return manifest


def write_manifest(root: Path, manifest: dict) -> None:
    path = Path(root) / MANIFEST
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    os.replace(tmp, path)   # never leaves a half-written manifest


def holds_token_ids(manifest: dict, modality: str) -> bool:
    """Whether the manifest records ``modality`` as integer model inputs, i.e. token ids
    (``mmtk extract --raw`` of text): those stay integers, everything else is a float feature."""
    entry = manifest.get("modalities", {}).get(modality)
    if not isinstance(entry, dict) or entry.get("kind") != INPUTS_KIND:
        return False
    try:
        return bool(np.issubdtype(np.dtype(entry.get("dtype", "float32")), np.integer))
    except TypeError:
        return False
