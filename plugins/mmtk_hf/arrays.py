"""Writing the generic arrays format (:mod:`mmtk.arrays_format`), resumably.

A directory holds ``<modality>.h5`` (one h5 dataset per sample id: an array ``(T, D)`` or
``(D,)``), ``labels.csv`` (``id,label``), optionally ``splits.csv`` (``id,split``), and
``manifest.json`` recording, per modality, how the arrays were made. The file names, table
layout and manifest are defined once in the core, where the ``arrays`` dataset of the
mmtk_datasets plugin reads them too.

Resuming: ids already in the h5 file are skipped; every id is written and flushed before the
next, and the file is closed on errors and Ctrl-C, so an interrupted extraction leaves a
valid file that the same command continues.
"""
from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

import numpy as np

from mmtk import DataError
from mmtk import arrays_format as fmt
from mmtk.arrays_format import read_manifest, write_manifest

from .media import read_table

FORMAT = fmt.FORMAT
# settings that must match for an extraction to continue into an existing file
RESUME_KEYS = ("kind", "model", "layer", "pooling", "patch_pooling", "max_length", "sample_rate",
               "max_frames", "normalize")


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class ArraysWriter:
    """Appends one modality's arrays to ``<out>/<modality>.h5`` and keeps its manifest entry."""

    def __init__(self, out: str | Path, modality: str, settings: dict[str, Any], overwrite: bool = False):
        import h5py

        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.modality = modality
        self.path = fmt.feature_path(self.out, modality, ".h5")
        previous = read_manifest(self.out, "mmtk extract")["modalities"].get(modality)
        if overwrite:
            self.path.unlink(missing_ok=True)
            previous = None
        elif previous and self.path.exists():
            changed = [k for k in RESUME_KEYS if previous.get(k) != settings.get(k)]
            if changed:
                diff = "; ".join(f"{k}: {previous.get(k)!r} -> {settings.get(k)!r}" for k in changed)
                raise DataError(f"'{self.path}' was extracted with other settings ({diff}); continuing "
                                "would mix features. Use another --out folder, or --overwrite to "
                                "start this modality again.")
        try:
            self.file = h5py.File(self.path, "a")
        except OSError as exc:
            raise DataError(f"cannot open '{self.path}' ({exc}); if a crash damaged it, delete it "
                            "(or pass --overwrite) and extract again") from exc
        self.done = set(self.file.keys())
        self.entry = {**settings, "file": self.path.name, "started": now(),
                      "created": (previous or {}).get("created", now()), "status": "running"}
        self._save_entry()

    def write(self, sample_id: str, array: np.ndarray) -> None:
        if sample_id in self.done:
            return
        self.file.create_dataset(sample_id, data=array)
        self.file.flush()
        self.done.add(sample_id)

    def close(self, status: str, problems: dict[str, str], **info: Any) -> None:
        if self.file.id.valid:
            keys = list(self.file.keys())
            self.entry["count"] = len(keys)
            if keys:
                first = self.file[keys[0]]
                self.entry["array_shape"] = ["T", *first.shape[1:]] if first.ndim == 2 else list(first.shape)
                self.entry["dtype"] = str(first.dtype)
            self.file.close()
        self.entry.update(info, status=status, finished=now(),
                          problems=dict(sorted(problems.items())))
        self._save_entry()

    def _save_entry(self) -> None:
        # re-read first: another modality's extraction into the same folder may have written
        manifest = read_manifest(self.out, "mmtk extract")
        manifest["modalities"][self.modality] = self.entry
        write_manifest(self.out, manifest)


def copy_table(source: str | Path, out: Path, table: fmt.Table, what: str) -> int:
    """Write ``out/<table.name>`` from a CSV (checked); an existing, different one is an error."""
    rows = read_table(source, table.header, what)
    text = fmt.format_table(table.header, rows)
    target = out / table.name
    if target.exists() and target.read_text(encoding="utf-8-sig") != text:
        raise DataError(f"'{target}' already exists with different content than '{source}'; all "
                        f"modalities of one output folder share one {table.name}. Use another --out "
                        "folder or remove the old file.")
    out.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return len(rows)
