"""GCNet layout (zeroQiaoba/GCNet): one .npy per utterance and a DialogueGCN-style label pickle.

A corpus folder (GCNet's ``dataset/IEMOCAP``, ``dataset/CMUMOSI``, ``dataset/CMUMOSEI``)::

    features/<feature-name>/<utterance id>.npy     (D,) utterance level, or (T, D) frame level
                                                   (mean-pooled over T, as GCNet's loader does)
    features/<feature-name>/<utterance id>/*.npy   one .npy per face (or per frame); IEMOCAP
                                                   names end in _F / _M, the speaker whose face
                                                   it is (``000012_F.npy``, ``compress_M.npy``)
    IEMOCAP_features_raw_4way.pkl                  the label pickle (or _6way, CMUMOSI_...)

The label pickle is a list, in this order: ``videoIDs`` (dialogue -> utterance ids),
``videoLabels`` (dialogue -> labels), ``videoSpeakers`` (dialogue -> 'F'/'M', '' for MOSI),
``videoSentences``, then the dialogue-id sets ``trainVid, testVid`` (IEMOCAP) or
``trainVids, valVids, testVids`` (MOSI/MOSEI). It is read through the restricted unpickler
(:func:`mmtk.safeload.load_pickle`), so a crafted pickle cannot run code.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from mmtk import DataError, Dataset, DataSplits, TensorData
from mmtk.safeload import load_npy, load_pickle, shown

from .common import (
    Absent,
    BadSamples,
    ModalitySource,
    assemble,
    check_disjoint,
    check_link,
    log,
    resolve_root,
)
from .limits import FeatureFolder, Size
from .mmsa import RULE_CLASSES, sentiment_to_class

NAME = "gcnet_layout"
WHO = f"dataset '{NAME}'"
FIELDS = ("videoIDs", "videoLabels", "videoSpeakers", "videoSentences")
# GCNet's published run (run.sh): the same feature folders for every corpus
DEFAULT_FEATURES = {"audio": "wav2vec-large-c-UTT", "text": "deberta-large-4-UTT", "visual": "manet_UTT"}
SHOWN_IDS = 5                                     # ids quoted in a message about many
UNLABELED = TensorData.UNLABELED                  # the data contract's label of an unlabelled sample


@dataclass(frozen=True)
class Corpus:
    pickle: str                                   # the label pickle GCNet ships for it
    split_sets: tuple[str, ...]                   # names of the dialogue-id sets that end it
    class_names: tuple[str, ...] | None           # None: sentiment scores in [-3, 3]


# The pickles store no class names. 6-way: DialogueGCN's order; 4-way: inferred from the
# class counts of GCNet's file (class 0 has 1636 = 595 happy + 1041 excited utterances).
CORPORA = {
    "iemocap4": Corpus("IEMOCAP_features_raw_4way.pkl", ("trainVid", "testVid"),
                       ("happy+excited", "sad", "neutral", "angry")),
    "iemocap6": Corpus("IEMOCAP_features_raw_6way.pkl", ("trainVid", "testVid"),
                       ("happy", "sad", "neutral", "angry", "excited", "frustrated")),
    "mosi": Corpus("CMUMOSI_features_raw_2way.pkl", ("trainVids", "valVids", "testVids"), None),
    "mosei": Corpus("CMUMOSEI_features_raw_2way.pkl", ("trainVids", "valVids", "testVids"), None),
}
SENTIMENT_SPLITS = {"train": "trainVids", "val": "valVids", "test": "testVids"}


# ----------------------------------------------------------------------- the label pickle ---
@dataclass
class Utterances:
    """The utterances of some dialogues, in pickle order, with what the pickle says of them."""

    ids: list[str] = field(default_factory=list)
    speakers: list[str] = field(default_factory=list)
    labels: list = field(default_factory=list)    # raw values; interpreted per corpus


@dataclass
class LabelPickle:
    path: Path
    dialogues: dict[str, Utterances]              # dialogue id -> its utterances
    split_sets: dict[str, list[str]]              # set name (trainVid, ...) -> dialogue ids

    def utterances(self, dialogue_ids: list[str]) -> Utterances:
        out = Utterances()
        for vid in dialogue_ids:
            d = self.dialogues[vid]
            out.ids += d.ids
            out.speakers += d.speakers
            out.labels += d.labels
        return out


def read_label_pickle(path: Path, corpus: str) -> LabelPickle:
    """The pickle's dialogues and split sets; any other structure is an error saying which."""
    spec = CORPORA[corpus]
    names = FIELDS + spec.split_sets
    data = load_pickle(path, WHO, "label pickle")
    if not isinstance(data, (list, tuple)) or len(data) != len(names):
        got = (f"a {type(data).__name__} of {len(data)} items" if isinstance(data, (list, tuple))
               else f"a {type(data).__name__}")
        raise DataError(f"{WHO}: {shown(path)} holds {got}; a GCNet label pickle for {corpus} is a "
                        f"list of {len(names)}: ({', '.join(names)}). Check data.dataset (the "
                        "IEMOCAP pickles have 6 items, the MOSI/MOSEI ones 7).")
    tables = dict(zip(names, data))
    for key in FIELDS[:3]:
        if not isinstance(tables[key], dict):
            raise DataError(f"{WHO}: {shown(path)}: item {names.index(key)} ({key}) is a "
                            f"{type(tables[key]).__name__}; a dict dialogue id -> list is expected.")
    split_sets = {}
    for key in spec.split_sets:
        value = tables[key]
        if not isinstance(value, (set, frozenset, list, tuple)) or \
                not all(isinstance(v, str) for v in value):
            raise DataError(f"{WHO}: {shown(path)}: item {names.index(key)} ({key}) must be a set "
                            f"of dialogue ids (strings); got a {type(value).__name__}.")
        split_sets[key] = sorted(value)
    used = sorted({v for ids in split_sets.values() for v in ids})
    return LabelPickle(Path(path), {v: _dialogue(tables, v, path) for v in used}, split_sets)


def _dialogue(tables: dict, vid: str, path: Path) -> Utterances:
    """One dialogue's aligned lists: utterance ids, speakers, labels."""
    where = f"{WHO}: {shown(path)}: dialogue '{vid}'"
    rows = {}
    for key in FIELDS[:3]:
        if vid not in tables[key]:
            raise DataError(f"{where} is listed in a split set but has no entry in {key}.")
        value = tables[key][vid]
        if isinstance(value, np.ndarray):
            value = value.tolist()
        if not isinstance(value, (list, tuple)):
            raise DataError(f"{where}: {key} holds a {type(value).__name__}; a list is expected.")
        rows[key] = list(value)
    ids, labels, speakers = rows["videoIDs"], rows["videoLabels"], rows["videoSpeakers"]
    if not len(ids) == len(labels) == len(speakers):
        raise DataError(f"{where} has {len(ids)} utterance ids, {len(labels)} labels and "
                        f"{len(speakers)} speakers; the three lists must be aligned.")
    bad = [u for u in ids if not isinstance(u, str) or not u or "/" in u or u.startswith(".")]
    if bad:
        raise DataError(f"{where}: utterance id {bad[0]!r} is not a usable file name (ids name "
                        "the feature files <id>.npy).")
    return Utterances(ids, [str(s) for s in speakers], labels)


# --------------------------------------------------------------------------- the labels ---
@dataclass
class Labels:
    """Per-utterance classes (and scores) with the problem of each unusable one."""

    classes: np.ndarray
    scores: np.ndarray | None
    problems: dict[str, str]
    excluded: set[str] = field(default_factory=set)    # left out by label_rule (score 0)

    def check(self, label, sample_id: str | None = None) -> str | None:
        return self.problems.get(sample_id) if sample_id is not None else None


def class_labels(utts: Utterances, num_classes: int, corpus: str) -> Labels:
    """IEMOCAP: integer classes 0..K-1; -1 or None is an unlabelled utterance (label -1, the
    data contract's mark); anything else (7 in a 4-way file, 'hap', 2.5, True) is a problem."""
    classes, problems = np.full(len(utts.ids), UNLABELED, dtype=np.int64), {}
    for row, (uid, value) in enumerate(zip(utts.ids, utts.labels)):
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            value = int(value)
        whole = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
        if whole and 0 <= int(value) < num_classes:
            classes[row] = int(value)
        elif not (value is None or (whole and int(value) == UNLABELED)):
            problems[uid] = (f"has label {value!r}, which is not a class of {corpus} (integers "
                             f"0..{num_classes - 1}; -1 marks an unlabelled utterance)")
    return Labels(classes, None, problems)


def sentiment_labels(utts: Utterances, rule: str) -> Labels:
    """MOSI/MOSEI: the score in [-3, 3] is kept (``TensorData.scores``); classes by ``rule``.
    None or NaN is an unlabelled utterance (score NaN, label -1); binary_nonzero leaves the
    score-0 utterances out (``excluded``)."""
    scores, problems = np.full(len(utts.ids), np.nan), {}
    for row, (uid, value) in enumerate(zip(utts.ids, utts.labels)):
        number = isinstance(value, (int, float, np.integer, np.floating)) and \
            not isinstance(value, (bool, np.bool_))
        if number and not np.isinf(float(value)):
            scores[row] = float(value)
        elif value is not None:
            problems[uid] = f"has label {value!r}; a finite sentiment score is expected"
    labelled = ~np.isnan(scores)
    classes = np.where(labelled, sentiment_to_class(np.nan_to_num(scores), rule), UNLABELED)
    excluded = {u for u, y in zip(utts.ids, scores) if rule == "binary_nonzero" and y == 0}
    return Labels(classes.astype(np.int64), scores, problems, excluded)


# -------------------------------------------------------------------- the feature folders ---
@dataclass
class FeatureSource(ModalitySource):
    """One modality's folder: ``<id>.npy`` or ``<id>/`` per utterance, read and pooled to (D,)."""

    folder: Path = Path()
    entries: set[str] = field(default_factory=set)
    speakers: dict[str, str] = field(default_factory=dict)   # id -> F/M (IEMOCAP faces)
    zero_is_absent: bool = False

    def __post_init__(self) -> None:
        self.fetch = self.read

    def has(self, uid: str) -> bool:
        return f"{uid}.npy" in self.entries or uid in self.entries

    def check(self, sample_id: str, x: np.ndarray) -> tuple[str, str] | None:
        problem = super().check(sample_id, x)
        return None if problem is None else (f"{problem[0]} (file {self._path(sample_id)})", problem[1])

    def _path(self, uid: str) -> Path:
        return self.folder / (f"{uid}.npy" if f"{uid}.npy" in self.entries else uid)

    def read(self, uid: str) -> np.ndarray:
        """The utterance vector; :class:`Absent` when it has no face of its speaker."""
        if f"{uid}.npy" in self.entries and uid in self.entries:
            raise DataError(f"{WHO}: sample '{uid}': both {shown(self.folder / uid)}.npy and the "
                            f"folder {shown(self.folder / uid)} exist; keep one.")
        if f"{uid}.npy" in self.entries:
            vector = _pooled(load_npy(self.folder / f"{uid}.npy", f"{WHO}, sample '{uid}'"),
                             self.folder / f"{uid}.npy", uid)
        else:
            vector = self._faces(uid)
        if self.zero_is_absent and vector.size and not np.any(vector):
            raise Absent(uid)                      # GCNet writes zeros when no face was found
        return vector

    def _faces(self, uid: str) -> np.ndarray:
        folder = check_link(self.folder / uid, NAME, f"the face folder of sample '{uid}'")
        files = sorted(p for p in folder.iterdir() if p.suffix == ".npy")
        speaker = self.speakers.get(uid)
        if speaker is not None:
            files = [p for p in files if _face_speaker(p, uid) == speaker]
        if not files:
            if self.zero_is_absent:
                raise Absent(uid)
            if self.expect_dim is None:
                raise DataError(f"{WHO}: sample '{uid}': {shown(folder)} holds no face of its "
                                f"speaker and the width of '{self.name}' is not known yet to fill "
                                f"in zeros; set data.dims.{self.name}.")
            return np.zeros(self.expect_dim, dtype=np.float32)      # the reference's zeros
        faces = [_pooled(load_npy(p, f"{WHO}, sample '{uid}'"), p, uid) for p in files]
        widths = {f.shape for f in faces}
        if len(widths) > 1:
            raise DataError(f"{WHO}: sample '{uid}': the face files in {shown(folder)} differ in "
                            f"shape ({', '.join(map(str, sorted(widths)))}); one width per feature.")
        return np.mean(np.stack(faces), axis=0)


def _face_speaker(path: Path, uid: str) -> str:
    """F or M from a face file name ending in _F / _M (as GCNet's detect.py writes them)."""
    tag = path.stem.rsplit("_", 1)[-1]
    if tag not in ("F", "M"):
        raise DataError(f"{WHO}: sample '{uid}': face file {shown(path)} does not say whose face "
                        "it is: IEMOCAP face files end in _F or _M (000012_F.npy, compress_M.npy).")
    return tag


def _pooled(x: np.ndarray, path: Path, uid: str) -> np.ndarray:
    """(D,) as is; (T, D) mean-pooled over T (leading axes of size 1 are dropped first)."""
    while x.ndim > 1 and x.shape[0] == 1:
        x = x[0]
    if x.ndim == 2 and x.shape[0] > 0:
        return x.astype(np.float64).mean(axis=0)
    if x.ndim == 1:
        return x
    raise DataError(f"{WHO}: sample '{uid}': {shown(path)} has shape {x.shape}; an utterance "
                    "feature is (D,) or frames (T, D).")


def feature_folder(root: Path, name: str, modality: str) -> Path:
    """``root/features/<name>``; when missing, the error lists the folders that exist."""
    base = check_link(root / "features", NAME, "the features folder")
    if not base.is_dir():
        raise DataError(f"{WHO}: no features folder: looked for {shown(base)} (GCNet keeps "
                        "features/<feature-name>/ in the corpus folder; set data.root to it).")
    folder = check_link(base / name, NAME, f"the feature folder of '{modality}'")
    if not folder.is_dir():
        found = sorted(p.name for p in base.iterdir() if p.is_dir())
        raise DataError(f"{WHO}: feature folder for '{modality}' not found: looked for "
                        f"{shown(folder)}; {shown(base)} holds {', '.join(found) or 'no folders'}. "
                        f"Set data.features.{modality} to one of them.")
    return folder


def missing_files(sources: list[FeatureSource], ids: list[str]) -> dict:
    """Per modality, the listed utterances with no feature file or folder."""
    return {s.name: [u for u in ids if not s.has(u)] for s in sources
            if any(not s.has(u) for u in ids)}


def missing_message(missing: dict, sources: list[FeatureSource], total: int, label_path: Path) -> str:
    folder = {s.name: s.folder for s in sources}
    parts = [f"{len(ids)} of {total} utterance(s) have no feature in {shown(folder[m])} (first: "
             f"{', '.join(ids[:SHOWN_IDS])}; expected {ids[0]}.npy or a folder {ids[0]}/)"
             for m, ids in missing.items()]
    return (f"{WHO}: utterances listed in {shown(label_path)} have no feature file: "
            f"{'; '.join(parts)}. Check data.features and that the features were extracted for "
            "every utterance, or set data.on_bad_sample: skip to leave them out (counted).")


# ------------------------------------------------------------------------------ the reader ---
class GCNetLayout(Dataset):
    """Features in GCNet's layout (IEMOCAP 4/6-class, CMU-MOSI/MOSEI): one .npy per utterance, a label pickle.

    IEMOCAP: 5 leave-one-session-out folds, fold k tests session k and trains on the other
    four. GCNet's own code selects the epoch on the test session; this reader returns no
    validation split, so the core carves one from the training sessions (stratified by class,
    seeded by the trial seed, data.val_fraction): the test session is never used to select.
    MOSI/MOSEI: the pickle's official train/valid/test dialogue sets; sentiment scores are kept
    as TensorData.scores and mapped to classes by label_rule. An utterance whose label is -1
    or None (NaN for a score) is kept as unlabelled (label -1, score NaN), per the data contract.

    Parameters:
        root: the corpus folder holding features/ (and, by default, the label pickle);
            unset: $MMTK_DATA
        dataset: which corpus and protocol: iemocap4, iemocap6 (5 session folds), mosi,
            mosei (official splits)
        features: modality -> feature folder name under root/features (default: GCNet's
            published features, audio wav2vec-large-c-UTT, text deberta-large-4-UTT, visual
            manet_UTT); leaving a modality out leaves it out of the data
        label_path: the label pickle; default root/<GCNet's file name for the dataset>, e.g.
            IEMOCAP_features_raw_4way.pkl
        class_names: names of the IEMOCAP classes (default: the DialogueGCN order, see the
            README); for MOSI/MOSEI they must match label_rule's number of classes
        label_rule: MOSI/MOSEI only: how scores become classes (binary: >= 0; binary_nonzero
            leaves score-0 utterances out; 5class, 7class: rounded, clipped scores)
        dims: expected feature width per modality (default: the first utterance read sets it)
        absent_if_zero: modalities whose all-zero vector, or face folder without a face of
            the utterance's speaker, means "not observed" (present False); default [visual]:
            GCNet writes such zeros when no face was detected. [] keeps the zeros as data,
            as GCNet does
        on_bad_sample: error stops at the first bad utterance; skip leaves bad utterances
            out and counts them in the run's data info
    """

    def __init__(self, root: Path | None = None,
                 dataset: Literal["iemocap4", "iemocap6", "mosi", "mosei"] = "iemocap4",
                 features: dict[str, FeatureFolder] | None = None, label_path: Path | None = None,
                 class_names: list[str] | None = None,
                 label_rule: Literal["binary", "binary_nonzero", "5class", "7class"] = "binary",
                 dims: dict[str, Size] | None = None, absent_if_zero: list[str] | None = None,
                 on_bad_sample: Literal["error", "skip"] = "error"):
        self.root = resolve_root(root, NAME)
        self.corpus = dataset
        self.features = dict(DEFAULT_FEATURES if features is None else features)
        if not self.features:
            raise DataError(f"{WHO}: data.features names no modality.")
        self.label_path = Path(label_path) if label_path else self.root / CORPORA[dataset].pickle
        self.label_rule = label_rule
        self.class_names = self._class_names(class_names)
        self.dims = dict(dims or {})
        self.absent_if_zero = {"visual"} if absent_if_zero is None else set(absent_if_zero)
        unknown = sorted(self.absent_if_zero - set(self.features))
        if unknown and absent_if_zero is not None:
            raise DataError(f"{WHO}: data.absent_if_zero names '{unknown[0]}', which is not in "
                            f"data.features ({', '.join(sorted(self.features))}).")
        self.on_bad_sample = on_bad_sample

    def _class_names(self, given: list[str] | None) -> list[str]:
        spec = CORPORA[self.corpus]
        default = list(spec.class_names) if spec.class_names else RULE_CLASSES[self.label_rule]
        if given and len(given) != len(default):
            raise DataError(f"{WHO}: data.class_names lists {len(given)} names but {self.corpus}"
                            f"{'' if spec.class_names else ' with label_rule ' + self.label_rule} "
                            f"has {len(default)} classes ({', '.join(default)}).")
        return list(given) if given else list(default)

    @staticmethod
    def example_params(workdir: Path) -> dict:
        """Parameters reading a tiny IEMOCAP-like corpus written into ``workdir``."""
        return write_example(Path(workdir) / "gcnet_example")

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(sorted(self.features))

    @property
    def is_iemocap(self) -> bool:
        return CORPORA[self.corpus].class_names is not None

    def _labels_file(self) -> LabelPickle:
        check_link(self.label_path, NAME, "the label pickle")
        if not self.label_path.is_file():
            raise DataError(f"{WHO}: label pickle not found: looked for {shown(self.label_path)} "
                            f"(GCNet ships {CORPORA[self.corpus].pickle} in its dataset/ folder; "
                            "copy it next to features/ or set data.label_path).")
        return read_label_pickle(self.label_path, self.corpus)

    def folds(self) -> list[int | None]:
        if not self.is_iemocap:
            return [None]
        return sorted(session_folds(self._labels_file()))

    def load(self, fold: int | None = None) -> DataSplits:
        table = self._labels_file()
        dialogues, protocol = self._split_dialogues(table, fold)
        utts = {s: table.utterances(v) for s, v in dialogues.items()}
        check_disjoint({s: u.ids for s, u in utts.items()}, NAME, shown(table.path))
        every = [u for part in utts.values() for u in part.ids]
        sources = self._sources(utts)
        bad = BadSamples(NAME, self.on_bad_sample)
        missing = missing_files(sources, every)
        if missing and self.on_bad_sample == "error":
            raise DataError(missing_message(missing, sources, len(every), table.path))
        parts, facts, excluded = {}, {}, {}
        for split, part in utts.items():
            part = self._drop_missing(part, missing, split, sources, bad)
            labels = (class_labels(part, len(self.class_names), self.corpus) if self.is_iemocap
                      else sentiment_labels(part, self.label_rule))
            if labels.excluded:
                excluded[split] = len(labels.excluded)
                part, labels = _without(part, labels, labels.excluded)
            parts[split], facts[split] = assemble(
                split, part.ids, labels.classes, sources, bad, True, labels.check,
                f"{shown(table.path)} ({FIELDS[1]})", scores=labels.scores)
            unlabelled = int((parts[split].labels < 0).sum())
            if unlabelled:
                facts[split]["unlabelled"] = unlabelled
        info = {"dataset": NAME, "corpus": self.corpus, "fold": fold, "protocol": protocol,
                "label_pickle": str(table.path), "splits": facts, **bad.info(),
                "feature_folders": {s.name: str(s.folder) for s in sources}}
        if excluded:
            info["excluded_by_label_rule"] = excluded
        return DataSplits(train=parts["train"], val=parts.get("val"), test=parts["test"],
                          num_classes=len(self.class_names), class_names=self.class_names, info=info)

    def _split_dialogues(self, table: LabelPickle, fold: int | None) -> tuple[dict, str]:
        if not self.is_iemocap:
            if fold is not None:
                raise DataError(f"{WHO}: {self.corpus} has one official split, no folds; got fold "
                                f"{fold}. Remove data.folds / --folds.")
            return ({s: table.split_sets[k] for s, k in SENTIMENT_SPLITS.items()},
                    "official train/valid/test dialogue sets of the label pickle")
        sessions = session_folds(table)
        if fold is None:
            fold = min(sessions)
            log.info("%s: no fold chosen, using fold %s (data.folds: all runs every fold)", WHO, fold)
        if fold not in sessions:
            raise DataError(f"{WHO}: fold {fold} is out of range: {self.corpus} folds are the "
                            f"sessions found in {shown(table.path)}: "
                            f"{', '.join(map(str, sorted(sessions)))} (fold k tests session k).")
        train = [v for k, vids in sorted(sessions.items()) if k != fold for v in vids]
        return ({"train": train, "test": sessions[fold]},
                f"leave-one-session-out: test session {fold}, train the others; validation carved "
                "from train (never the test session)")

    def _sources(self, utts: dict[str, Utterances]) -> list[FeatureSource]:
        speakers: dict[str, str] = {}
        if self.is_iemocap:       # faces are picked by the utterance's speaker
            for part in utts.values():
                speakers.update(zip(part.ids, part.speakers))
            odd = next((u for u, s in speakers.items() if s not in ("F", "M")), None)
            if odd is not None:
                raise DataError(f"{WHO}: {shown(self.label_path)}: utterance '{odd}' has speaker "
                                f"{speakers[odd]!r} in videoSpeakers; IEMOCAP speakers are 'F' or 'M'.")
        sources = []
        for m in self.modalities:
            folder = feature_folder(self.root, self.features[m], m)
            sources.append(FeatureSource(
                m, shown(folder), fetch=None, folder=folder, entries=set(os.listdir(folder)),
                speakers=speakers, zero_is_absent=m in self.absent_if_zero,
                expect_dim=self.dims.get(m)))
        return sources

    def _drop_missing(self, part: Utterances, missing: dict, split: str,
                      sources: list[FeatureSource], bad: BadSamples) -> Utterances:
        """With on_bad_sample: skip, utterances without a feature file are counted and left out."""
        gone = {}
        for s in sources:
            for uid in missing.get(s.name, ()):
                gone.setdefault(uid, s)
        hit = {u for u in part.ids if u in gone}
        for uid in (u for u in part.ids if u in hit):
            bad.report(split, uid, shown(gone[uid].folder), f"has no feature file {uid}.npy or "
                       f"folder {uid}/ for modality '{gone[uid].name}'", "missing_id")
        return _without(part, None, hit)[0] if hit else part


def _without(part: Utterances, labels: Labels | None, drop: set[str]):
    keep = [i for i, u in enumerate(part.ids) if u not in drop]
    kept = Utterances([part.ids[i] for i in keep], [part.speakers[i] for i in keep],
                      [part.labels[i] for i in keep])
    if labels is None:
        return kept, None
    return kept, Labels(labels.classes[keep], None if labels.scores is None else labels.scores[keep],
                        labels.problems)


def session_folds(table: LabelPickle) -> dict[int, list[str]]:
    """IEMOCAP session number -> its dialogue ids (``Ses03M_impro01`` is session 3)."""
    sessions: dict[int, list[str]] = {}
    for vid in table.dialogues:
        match = re.match(r"Ses(\d+)", vid)
        if not match:
            raise DataError(f"{WHO}: {shown(table.path)}: dialogue id '{vid}' does not name its "
                            "IEMOCAP session (ids look like Ses01F_impro01); the session folds "
                            "cannot be formed.")
        sessions.setdefault(int(match.group(1)), []).append(vid)
    return sessions


# ---------------------------------------------------------------------------- the example ---
def write_example(root: Path, dims: tuple[int, int, int] = (6, 5, 4), per_session: int = 2,
                  turns: int = 6, seed: int = 0) -> dict:
    """A tiny IEMOCAP-like corpus in GCNet's layout (random numbers, 5 sessions, 4 classes):
    audio frame-level (T, D) files, text utterance-level (D,) files, faces per speaker."""
    import pickle
    rng = np.random.default_rng(seed)
    names = {"audio": "wav2vec-large-c-UTT", "text": "deberta-large-4-UTT", "visual": "manet_UTT"}
    for name in names.values():
        (root / "features" / name).mkdir(parents=True, exist_ok=True)
    ids, labels, speakers, sentences = {}, {}, {}, {}
    for session in range(1, 6):
        for d in range(per_session):
            vid = f"Ses0{session}{'FM'[d % 2]}_impro0{d + 1}"
            spk = ["FM"[t % 2] for t in range(turns)]
            ids[vid] = [f"{vid}_{s}{t:03d}" for t, s in enumerate(spk)]
            labels[vid] = [int(v) for v in rng.integers(0, 4, size=turns)]
            speakers[vid], sentences[vid] = spk, ["..."] * turns
            for uid, s in zip(ids[vid], spk):
                np.save(root / "features" / names["audio"] / f"{uid}.npy",
                        rng.normal(size=(int(rng.integers(2, 5)), dims[0])).astype(np.float32))
                np.save(root / "features" / names["text"] / f"{uid}.npy",
                        rng.normal(size=dims[1]).astype(np.float32))
                faces = root / "features" / names["visual"] / uid
                faces.mkdir(exist_ok=True)
                for who in "FM":
                    np.save(faces / f"compress_{who}.npy", rng.normal(size=dims[2]).astype(np.float32))
    train = {v for v in ids if not v.startswith("Ses05")}
    with open(root / CORPORA["iemocap4"].pickle, "wb") as f:
        pickle.dump([ids, labels, speakers, sentences, train, set(ids) - train], f)
    return {"root": str(root)}
