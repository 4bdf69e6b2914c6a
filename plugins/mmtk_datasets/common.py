"""Shared machinery of the dataset readers: data roots, bad-sample policy, assembling splits.

Every reader turns "ids of a split + a way to fetch one sample's array per modality" into a
:class:`mmtk.data.TensorData`. All checks live here, so every format reports bad data the
same way: one paragraph naming the file, the sample id and the problem, or (with
``on_bad_sample: skip``) a count per reason in ``DataSplits.info["skipped"]``.
"""
from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from mmtk import DataError
from mmtk import arrays_format as fmt
from mmtk.safeload import shown

if TYPE_CHECKING:
    from mmtk import TensorData
# torch (and the data classes) are imported by the functions that build tensors: checking a
# recipe builds dataset objects to learn their modalities, and `mmtk validate` must not wait
# for torch.

log = logging.getLogger("mmtk.datasets")

ENV_ROOT = "MMTK_DATA"
SPLITS = ("train", "val", "test")


def resolve_root(root: Path | str | None, dataset: str, must_be: str = "dir") -> Path:
    """The data root from ``data.root`` or, when unset, ``$MMTK_DATA``; it must exist."""
    origin = "data.root"
    if root is None or str(root) == "":
        env = os.environ.get(ENV_ROOT)
        if not env:
            raise DataError(f"dataset '{dataset}': no data location given. Set data.root in the "
                            f"recipe, pass --set data.root=PATH, or set the {ENV_ROOT} environment "
                            "variable.")
        root, origin = env, f"${ENV_ROOT}"
    if "${env:" in str(root):
        raise DataError(f"dataset '{dataset}': data.root is {Path(root).name!r}, an environment "
                        "variable that is not set; set it, or pass --set data.root=PATH.")
    path = Path(root).expanduser()
    check_link(path, dataset, f"the data location (from {origin})")
    if not path.exists():
        raise DataError(f"dataset '{dataset}': the data location {shown(path)} (from {origin}) does "
                        "not exist. Relative paths in a recipe are relative to the recipe file; fix "
                        f"data.root (or --set data.root=PATH, or {ENV_ROOT}).")
    if must_be == "dir" and not path.is_dir():
        raise DataError(f"dataset '{dataset}': the data location {shown(path)} (from {origin}) is a "
                        "file, but a directory is expected here.")
    return path


def check_link(path: Path, dataset: str, what: str) -> Path:
    """A symbolic link that loops or points nowhere is an error, never "not there"."""
    if path.is_symlink() and not path.exists():
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        raise DataError(f"dataset '{dataset}': {what} {path.absolute()} is a symbolic link that "
                        f"cannot be followed (it points to {target!r}, which loops back or does "
                        "not exist); fix or remove the link.")
    return path


def require_file(path: Path, dataset: str, what: str) -> Path:
    check_link(path, dataset, what)
    if not path.is_file():
        raise DataError(f"dataset '{dataset}': {what} not found: looked for {shown(path)}.")
    return path


# ----------------------------------------------------------------------- bad samples ---
@dataclass
class BadSamples:
    """Policy for bad samples: raise at the first one (``error``) or drop and count (``skip``)."""

    dataset: str
    policy: str = "error"
    counts: Counter = field(default_factory=Counter)
    examples: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.policy not in ("error", "skip"):
            raise DataError(f"dataset '{self.dataset}': on_bad_sample must be 'error' or 'skip', "
                            f"got {self.policy!r}")

    def report(self, split: str, sample_id: str, source: str | Path, problem: str, reason: str) -> None:
        message = f"{source}: sample '{sample_id}' ({split} split): {problem}"
        if self.policy == "error":
            raise DataError(f"dataset '{self.dataset}': {message}. Fix the data, or set "
                            "data.on_bad_sample: skip to drop such samples (they are counted "
                            "in the run).")
        self.counts[(split, reason)] += 1
        self.examples.setdefault(reason, message)

    def info(self) -> dict:
        if not self.counts:
            return {}
        per_split: dict = {}
        for (split, reason), n in sorted(self.counts.items()):
            per_split.setdefault(split, {})[reason] = n
        total = sum(self.counts.values())
        log.warning("dataset '%s': skipped %d bad sample(s) (on_bad_sample: skip): %s",
                    self.dataset, total, per_split)
        return {"skipped": per_split, "skipped_total": total, "skipped_examples": dict(self.examples)}


# ------------------------------------------------------------------------- assembling ---
class Absent(Exception):
    """Raised by a fetch function: the sample has no entry for this modality."""


Fetch = Callable[[str], np.ndarray]   # sample id -> array; raises Absent or DataError


@dataclass
class ModalitySource:
    """Where one modality comes from: a description for messages and a fetch function."""

    name: str
    source: str                       # file path (for messages)
    fetch: Fetch
    integer: bool = False             # keep integer dtype (token ids); never scaled by the core
    expect_dim: int | None = None     # required last dimension (None: first sample sets it)
    expect_ndim: int | None = None    # 1 = (D,) vectors, 2 = (T, D) sequences; None: first sample
    reference: str | None = None      # id of the sample that fixed dim/ndim (for messages)

    def check(self, sample_id: str, x: np.ndarray) -> tuple[str, str] | None:
        """(problem, reason) if the array is unusable, else None; fixes the reference shape."""
        if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
            return f"has non-numeric dtype {x.dtype}", "bad_dtype"
        if np.issubdtype(x.dtype, np.complexfloating):
            return f"has complex dtype {x.dtype}", "bad_dtype"
        if self.integer and not (np.issubdtype(x.dtype, np.integer) or x.dtype == bool):
            # never truncate floats into token ids silently
            return (f"has {x.dtype} values but modality '{self.name}' holds integer token ids",
                    "bad_dtype")
        if x.ndim not in (1, 2):
            return (f"has shape {tuple(x.shape)}; expected (D,) or (T, D)", "bad_shape")
        if self.expect_ndim is None:
            self.expect_ndim, self.reference = x.ndim, sample_id
        elif x.ndim != self.expect_ndim:
            want = "(T, D)" if self.expect_ndim == 2 else "(D,)"
            return (f"has shape {tuple(x.shape)} but samples of this modality are {want}"
                    f"{self._ref()}", "bad_shape")
        if x.size == 0 or x.shape[0] == 0:
            return f"is empty (shape {tuple(x.shape)})", "empty"
        d = int(x.shape[-1])
        if self.expect_dim is None:
            self.expect_dim, self.reference = d, self.reference or sample_id
        elif d != self.expect_dim:
            return (f"has feature dimension {d} but {self.expect_dim} is expected"
                    f"{self._ref()}", "wrong_dim")
        if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
            nan = int(np.isnan(x).sum())
            inf = int(np.isinf(x).sum())
            return f"contains {nan} NaN and {inf} infinite value(s)", "nan_or_inf"
        return None

    def _ref(self) -> str:
        return f" (as sample '{self.reference}')" if self.reference else " (data.dims)"


def assemble(split: str, ids: list[str], labels: np.ndarray, sources: list[ModalitySource],
             bad: BadSamples, allow_missing: bool = False, label_check: Callable | None = None,
             label_source: str = "labels", max_frames: int | None = None,
             scores: np.ndarray | None = None) -> tuple[TensorData, dict]:
    """Read every sample of a split, check it, and build zero-padded tensors.

    ``label_check(label, sample_id) -> problem or None`` flags unusable labels. ``scores`` are
    per-sample regression targets (e.g. sentiment), kept aligned with the surviving samples.
    Returns the split and per-split facts (counts of absent modalities, truncated samples).
    """
    import torch

    from mmtk import TensorData

    sources = sorted(sources, key=lambda s: s.name)
    kept_ids, kept_labels, kept_rows = [], [], []
    arrays: dict[str, list] = {s.name: [] for s in sources}
    absent = Counter()
    for row, (sid, label) in enumerate(zip(ids, labels)):
        if label_check is not None:
            problem = label_check(label, sid)
            if problem:
                bad.report(split, sid, label_source, problem, "label_out_of_range")
                continue
        sample, ok = {}, True
        for s in sources:
            try:
                x = np.asarray(s.fetch(sid))
            except DataError as exc:   # a fetch knows the file and the id; add the split
                text = str(exc).replace(f"sample '{sid}'", f"sample '{sid}' ({split} split)", 1)
                raise DataError(text) from None
            except Absent:
                if not allow_missing:
                    bad.report(split, sid, s.source, f"has no entry for modality '{s.name}' (the id "
                               "is listed in the split but absent from the feature file; set "
                               "data.allow_missing_modalities: true if the modality is really "
                               "missing for this sample)", "missing_id")
                    ok = False
                    break
                sample[s.name] = None
                continue
            problem = s.check(sid, x)
            if problem:
                bad.report(split, sid, s.source, problem[0], problem[1])
                ok = False
                break
            sample[s.name] = x
        if not ok:
            continue
        if sources and all(v is None for v in sample.values()):
            bad.report(split, sid, ", ".join(s.source for s in sources),
                       "has no modality at all (absent from every feature file)", "missing_id")
            continue
        for s in sources:
            if sample[s.name] is None:
                absent[s.name] += 1
            arrays[s.name].append(sample[s.name])
        kept_ids.append(sid)
        kept_labels.append(int(label))
        kept_rows.append(row)
    n = len(kept_ids)
    inputs, lengths, present_cols, truncated = {}, {}, [], Counter()
    for s in sources:
        x, length, present, cut = _stack(arrays[s.name], s, n, max_frames)
        inputs[s.name] = x
        if length is not None:
            lengths[s.name] = length
        present_cols.append(present)
        if cut:
            truncated[s.name] = cut
    present = torch.stack(present_cols, 1) if present_cols else torch.ones(n, 0, dtype=torch.bool)
    kept_scores = None if scores is None else \
        torch.from_numpy(np.asarray(scores, dtype=np.float32).reshape(-1)[kept_rows])
    data = TensorData(inputs, torch.tensor(kept_labels, dtype=torch.long), kept_ids, present,
                      lengths, kept_scores)
    facts = {"n": n}
    if absent:
        facts["absent_modalities"] = dict(absent)
    if truncated:
        facts["truncated_to_max_frames"] = dict(truncated)
    return data, facts


def _stack(items: list, s: ModalitySource, n: int, max_frames: int | None):
    """Zero-padded tensor (N, D) or (N, T, D), lengths, present column, #truncated."""
    import torch

    dim = s.expect_dim or 1
    dtype = torch.long if s.integer else torch.float32
    np_dtype = np.int64 if s.integer else np.float32
    present = torch.tensor([a is not None for a in items], dtype=torch.bool)
    if s.expect_ndim != 2:
        x = torch.zeros(n, dim, dtype=dtype)
        for i, a in enumerate(items):
            if a is not None:
                x[i] = torch.from_numpy(np.array(a, dtype=np_dtype))
        return x, None, present, 0
    t_len = [0 if a is None else int(a.shape[0]) for a in items]
    cut = sum(1 for t in t_len if max_frames is not None and t > max_frames)
    if max_frames is not None:
        t_len = [min(t, max_frames) for t in t_len]
    t_max = max(t_len, default=0) or 1
    x = torch.zeros(n, t_max, dim, dtype=dtype)
    for i, a in enumerate(items):
        if a is not None:
            x[i, :t_len[i]] = torch.from_numpy(np.array(a[:t_len[i]], dtype=np_dtype))
    # an absent modality gets length 1 of zeros, so encoders never see a zero-length sequence
    length = torch.tensor([max(t, 1) for t in t_len], dtype=torch.long)
    return x, length, present, cut


def pool_mean(data: TensorData) -> TensorData:
    """Mean over the valid frames of every sequence modality: (N, T, D) -> (N, D)."""
    from mmtk import ops

    inputs = dict(data.inputs)
    for m, length in data.lengths.items():
        x = inputs[m]
        if not x.is_floating_point():
            continue
        inputs[m] = ops.masked_mean(x, ops.frame_mask(length, x.shape[1]))
    lengths = {m: v for m, v in data.lengths.items() if not inputs[m].is_floating_point()}
    return replace(data, inputs=inputs, lengths=lengths)


# ---------------------------------------------------------------------------- checks ---
def check_disjoint(split_ids: dict[str, list[str]], dataset: str, where: str) -> None:
    """No id twice within a split, no id in two splits (a leak between train and test)."""
    seen: dict[str, str] = {}
    for split, ids in split_ids.items():
        dup = [i for i, c in Counter(ids).items() if c > 1]
        if dup:
            raise DataError(f"dataset '{dataset}': {where}: id '{dup[0]}' appears "
                            f"{Counter(ids)[dup[0]]} times in the {split} split "
                            f"({len(dup)} duplicated id(s) in all).")
        for i in ids:
            if i in seen:
                raise DataError(f"dataset '{dataset}': {where}: id '{i}' is in both the "
                                f"{seen[i]} and the {split} split; splits must not overlap.")
            seen[i] = split


def integer_label_check(num_classes: int | None) -> Callable:
    def check(label, sample_id: str | None = None) -> str | None:
        if label < 0 or (num_classes is not None and label >= num_classes):
            upper = f"{num_classes - 1}" if num_classes is not None else "∞"
            return f"label {int(label)} is out of range (classes are 0..{upper})"
        return None
    return check


def h5_open(path: Path, dataset: str):
    import h5py
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"dataset '{dataset}': cannot read {shown(path)} as an HDF5 file (corrupt, "
                        f"truncated or not HDF5): {exc}") from None


def h5_fetch(handle, path: Path, dataset: str) -> Fetch:
    """Fetch ``handle[id]`` as an array; an id that is not in the file is :class:`Absent`."""
    import h5py

    def fetch(sample_id: str) -> np.ndarray:
        try:
            node = handle.get(sample_id)
        except (OSError, KeyError, RuntimeError, ValueError) as exc:
            raise DataError(f"dataset '{dataset}': {path}: cannot read sample '{sample_id}' "
                            f"(corrupt file?): {exc}") from None
        if node is None:
            raise Absent(sample_id)
        if not isinstance(node, h5py.Dataset):
            raise DataError(f"dataset '{dataset}': {path}: sample '{sample_id}' is an HDF5 "
                            f"{type(node).__name__}, not an array (one dataset per sample id is "
                            "expected).")
        try:
            return node[()]
        except (OSError, RuntimeError, ValueError) as exc:
            raise DataError(f"dataset '{dataset}': {path}: cannot read sample '{sample_id}' "
                            f"(corrupt file?): {exc}") from None
    return fetch


def rows_fetch(array: np.ndarray, index: dict[str, int]) -> Fetch:
    """Fetch one row of an id-aligned array; an id that is not listed is :class:`Absent`."""
    def fetch(sample_id: str) -> np.ndarray:
        row = index.get(sample_id)
        if row is None:
            raise Absent(sample_id)
        return np.asarray(array[row])
    return fetch


def as_str(value) -> str:
    """An id stored as bytes, str, numpy scalar or a length-1 array row, as text.

    Raises ``UnicodeDecodeError`` for bytes that are not UTF-8 (see :func:`ids_of`)."""
    if isinstance(value, np.ndarray):
        if value.size == 0:
            return ""
        value = value.reshape(-1)[0]
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8")
    return str(value)


def ids_of(values, dataset: str, source: str | Path, split: str) -> list[str]:
    """The sample ids of a split, as text; an id that is not UTF-8 names its row."""
    ids = []
    for row, value in enumerate(values):
        try:
            ids.append(as_str(value))
        except UnicodeDecodeError as exc:
            raw = value.reshape(-1)[0] if isinstance(value, np.ndarray) else value
            raise DataError(f"dataset '{dataset}': {source}: the id in row {row} ({split} split) is "
                            f"not UTF-8 text ({bytes(raw)!r}: {exc.reason}); write the ids as "
                            "UTF-8.") from None
    return ids


def read_lines(path: Path, dataset: str) -> list[str]:
    """Ids one per line (UTF-8, a BOM accepted), blank lines ignored."""
    return fmt.read_id_list(path, f"dataset '{dataset}'")


# --------------------------------------------------------------------- unlabelled samples ---
def budget_unlabelled(data: TensorData, budget: float | None, seed: int, dataset: str) -> TensorData:
    """``data`` with only ``budget`` of its labels kept (a fraction in (0, 1] or a whole count
    > 1), drawn per class (stratified) with ``seed``; the others become -1 (unlabelled)."""
    import torch

    from mmtk import stratified_split

    if budget is None:
        return data
    labelled = int(data.labeled.sum())
    count = budget * labelled if budget <= 1 else budget
    if budget > 1 and (budget != int(budget) or budget > labelled):
        raise DataError(f"dataset '{dataset}': label_budget {budget:g} is not a whole number of "
                        f"training labels between 1 and the {labelled} there are; give a count "
                        "in that range or a fraction in (0, 1].")
    if count >= labelled:
        return data
    _, kept = stratified_split(data.labels, count / labelled, seed)
    labels = torch.full_like(data.labels, -1)
    labels[kept] = data.labels[kept]
    scores = None if data.scores is None else torch.where(labels >= 0, data.scores, float("nan"))
    return replace(data, labels=labels, scores=scores)


def read_unlabelled_ids(path: Path | None, dataset: str) -> set[str]:
    """The ids listed (one per line) in an ``unlabeled_ids`` file; empty without one."""
    if path is None:
        return set()
    require_file(Path(path), dataset, "unlabeled_ids file (one sample id per line)")
    return set(read_lines(Path(path), dataset))


def train_ids_to_unlabel(listed: set[str], split_ids: dict[str, list[str]], path: Path | None,
                         dataset: str) -> set[str]:
    """The listed ids that are training samples of this fold (their labels are dropped); a
    listed id in no split is an error (a typo would otherwise go unnoticed). Listed ids in
    validation or test keep their labels: evaluation needs them."""
    known = {i for ids in split_ids.values() for i in ids}
    unknown = sorted(listed - known)
    if unknown:
        raise DataError(f"dataset '{dataset}': {path} lists id '{unknown[0]}', which is in no "
                        f"split of this fold ({len(unknown)} such id(s)); list only ids the "
                        "dataset has.")
    return listed & set(split_ids.get("train", ()))


def unlabel(data: TensorData, ids: set[str]) -> TensorData:
    """``data`` with the samples of ``ids`` made unlabelled (label -1, score NaN)."""
    import torch

    if not ids:
        return data
    rows = torch.tensor([sid in ids for sid in data.ids], dtype=torch.bool)
    labels = torch.where(rows, torch.full_like(data.labels, -1), data.labels)
    scores = None if data.scores is None else torch.where(rows, float("nan"), data.scores)
    return replace(data, labels=labels, scores=scores)
