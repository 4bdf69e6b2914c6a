"""MMSA feature pickles (thuiar/MMSA): CMU-MOSI, CMU-MOSEI, CH-SIMS.

A pickle holds ``{"train": {...}, "valid": {...}, "test": {...}}``; each split a dict with
``id``, ``text`` (N, L, 768 BERT features) and/or ``text_bert`` (N, 3, L token ids, attention
mask, segment ids), ``audio`` (N, Ta, Da), ``vision`` (N, Tv, Dv), optionally
``audio_lengths`` / ``vision_lengths`` (unaligned pickles), ``regression_labels`` (N,) and
``classification_labels`` (N,).
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from mmtk import DataError, Dataset, DataSplits
from mmtk.safeload import load_pickle, shown

from .common import (
    BadSamples,
    ModalitySource,
    assemble,
    check_disjoint,
    check_link,
    ids_of,
    integer_label_check,
    log,
    pool_mean,
    read_unlabelled_ids,
    resolve_root,
    rows_fetch,
    train_ids_to_unlabel,
    unlabel,
)
from .limits import Size

NAME = "mmsa"
SPLIT_KEYS = {"train": "train", "val": "valid", "test": "test"}
MODALITY_KEYS = {"audio": "audio", "visual": "vision"}   # + text (from `text` or `text_bert`)
LENGTH_KEYS = {"audio": "audio_lengths", "visual": "vision_lengths"}

# MMSA's SIMS interval edges (metricsTop.py): class i holds (edge[i], edge[i + 1]]
SIMS_EDGES = {"sims2": [-1.01, 0.0, 1.01], "sims3": [-1.01, -0.1, 0.1, 1.01],
              "sims5": [-1.01, -0.7, -0.1, 0.1, 0.7, 1.01]}
RULE_CLASSES = {
    "binary": ["negative", "non-negative"],
    "binary_nonzero": ["negative", "positive"],
    "5class": ["-2", "-1", "0", "1", "2"],
    "7class": ["-3", "-2", "-1", "0", "1", "2", "3"],
    "sims2": ["negative", "positive"],
    "sims3": ["negative", "neutral", "positive"],
    "sims5": ["strongly negative", "weakly negative", "neutral", "weakly positive",
              "strongly positive"],
}
Rule = Literal["binary", "binary_nonzero", "5class", "7class", "sims2", "sims3", "sims5",
               "classification_labels"]


def sentiment_to_class(y: np.ndarray, rule: str) -> np.ndarray:
    """Class index per regression label; -1 marks a label the rule excludes or cannot place.

    binary: y >= 0 -> 1 else 0 (MMSA Has0_acc_2); binary_nonzero: y > 0 -> 1, y < 0 -> 0,
    y == 0 excluded (Non0_acc_2); 5class / 7class: round(clip(y, -2, 2)) + 2 and
    round(clip(y, -3, 3)) + 3 (Mult_acc_5/7, numpy rounding: half to even); sims2/3/5: MMSA's
    SIMS intervals (edge_i, edge_i+1].
    """
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if rule == "binary":
        return (y >= 0).astype(np.int64)
    if rule == "binary_nonzero":
        return np.where(y > 0, 1, np.where(y < 0, 0, -1)).astype(np.int64)
    if rule == "5class":
        return (np.round(np.clip(y, -2, 2)) + 2).astype(np.int64)
    if rule == "7class":
        return (np.round(np.clip(y, -3, 3)) + 3).astype(np.int64)
    if rule in SIMS_EDGES:
        edges = np.asarray(SIMS_EDGES[rule])
        cls = np.searchsorted(edges, y, side="left") - 1      # y in (e_i, e_i+1] -> i
        inside = (y > edges[0]) & (y <= edges[-1])
        return np.where(inside, cls, -1).astype(np.int64)
    raise DataError(f"dataset '{NAME}': unknown label_rule {rule!r}; accepted: "
                    f"{', '.join(sorted(RULE_CLASSES))}, classification_labels")


class MMSA(Dataset):
    """An MMSA feature pickle (MOSI/MOSEI/SIMS): text, audio and vision; scores as classes by label_rule.

    Train/valid/test with text (BERT features or token ids), audio and vision sequences;
    sentiment scores mapped to classes by label_rule. ``unlabeled_ids`` names a text file of
    sample ids (one per line) whose label and score are dropped when they are training
    samples (label -1, score NaN: unlabelled); an id in no split is an error.
    """

    def __init__(self, root: Path | None = None, text: Literal["text", "text_bert"] = "text",
                 label_rule: Rule = "binary", select: list[str] | None = None,
                 class_names: list[str] | None = None, neg_inf_to_zero: bool = True,
                 pool: Literal["none", "mean"] = "none", max_frames: Size | None = None,
                 on_bad_sample: Literal["error", "skip"] = "error",
                 unlabeled_ids: Path | None = None):
        self.path = _pickle_path(resolve_root(root, NAME, must_be="any"))
        self.text_key, self.label_rule = text, label_rule
        chosen = list(select) if select else ["audio", "text", "visual"]
        unknown = sorted(set(chosen) - {"audio", "text", "visual"})
        if unknown:
            raise DataError(f"dataset '{NAME}': unknown modality {unknown[0]!r} in data.select; "
                            "accepted: audio, text, visual")
        self._modalities = tuple(sorted(chosen))
        self.class_names = list(class_names) if class_names else None
        self.neg_inf_to_zero, self.pool = neg_inf_to_zero, pool
        self.max_frames, self.on_bad_sample = max_frames, on_bad_sample
        self.unlabeled_ids = unlabeled_ids

    @staticmethod
    def example_params(workdir: Path) -> dict:
        """Parameters reading a tiny example written into ``workdir`` (for contract tests)."""
        from . import examples
        return examples.mmsa(workdir)

    @property
    def modalities(self) -> tuple[str, ...]:
        return self._modalities

    def _read(self) -> dict:
        # MMSA files are pickles by nature; the restricted unpickler admits only builtins and
        # numpy arrays, so a crafted file cannot run code
        data = load_pickle(self.path, f"dataset '{NAME}'", "MMSA feature pickle")
        if not isinstance(data, dict):
            raise DataError(f"dataset '{NAME}': {self.path} holds a {type(data).__name__}, not a "
                            "dict with train/valid/test.")
        for key in SPLIT_KEYS.values():
            if not isinstance(data.get(key), dict):
                raise DataError(f"dataset '{NAME}': {self.path} has no '{key}' split dict "
                                f"(keys found: {', '.join(map(str, data))}).")
        return data

    def _field(self, part: dict, key: str, split: str) -> np.ndarray:
        if key not in part:
            raise DataError(f"dataset '{NAME}': {self.path}: the {split} split has no field "
                            f"'{key}' (fields: {', '.join(map(str, part))}).")
        try:
            return np.asarray(part[key])
        except (ValueError, TypeError):   # ragged lists: a 1-D object array, named by _numbers
            return np.asarray(list(part[key]) + [None], dtype=object)[:-1]

    def load(self, fold: int | None = None) -> DataSplits:
        data = self._read()
        bad = BadSamples(NAME, self.on_bad_sample)
        split_ids = {s: ids_of(self._field(data[k], "id", s), NAME, f"{self.path}[{k}][id]", s)
                     for s, k in SPLIT_KEYS.items()}
        check_disjoint(split_ids, NAME, str(self.path))
        unlabelled = train_ids_to_unlabel(read_unlabelled_ids(self.unlabeled_ids, NAME), split_ids,
                                          self.unlabeled_ids, NAME)
        num_classes, names = self._classes(data)
        label_src = "classification_labels" if self.label_rule == "classification_labels" \
            else "regression_labels"
        in_range = integer_label_check(num_classes)

        def label_check(y, sample_id=None) -> str | None:
            if y == -1 and label_src == "regression_labels":
                return (f"sentiment score is NaN/infinite or outside the range of label_rule "
                        f"'{self.label_rule}'")
            return in_range(y)
        excluded: dict[str, int] = {}
        facts, parts = {}, {}
        neg_inf = {}
        shared: dict[str, ModalitySource] = {}
        for split, key in SPLIT_KEYS.items():
            part, ids = data[key], split_ids[split]
            index = {sid: i for i, sid in enumerate(ids)}
            sources = []
            for m in self.modalities:
                array, lengths, integer = self._modality(part, m, split, neg_inf)
                where = f"{self.path}[{key}][{self.text_key if m == 'text' else MODALITY_KEYS[m]}]"
                fetch = _trimmed(rows_fetch(array, index), index, lengths, where)
                src = shared.setdefault(m, ModalitySource(m, where, fetch, integer=integer))
                src.source, src.fetch = where, fetch
                sources.append(src)
            labels, reg = self._labels(part, split, ids)
            if len(labels) != len(ids):
                raise DataError(f"dataset '{NAME}': {self.path}: the {split} split has "
                                f"{len(labels)} labels for {len(ids)} ids.")
            keep = labels != -2                      # -2: left out by the rule (binary_nonzero)
            if not keep.all():
                excluded[split] = int((~keep).sum())
                ids, labels = [i for i, k in zip(ids, keep) if k], labels[keep]
                reg = reg[keep] if reg is not None else None
            parts[split], facts[split] = assemble(
                split, ids, labels, sources, bad, False, label_check,
                f"{self.path}[{key}][{label_src}]", self.max_frames,
                scores=reg)
        parts["train"] = unlabel(parts["train"], unlabelled)
        if self.pool == "mean":
            parts = {s: pool_mean(d) for s, d in parts.items()}
        info = {"dataset": NAME, "file": str(self.path), "text_field": self.text_key,
                "label_rule": self.label_rule, "splits": facts, **bad.info()}
        if excluded:
            info["excluded_by_label_rule"] = excluded
            log.info("dataset '%s': label_rule %s leaves out %s sample(s) per split",
                     NAME, self.label_rule, excluded)
        if neg_inf:
            info["neg_inf_set_to_zero"] = neg_inf
        if self.unlabeled_ids is not None:
            info["unlabelled_train"] = int((~parts["train"].labeled).sum())
        if all(p.scores is not None for p in parts.values()):
            info["regression_targets"] = "regression_labels (kept as per-sample scores)"
        return DataSplits(train=parts["train"], val=parts["val"], test=parts["test"],
                          num_classes=num_classes, class_names=names, info=info)

    def _classes(self, data: dict) -> tuple[int, list[str]]:
        if self.label_rule == "classification_labels":
            tops = [int(np.max(v)) for v in map(_finite_numbers, (
                self._field(data[k], "classification_labels", s) for s, k in SPLIT_KEYS.items()))
                if len(v)]                # other values are reported per sample by _labels
            k = len(self.class_names) if self.class_names else max(tops, default=0) + 1
            return k, self.class_names or [str(i) for i in range(k)]
        names = RULE_CLASSES.get(self.label_rule)
        if names is None:
            sentiment_to_class(np.zeros(1), self.label_rule)     # raises the accepted list
        if self.class_names and len(self.class_names) != len(names):
            raise DataError(f"dataset '{NAME}': label_rule {self.label_rule} has {len(names)} "
                            f"classes but data.class_names lists {len(self.class_names)}.")
        return len(names), self.class_names or list(names)

    def _labels(self, part: dict, split: str, ids: list[str]):
        """(class per sample, -1 = unmappable, -2 = left out by the rule; regression targets)."""
        if self.label_rule == "classification_labels":
            raw = self._field(part, "classification_labels", split).reshape(-1)
            if raw.dtype.kind not in "iuf":
                raise DataError(f"dataset '{NAME}': {self.path}: {split} classification_labels "
                                f"holds {raw.dtype} values; integer class labels are expected.")
            if not np.issubdtype(raw.dtype, np.integer):
                whole = np.isfinite(raw) & np.equal(np.mod(raw, 1), 0)
                if not whole.all():
                    row = int(np.flatnonzero(~whole)[0])
                    sid = ids[row] if row < len(ids) else f"row {row}"
                    raise DataError(f"dataset '{NAME}': {self.path}[{SPLIT_KEYS[split]}]"
                                    f"[classification_labels]: sample '{sid}' ({split} split) has "
                                    f"label {raw[row]}, which is not an integer; "
                                    f"{int((~whole).sum())} such label(s) in this split. Use "
                                    "label_rule on regression_labels, or integer classes.")
            reg = np.asarray(part["regression_labels"], dtype=np.float64).reshape(-1) \
                if "regression_labels" in part else None
            return raw.astype(np.int64), reg
        reg = self._field(part, "regression_labels", split)
        if reg.dtype.kind not in "iuf":
            raise DataError(f"dataset '{NAME}': {self.path}: {split} regression_labels holds "
                            f"{reg.dtype} values; sentiment scores (numbers) are expected.")
        reg = reg.astype(np.float64).reshape(-1)
        cls = sentiment_to_class(reg, self.label_rule)
        bad_value = ~np.isfinite(reg)
        cls = np.where(bad_value, -1, cls)
        if self.label_rule == "binary_nonzero":
            cls = np.where(reg == 0, -2, cls)
        return cls, reg

    def _numbers(self, part: dict, key: str, split: str) -> np.ndarray:
        """A numeric field; ragged lists or other objects are an error naming the field."""
        array = self._field(part, key, split)
        if array.dtype.kind not in "iufb":
            raise DataError(f"dataset '{NAME}': {self.path}: the {split} split's '{key}' holds "
                            f"{array.dtype} values of shape {array.shape}; a padded numeric array "
                            "is expected.")
        return array

    def _modality(self, part: dict, m: str, split: str, neg_inf: dict):
        if m == "text":
            array = self._numbers(part, self.text_key, split)
            if self.text_key == "text_bert":
                if array.ndim != 3 or array.shape[1] != 3:
                    raise DataError(f"dataset '{NAME}': {self.path}: {split} text_bert has shape "
                                    f"{array.shape}; expected (N, 3, L) token ids, mask, segments.")
                lengths = array[:, 1, :].sum(1).astype(np.int64)
                return np.rint(array.transpose(0, 2, 1)).astype(np.int64), lengths, True
            mask = part.get("text_bert")
            lengths = None
            if mask is not None and np.asarray(mask).ndim == 3 and np.asarray(mask).shape[2] == array.shape[1]:
                lengths = np.asarray(mask)[:, 1, :].sum(1).astype(np.int64)
            return array.astype(np.float32), lengths, False
        key = MODALITY_KEYS[m]
        array = self._numbers(part, key, split).astype(np.float32)
        if m == "audio" and self.neg_inf_to_zero:
            hit = np.isneginf(array)
            if hit.any():
                neg_inf[split] = int(hit.sum())
                array = np.where(hit, np.float32(0), array)
        lengths = self._numbers(part, LENGTH_KEYS[m], split).astype(np.int64).reshape(-1) \
            if LENGTH_KEYS[m] in part else None
        if lengths is not None and len(lengths) != len(array):
            raise DataError(f"dataset '{NAME}': {self.path}: {split} {LENGTH_KEYS[m]} has "
                            f"{len(lengths)} entries for {len(array)} samples.")
        return array, lengths, False


def _finite_numbers(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values).reshape(-1)
    if values.dtype.kind not in "iuf":
        return values[:0].astype(np.float64)
    return values[np.isfinite(values)]


def _trimmed(fetch, index: dict[str, int], lengths: np.ndarray | None, where: str):
    """Cut each padded sequence to its stated length (length 0 -> an empty, reported sample)."""
    if lengths is None:
        return fetch

    def inner(sample_id: str) -> np.ndarray:
        x = fetch(sample_id)
        n = int(lengths[index[sample_id]])
        if n > x.shape[0]:
            raise DataError(f"dataset '{NAME}': {where}: sample '{sample_id}' states length {n} "
                            f"but its sequence has only {x.shape[0]} frames.")
        return x[:n]
    return inner


def _pickle_path(path: Path) -> Path:
    check_link(path, NAME, "data.root")
    if path.is_file():
        return path
    found = sorted(path.glob("*.pkl"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise DataError(f"dataset '{NAME}': no .pkl file in {shown(path)}; point data.root at "
                        "the MMSA pickle (e.g. MOSI/Processed/unaligned_50.pkl).")
    raise DataError(f"dataset '{NAME}': {shown(path)} holds several pickles "
                    f"({', '.join(p.name for p in found)}); point data.root at one of them.")
