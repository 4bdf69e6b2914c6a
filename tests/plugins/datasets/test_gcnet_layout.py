"""gcnet_layout: GCNet's feature folders and DialogueGCN-style label pickles, read back exactly;
IEMOCAP session folds with validation from train only, MOSI official splits and scores; every
kind of bad input is a DataError naming the file or the utterance."""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from mmtk.cli import main
from mmtk.data import ensure_validation
from mmtk.errors import DataError
from mmtk_datasets.gcnet import GCNetLayout

FEATURES = {"audio": "wav2vec-large-c-UTT", "text": "deberta-large-4-UTT", "visual": "manet_UTT"}
IEMOCAP_PICKLE = {4: "IEMOCAP_features_raw_4way.pkl", 6: "IEMOCAP_features_raw_6way.pkl"}


# --------------------------------------------------------------------------- writers ---
def _save(path: Path, x: np.ndarray) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, x)
    return x


def write_iemocap(root: Path, classes: int = 4, dialogues: int = 2, turns: int = 4,
                  dims=(6, 5, 4), raw_faces: bool = False, seed: int = 0) -> dict:
    """GCNet's IEMOCAP layout: 5 sessions x ``dialogues`` dialogues x ``turns`` utterances.

    features/wav2vec-large-c-UTT/<uid>.npy   (T, D) frames        -> mean over T
    features/deberta-large-4-UTT/<uid>.npy   (D,) or (1, D)       -> as is
    features/manet_UTT/<uid>/compress_{F,M}.npy, or with ``raw_faces`` one <frame>_{F,M}.npy
    per face (2-3 per speaker)                                    -> mean of the speaker's faces
    IEMOCAP_features_raw_<k>way.pkl  [videoIDs, videoLabels, videoSpeakers, videoSentences,
    trainVid, testVid] (a list, as GCNet's files are). Returns what a reader must give back.
    """
    rng = np.random.default_rng(seed)
    feats = {m: root / "features" / name for m, name in FEATURES.items()}
    tables: list[dict] = [{}, {}, {}, {}]
    truth: dict = {"session": {}, "label": {}, "speaker": {}, "vec": {m: {} for m in FEATURES}}
    for session in range(1, 6):
        for d in range(dialogues):
            vid = f"Ses0{session}{'FM'[d % 2]}_{'impro' if d % 2 else 'script'}0{d + 1}"
            spk = ["FM"[(t + d) % 2] for t in range(turns)]
            uids = [f"{vid}_{s}{t:03d}" for t, s in enumerate(spk)]
            labels = [int(v) for v in (np.arange(turns) + d + session) % classes]
            for table, value in zip(tables, (uids, labels, spk, [f"line {t}" for t in range(turns)])):
                table[vid] = value
            for uid, s, y in zip(uids, spk, labels):
                truth["session"][uid], truth["label"][uid], truth["speaker"][uid] = session, y, s
                frames = _save(feats["audio"] / f"{uid}.npy", rng.normal(size=(int(rng.integers(2, 6)), dims[0])))
                truth["vec"]["audio"][uid] = frames.mean(0)
                shape = (1, dims[1]) if rng.random() < 0.5 else (dims[1],)
                truth["vec"]["text"][uid] = _save(feats["text"] / f"{uid}.npy",
                                                  rng.normal(size=shape).astype(np.float32)).reshape(-1)
                truth["vec"]["visual"][uid] = _write_faces(feats["visual"] / uid, s, dims[2], raw_faces, rng)
    train = {v for v in tables[0] if not v.startswith("Ses05")}
    path = root / IEMOCAP_PICKLE[classes]
    path.write_bytes(pickle.dumps([*tables, train, set(tables[0]) - train]))
    truth.update(pickle=path, ids=[u for v in sorted(tables[0]) for u in tables[0][v]], tables=tables)
    return truth


def _write_faces(folder: Path, speaker: str, dim: int, raw: bool, rng) -> np.ndarray:
    """Faces of both speakers (the other one's shifted by +100, so using it would show)."""
    mine = None
    for who in "FM":
        offset = 0.0 if who == speaker else 100.0
        if raw:
            faces = rng.normal(size=(int(rng.integers(2, 4)), dim)) + offset
            for i, face in enumerate(faces):
                _save(folder / f"{i:06d}_{who}.npy", face.astype(np.float32))
            value = faces.astype(np.float32).mean(0)
        else:
            value = _save(folder / f"compress_{who}.npy", (rng.normal(size=dim) + offset).astype(np.float32))
        mine = value if who == speaker else mine
    return mine


def write_mosi(root: Path, dims=(3, 7, 4), seed: int = 0, corpus: str = "CMUMOSI") -> dict:
    """GCNet's MOSI layout: [videoIDs, videoLabels (scores in [-3, 3]), videoSpeakers (''),
    videoSentences, trainVids, valVids, testVids]; audio (D,), text (T, D), visual <uid>.npy
    except one utterance whose faces are a folder of per-frame .npy files (no speaker tag)."""
    rng = np.random.default_rng(seed)
    sets = {"train": ["vidA", "vidB", "vidC"], "val": ["vidD"], "test": ["vidE", "vidF"]}
    tables: list[dict] = [{}, {}, {}, {}]
    truth: dict = {"split": {}, "score": {}, "vec": {m: {} for m in FEATURES}}
    for split, vids in sets.items():
        for vid in vids:
            uids = [f"{vid}_{i}" for i in range(1, 5)]
            scores = [float(v) for v in rng.uniform(-3, 3, size=4).round(1)]
            scores[0] = 0.0
            for table, value in zip(tables, (uids, scores, [""] * 4, ["text"] * 4)):
                table[vid] = value
            for uid, y in zip(uids, scores):
                truth["split"][uid], truth["score"][uid] = split, y
                truth["vec"]["audio"][uid] = _save(root / "features" / FEATURES["audio"] / f"{uid}.npy",
                                                   rng.normal(size=dims[0]))
                frames = _save(root / "features" / FEATURES["text"] / f"{uid}.npy", rng.normal(size=(5, dims[1])))
                truth["vec"]["text"][uid] = frames.mean(0)
                if uid == "vidB_2":
                    faces = rng.normal(size=(3, dims[2]))
                    for i, face in enumerate(faces):
                        _save(root / "features" / FEATURES["visual"] / uid / f"{i:05d}.npy", face)
                    truth["vec"]["visual"][uid] = faces.mean(0)
                else:
                    truth["vec"]["visual"][uid] = _save(root / "features" / FEATURES["visual"] / f"{uid}.npy",
                                                        rng.normal(size=dims[2]))
    path = root / f"{corpus}_features_raw_2way.pkl"
    path.write_bytes(pickle.dumps([*tables, set(sets["train"]), set(sets["val"]), set(sets["test"])]))
    truth.update(pickle=path, tables=tables)
    return truth


def _rewrite_pickle(path: Path, edit) -> None:
    data = pickle.loads(path.read_bytes())        # the test's own file
    path.write_bytes(pickle.dumps(edit(data)))


def _close(part, m: str, uid: str, expected) -> bool:
    row = part.ids.index(uid)
    return np.allclose(part.inputs[m][row].numpy(), np.asarray(expected, dtype=np.float32), atol=1e-5)


@pytest.fixture
def iemocap(tmp_path):
    return write_iemocap(tmp_path / "IEMOCAP"), tmp_path / "IEMOCAP"


# ---------------------------------------------------------------------- IEMOCAP folds ---
@pytest.mark.parametrize("fold", [1, 4])
def test_fold_k_tests_session_k_and_trains_on_the_other_four(iemocap, fold):
    truth, root = iemocap
    ds = GCNetLayout(root=root)
    assert ds.folds() == [1, 2, 3, 4, 5] and ds.modalities == ("audio", "text", "visual")
    splits = ds.load(fold)
    assert splits.val is None                    # carved from train by the core, never the test set
    assert sorted(splits.test.ids) == sorted(u for u, s in truth["session"].items() if s == fold)
    assert sorted(splits.train.ids) == sorted(u for u, s in truth["session"].items() if s != fold)
    assert splits.num_classes == 4 and splits.class_names == ["happy+excited", "sad", "neutral", "angry"]
    assert splits.in_dims == {"audio": 6, "text": 5, "visual": 4}
    for part in (splits.train, splits.test):
        assert part.labels.tolist() == [truth["label"][u] for u in part.ids]
        assert bool(part.present.all())
    assert f"test session {fold}" in splits.info["protocol"]


def test_every_utterance_is_tested_exactly_once_over_the_five_folds(iemocap):
    truth, root = iemocap
    ds = GCNetLayout(root=root)
    tested = [u for k in ds.folds() for u in ds.load(k).test.ids]
    assert sorted(tested) == sorted(truth["ids"])


def test_validation_comes_from_the_training_sessions_only(tmp_path):
    truth = write_iemocap(tmp_path, dialogues=4, turns=6)
    splits = GCNetLayout(root=tmp_path).load(2)
    train_ids, test_ids = set(splits.train.ids), set(splits.test.ids)
    carved = ensure_validation(splits, 0.25, seed=7)      # what the core does for every trial
    val = set(carved.val.ids)
    assert val and val <= train_ids and not val & test_ids
    assert {truth["session"][u] for u in val} <= {1, 3, 4, 5}
    assert set(carved.train.ids) == train_ids - val
    assert set(carved.val.labels.tolist()) == set(splits.train.labels.tolist())   # stratified
    assert set(ensure_validation(splits, 0.25, seed=7).val.ids) == val             # seeded
    assert set(ensure_validation(splits, 0.25, seed=8).val.ids) != val


def test_no_fold_given_uses_fold_one(iemocap):
    truth, root = iemocap
    assert {truth["session"][u] for u in GCNetLayout(root=root).load(None).test.ids} == {1}


def test_iemocap6_reads_six_classes(tmp_path):
    truth = write_iemocap(tmp_path, classes=6, turns=6)
    splits = GCNetLayout(root=tmp_path, dataset="iemocap6").load(3)
    assert splits.num_classes == 6 and splits.class_names[4:] == ["excited", "frustrated"]
    assert splits.train.labels.tolist() == [truth["label"][u] for u in splits.train.ids]
    assert set(splits.train.labels.tolist()) == set(range(6))


# ---------------------------------------------------------------------------- vectors ---
@pytest.mark.parametrize("raw_faces", [False, True])
def test_vectors_are_the_speakers_own_features_mean_pooled(tmp_path, raw_faces):
    truth = write_iemocap(tmp_path, raw_faces=raw_faces)
    splits = GCNetLayout(root=tmp_path).load(5)
    for part in (splits.train, splits.test):
        for uid in part.ids:
            for m in FEATURES:
                assert _close(part, m, uid, truth["vec"][m][uid]), (m, uid)
    # the other speaker's faces are 100 away: none of them leaked into a mean
    assert float(splits.train.inputs["visual"].abs().max()) < 50


def test_a_face_folder_without_the_speakers_face_is_an_absent_modality(iemocap):
    truth, root = iemocap
    uid = truth["ids"][3]
    (root / "features" / FEATURES["visual"] / uid / f"compress_{truth['speaker'][uid]}.npy").unlink()
    zeros = truth["ids"][5]
    np.save(root / "features" / FEATURES["visual"] / zeros / f"compress_{truth['speaker'][zeros]}.npy",
            np.zeros(4, np.float32))           # GCNet's compression writes zeros for "no face"
    part = GCNetLayout(root=root).load(5).train
    col = part.modalities.index("visual")
    for sid in (uid, zeros):
        row = part.ids.index(sid)
        assert not part.present[row, col] and part.present[row].sum() == 2
        assert float(part.inputs["visual"][row].abs().sum()) == 0.0
    assert int((~part.present[:, col]).sum()) == 2
    # absent_if_zero: [] keeps GCNet's zeros as data (present)
    kept = GCNetLayout(root=root, absent_if_zero=[]).load(5).train
    assert bool(kept.present.all())
    assert float(kept.inputs["visual"][kept.ids.index(uid)].abs().sum()) == 0.0


def test_zeros_for_a_missing_face_need_a_known_width(iemocap):
    truth, root = iemocap
    first = truth["ids"][0]                 # read first: no width is known yet
    (root / "features" / FEATURES["visual"] / first / f"compress_{truth['speaker'][first]}.npy").unlink()
    with pytest.raises(DataError, match=rf"sample '{first}' \(train split\): .* holds no face of its "
                                        r"speaker .* set data\.dims\.visual"):
        GCNetLayout(root=root, absent_if_zero=[]).load(5)
    part = GCNetLayout(root=root, absent_if_zero=[], dims={"visual": 4}).load(5).train
    assert float(part.inputs["visual"][part.ids.index(first)].abs().sum()) == 0.0


def test_unlabelled_utterances_keep_label_minus_one(iemocap):
    truth, root = iemocap
    first, second = truth["ids"][0], truth["ids"][1]
    vid = first.rsplit("_", 1)[0]

    def edit(data):
        data[1][vid][0], data[1][vid][1] = -1, None
        return data
    _rewrite_pickle(truth["pickle"], edit)
    splits = GCNetLayout(root=root).load(5)
    part = splits.train
    assert part.labels[part.ids.index(first)] == -1 and part.labels[part.ids.index(second)] == -1
    assert splits.info["splits"]["train"]["unlabelled"] == 2
    assert int((part.labels >= 0).sum()) == len(part) - 2


# ------------------------------------------------------------------------------- MOSI ---
def test_mosi_official_splits_keep_scores_and_map_classes(tmp_path):
    truth = write_mosi(tmp_path)
    ds = GCNetLayout(root=tmp_path, dataset="mosi")
    assert ds.folds() == [None]
    splits = ds.load(None)
    for split in ("train", "val", "test"):
        part = getattr(splits, split)
        assert sorted(part.ids) == sorted(u for u, s in truth["split"].items() if s == split)
        scores = [truth["score"][u] for u in part.ids]
        assert np.allclose(part.scores.numpy(), scores)
        assert part.labels.tolist() == [int(y >= 0) for y in scores]
        for uid in part.ids:
            for m in FEATURES:
                assert _close(part, m, uid, truth["vec"][m][uid]), (m, uid)
    assert splits.class_names == ["negative", "non-negative"]
    assert splits.in_dims == {"audio": 3, "text": 7, "visual": 4}


def test_mosei_reads_its_own_pickle_name(tmp_path):
    write_mosi(tmp_path, corpus="CMUMOSEI")
    assert len(GCNetLayout(root=tmp_path, dataset="mosei").load().test) == 8


def test_mosi_binary_nonzero_leaves_zero_scores_out_and_counts_them(tmp_path):
    write_mosi(tmp_path)
    splits = GCNetLayout(root=tmp_path, dataset="mosi", label_rule="binary_nonzero").load()
    assert splits.info["excluded_by_label_rule"] == {"train": 3, "val": 1, "test": 2}
    assert len(splits.train) == 9 and bool((splits.train.scores != 0).all())
    assert splits.train.labels.tolist() == (splits.train.scores > 0).long().tolist()


def test_mosi_unscored_utterance_is_unlabelled(tmp_path):
    truth = write_mosi(tmp_path)

    def edit(data):
        data[1]["vidA"][1], data[1]["vidA"][2] = None, float("nan")
        return data
    _rewrite_pickle(truth["pickle"], edit)
    part = GCNetLayout(root=tmp_path, dataset="mosi").load().train
    for uid in ("vidA_2", "vidA_3"):
        row = part.ids.index(uid)
        assert part.labels[row] == -1 and torch.isnan(part.scores[row])


def test_mosi_has_no_folds(tmp_path):
    write_mosi(tmp_path)
    with pytest.raises(DataError, match=r"mosi has one official split, no folds; got fold 2"):
        GCNetLayout(root=tmp_path, dataset="mosi").load(2)


# -------------------------------------------------------------------------- bad input ---
def test_missing_feature_files_are_counted_with_the_first_ids(iemocap):
    truth, root = iemocap
    gone = truth["ids"][4:7]
    for uid in gone:
        (root / "features" / FEATURES["text"] / f"{uid}.npy").unlink()
    with pytest.raises(DataError) as err:
        GCNetLayout(root=root).load(1)
    text = str(err.value)
    assert f"3 of {len(truth['ids'])} utterance(s) have no feature" in text
    assert all(uid in text for uid in gone) and FEATURES["text"] in text
    assert "IEMOCAP_features_raw_4way.pkl" in text and "on_bad_sample: skip" in text
    splits = GCNetLayout(root=root, on_bad_sample="skip").load(1)
    kept = set(splits.train.ids) | set(splits.test.ids)
    assert kept == set(truth["ids"]) - set(gone)
    assert splits.info["skipped_total"] == 3


def test_feature_of_the_wrong_width_names_the_file_and_utterance(iemocap):
    truth, root = iemocap
    uid = truth["ids"][9]
    np.save(root / "features" / FEATURES["text"] / f"{uid}.npy", np.ones(7, np.float32))
    with pytest.raises(DataError, match=rf"sample '{uid}' \(train split\): has feature dimension 7 "
                                        rf"but 5 is expected .*file .*{uid}\.npy"):
        GCNetLayout(root=root).load(1)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_or_inf_names_the_file_and_utterance(iemocap, value):
    truth, root = iemocap
    uid = truth["ids"][12]
    path = root / "features" / FEATURES["audio"] / f"{uid}.npy"
    frames = np.load(path)
    frames[1, 2] = value
    np.save(path, frames)
    with pytest.raises(DataError, match=rf"sample '{uid}' \(train split\): contains .*NaN and .*"
                                        rf"infinite value.*{uid}\.npy"):
        GCNetLayout(root=root).load(1)


def test_corrupt_npy_names_the_file(iemocap):
    truth, root = iemocap
    uid = truth["ids"][20]
    path = root / "features" / FEATURES["audio"] / f"{uid}.npy"
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(DataError, match=rf"sample '{uid}' \(.* split\): cannot read .*{uid}\.npy as a "
                                        r"\.npy file \(corrupt"):
        GCNetLayout(root=root).load(1)


def test_pickled_npy_feature_is_refused_and_never_run(iemocap, payload):
    truth, root = iemocap
    uid = truth["ids"][2]
    payload.npy(root / "features" / FEATURES["visual"] / uid / "compress_F.npy")
    with pytest.raises(DataError, match=r"compress_F\.npy holds Python objects"):
        GCNetLayout(root=root).load(1)
    assert not payload.marker.exists()


@pytest.mark.parametrize("command", [["--dry-run"], []])
def test_label_pickle_with_code_is_refused_by_the_cli(iemocap, payload, recipe, tmp_path, capsys, command):
    truth, root = iemocap
    _rewrite_pickle(truth["pickle"], lambda data: [*data[:3], payload.obj, *data[4:]])
    r = recipe(tmp_path / "r.yaml", {"type": "gcnet_layout", "root": str(root)}, tuple(FEATURES))
    assert main(["run", str(r), *command]) == 2
    err = capsys.readouterr().err
    assert str(truth["pickle"]) in err and "asks for 'io.open'" in err and "Traceback" not in err
    assert not payload.marker.exists()


def _drop_videoids_entry(data):
    del data[0][sorted(data[0])[0]]
    return data


def _misalign(data):
    vid = sorted(data[1])[0]
    data[1][vid] = data[1][vid][:-1]
    return data


@pytest.mark.parametrize("edit,message", [
    (lambda d: {"videoIDs": d[0]}, r"holds a dict; a GCNet label pickle for iemocap4 is a list of 6: "
                                   r"\(videoIDs, videoLabels, videoSpeakers, videoSentences, trainVid, testVid\)"),
    (lambda d: d[:5], r"holds a list of 5 items; .* list of 6"),
    (lambda d: [list(d[0].values()), *d[1:]], r"item 0 \(videoIDs\) is a list; a dict dialogue id -> list"),
    (lambda d: [*d[:4], [1, 2], d[5]], r"item 4 \(trainVid\) must be a set of dialogue ids"),
    (_drop_videoids_entry, r"dialogue 'Ses01F_script01' is listed in a split set but has no entry in videoIDs"),
    (_misalign, r"dialogue 'Ses01F_script01' has 4 utterance ids, 3 labels and 4 speakers"),
])
def test_label_pickle_of_the_wrong_structure_says_what_is_expected(iemocap, edit, message):
    truth, root = iemocap
    _rewrite_pickle(truth["pickle"], edit)
    with pytest.raises(DataError, match=message):
        GCNetLayout(root=root).load(1)


@pytest.mark.parametrize("label", [4, "hap", 1.5, True])
def test_unknown_label_names_the_utterance(iemocap, label):
    truth, root = iemocap
    uid = truth["ids"][1]

    def edit(data):
        data[1][uid.rsplit("_", 1)[0]][1] = label
        return data
    _rewrite_pickle(truth["pickle"], edit)
    with pytest.raises(DataError, match=rf"sample '{uid}' \(train split\): has label {label!r}, which "
                                        r"is not a class of iemocap4 \(integers 0\.\.3"):
        GCNetLayout(root=root).load(2)
    # skip leaves exactly that utterance out
    splits = GCNetLayout(root=root, on_bad_sample="skip").load(2)
    assert uid not in splits.train.ids and splits.info["skipped_total"] == 1


@pytest.mark.parametrize("fold", [0, 6])
def test_fold_out_of_range_lists_the_folds(iemocap, fold):
    _, root = iemocap
    with pytest.raises(DataError, match=rf"fold {fold} is out of range: .* 1, 2, 3, 4, 5 \(fold k tests session k\)"):
        GCNetLayout(root=root).load(fold)


def test_missing_feature_folder_lists_what_exists(iemocap):
    _, root = iemocap
    with pytest.raises(DataError, match=r"feature folder for 'audio' not found: looked for .*wav2vec-large-z-UTT; "
                                        r".*features holds deberta-large-4-UTT, manet_UTT, wav2vec-large-c-UTT"):
        GCNetLayout(root=root, features={**FEATURES, "audio": "wav2vec-large-z-UTT"}).load(1)


def test_missing_features_folder_and_label_pickle_say_where_they_looked(tmp_path):
    write_mosi(tmp_path)
    with pytest.raises(DataError, match=r"label pickle not found: looked for .*IEMOCAP_features_raw_4way\.pkl"):
        GCNetLayout(root=tmp_path).load(1)
    (tmp_path / "features").rename(tmp_path / "feats")
    with pytest.raises(DataError, match=r"no features folder: looked for .*features"):
        GCNetLayout(root=tmp_path, dataset="mosi").load()


def test_face_file_without_a_speaker_tag_is_named(iemocap):
    truth, root = iemocap
    uid = truth["ids"][0]
    np.save(root / "features" / FEATURES["visual"] / uid / "face.npy", np.ones(4, np.float32))
    with pytest.raises(DataError, match=rf"sample '{uid}' \(.* split\): face file .*face\.npy does not say whose"):
        GCNetLayout(root=root).load(1)


def test_dialogue_id_without_a_session_is_an_error(iemocap):
    truth, root = iemocap

    def edit(data):
        for table in data[:4]:
            table["dialogue7"] = table.pop("Ses02F_script01")
        data[4] = (data[4] - {"Ses02F_script01"}) | {"dialogue7"}
        return data
    _rewrite_pickle(truth["pickle"], edit)
    with pytest.raises(DataError, match=r"dialogue id 'dialogue7' does not name its IEMOCAP session"):
        GCNetLayout(root=root).folds()


def test_odd_speaker_and_wrong_class_names_are_errors(iemocap):
    truth, root = iemocap
    with pytest.raises(DataError, match=r"class_names lists 3 names but iemocap4 has 4 classes"):
        GCNetLayout(root=root, class_names=["a", "b", "c"])
    with pytest.raises(DataError, match=r"absent_if_zero names 'video', which is not in data.features"):
        GCNetLayout(root=root, absent_if_zero=["video"])

    def edit(data):
        data[2][sorted(data[2])[0]][0] = "X"
        return data
    _rewrite_pickle(truth["pickle"], edit)
    with pytest.raises(DataError, match=r"has speaker 'X' in videoSpeakers; IEMOCAP speakers are 'F' or 'M'"):
        GCNetLayout(root=root).load(1)


def test_feature_name_that_is_a_path_is_refused_by_validate(iemocap, recipe, tmp_path, capsys):
    _, root = iemocap
    r = recipe(tmp_path / "r.yaml", {"type": "gcnet_layout", "root": str(root),
                                     "features": {**FEATURES, "audio": "../elsewhere"}}, tuple(FEATURES))
    assert main(["validate", str(r)]) == 2
    assert "data.features" in capsys.readouterr().err


# ------------------------------------------------------------------------- end to end ---
@pytest.mark.slow
def test_mmtk_run_on_a_gcnet_corpus(iemocap, tmp_path, capsys):
    _, root = iemocap
    r = tmp_path / "gcnet.yaml"
    r.write_text(
        "name: gcnet-tiny\ndata:\n  type: gcnet_layout\n  dataset: iemocap4\n  root: nowhere\n"
        "missing: {train: {type: six_conditions}, eval: {type: six_conditions}}\n"
        "model:\n  latent_dim: 8\n  encoders: {audio: {type: mlp}, text: {type: mlp}, visual: {type: mlp}}\n"
        "  fuser: {type: concat}\n  head: {type: mlp, hidden: [8]}\n"
        f"train: {{epochs: 2, batch_size: 8}}\noutput: {{dir: {tmp_path / 'runs'}}}\n")
    assert main(["run", str(r), "--set", f"data.root={root}", "--folds", "2", "--json", "--quiet"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert list(res["trials"]) == ["fold2-seed0"]
    assert 0.0 <= res["trials"]["fold2-seed0"]["test"]["mean"]["uar"] <= 1.0
    card = json.loads(next((tmp_path / "runs").rglob("data.json")).read_text())
    assert card["sizes"]["test"] == 8 and card["sizes"]["train"] + card["sizes"]["val"] == 32
    assert card["corpus"] == "iemocap4" and "test session 2" in card["protocol"]
