"""Readers never crash on bad input: each case is a DataError naming the file (and, for one
sample, the split and the id), or is read as a user would expect (a BOM, integer features)."""
from __future__ import annotations

import json
import os
import pickle
import re

import h5py
import numpy as np
import pytest
import torch

from mmtk.cli import main
from mmtk.errors import DataError
from mmtk_datasets.arrays import Arrays
from mmtk_datasets.handwritten import Handwritten
from mmtk_datasets.mmin import MMINLayout
from mmtk_datasets.mmsa import MMSA

LATIN1 = "café".encode("latin-1")          # b'caf\xe9': not UTF-8


def _rewrite_bytes(path, old: bytes, new: bytes) -> None:
    data = path.read_bytes()
    assert old in data
    path.write_bytes(data.replace(old, new, 1))


# ------------------------------------------------------------------- non-UTF-8 text ---
@pytest.mark.parametrize("name,setup", [
    ("labels.csv", lambda root, ids: None),
    ("ids.txt", lambda root, ids: None),
    ("splits.csv", lambda root, ids: (root / "splits.csv").write_text(
        "id,split\n" + "".join(f"{i},{'test' if n % 4 == 0 else 'train'}\n" for n, i in enumerate(ids)))),
    ("scores.csv", lambda root, ids: (root / "scores.csv").write_text(
        "id,score\n" + "".join(f"{i},0.5\n" for i in ids))),
    ("folds/1/train.txt", lambda root, ids: [
        (root / "folds" / "1").mkdir(parents=True),
        (root / "folds" / "1" / "train.txt").write_text("\n".join(ids[:20])),
        (root / "folds" / "1" / "test.txt").write_text("\n".join(ids[20:]))]),
])
def test_non_utf8_text_file_is_an_error_naming_file_and_line(fx, tmp_path, name, setup):
    truth = fx.arrays(tmp_path)
    setup(tmp_path, truth["ids"])
    sid = truth["ids"][2]
    _rewrite_bytes(tmp_path / name, sid.encode(), sid.encode() + LATIN1)
    with pytest.raises(DataError, match=rf"{name} is not UTF-8 text \(line \d+, byte b'\\xe9'\)"):
        Arrays(root=tmp_path).load()


def test_non_utf8_handwritten_csv_is_an_error(fx, tmp_path):
    fx.mfeat(tmp_path)
    with open(tmp_path / "mfeat-kar.csv", "ab") as f:
        f.write(LATIN1 + b"\n")
    with pytest.raises(DataError, match=r"mfeat-kar\.csv is not UTF-8 text \(line 62"):
        Handwritten(data_dir=tmp_path).load()


def test_non_utf8_ids_in_mmin_and_mmsa_name_file_split_and_row(fx, tmp_path):
    root = tmp_path / "iemocap"
    fx.mmin(root, folds=1)
    names = root / "target" / "1" / "val_int2name.npy"
    ids = np.load(names)
    ids[1, 0] = LATIN1
    np.save(names, ids)
    with pytest.raises(DataError, match=r"val_int2name\.npy: the id in row 1 \(val split\) is not "
                                        r"UTF-8 text \(b'caf\\xe9'"):
        MMINLayout(root=root).load(1)
    path = tmp_path / "d.pkl"
    data = fx.mmsa(path)
    data["test"]["id"] = np.array([LATIN1] + list(data["test"]["id"][1:]), dtype=object)
    path.write_bytes(pickle.dumps(data))
    with pytest.raises(DataError, match=r"d\.pkl\[test\]\[id\]: the id in row 0 \(test split\) is "
                                        "not UTF-8"):
        MMSA(root=path).load()


# ------------------------------------------------------------------- UTF-8 with a BOM ---
def test_utf8_bom_is_accepted_in_every_text_file(fx, tmp_path):
    truth = fx.arrays(tmp_path)
    ids = truth["ids"]
    (tmp_path / "folds" / "1").mkdir(parents=True)
    (tmp_path / "folds" / "1" / "train.txt").write_text("\n".join(ids[:24]))
    (tmp_path / "folds" / "1" / "test.txt").write_text("\n".join(ids[24:]))
    (tmp_path / "scores.csv").write_text("id,score\n" + "".join(f"{i},{n / 10}\n" for n, i in enumerate(ids)))
    plain = Arrays(root=tmp_path).load(1)
    for name in ("labels.csv", "ids.txt", "scores.csv", "folds/1/train.txt", "folds/1/test.txt"):
        path = tmp_path / name
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    bom = Arrays(root=tmp_path).load(1)
    assert bom.train.ids == plain.train.ids == ids[:24] and bom.test.ids == ids[24:]
    assert bom.train.labels.equal(plain.train.labels) and bom.test.scores.equal(plain.test.scores)
    torch.testing.assert_close(bom.test.inputs["text"], plain.test.inputs["text"])
    (tmp_path / "folds" / "1" / "train.txt").unlink()
    (tmp_path / "folds" / "1" / "test.txt").unlink()
    (tmp_path / "folds" / "1").rmdir()
    (tmp_path / "folds").rmdir()
    (tmp_path / "splits.csv").write_bytes(b"\xef\xbb\xbfid,split\n" + "".join(
        f"{i},{'test' if n >= 24 else 'train'}\n" for n, i in enumerate(ids)).encode())
    assert Arrays(root=tmp_path).load().test.ids == ids[24:]


# ------------------------------------------------------------------------ symlink loops ---
def _loop(path):
    os.symlink(path.name, path)          # a link to itself
    return path


def test_symlink_loop_feature_file_is_an_error_not_a_missing_modality(fx, tmp_path):
    fx.arrays(tmp_path)
    _loop(tmp_path / "extra.h5")
    with pytest.raises(DataError, match=r"extra\.h5 is a symbolic link that cannot be followed"):
        Arrays(root=tmp_path)


@pytest.mark.parametrize("name", ["labels.csv", "ids.txt", "splits.csv"])
def test_symlink_loop_table_is_an_error(fx, tmp_path, name):
    fx.arrays(tmp_path)
    (tmp_path / name).unlink(missing_ok=True)
    _loop(tmp_path / name)
    with pytest.raises(DataError, match=rf"{name} is a symbolic link that cannot be followed"):
        Arrays(root=tmp_path).load()


def test_symlink_loop_data_root_is_an_error_in_every_reader(fx, tmp_path):
    root = _loop(tmp_path / "loop")
    for make in (lambda: Arrays(root=root), lambda: MMINLayout(root=root),
                 lambda: MMSA(root=root)):
        with pytest.raises(DataError, match=r"loop is a symbolic link that cannot be followed"):
            make()
    with pytest.raises(DataError, match=r"loop is a symbolic link that cannot be followed"):
        Handwritten(data_dir=root)


def test_symlink_loop_in_the_mmin_layout_is_an_error(fx, tmp_path):
    root = tmp_path / "iemocap"
    fx.mmin(root, folds=1)
    (root / "target" / "1" / "tst_label.npy").unlink()
    _loop(root / "target" / "1" / "tst_label.npy")
    with pytest.raises(DataError, match=r"tst_label\.npy is a symbolic link that cannot be followed"):
        MMINLayout(root=root).load(1)
    os.rename(root / "V", root / "V_real")
    _loop(root / "V")
    with pytest.raises(DataError, match=r"'visual' .*/V is a symbolic link that cannot be followed"):
        MMINLayout(root=root).feature_file("visual")
    with pytest.raises(DataError, match=r"target folder .*/elsewhere is a symbolic link"):
        MMINLayout(root=root, target_root=_loop(tmp_path / "elsewhere")).folds()


# ---------------------------------------------------------------- integer h5 features ---
def _int_features(root, n=24):
    root.mkdir()
    rng = np.random.default_rng(0)
    ids = [f"s{i}" for i in range(n)]
    with h5py.File(root / "audio.h5", "w") as f:
        for sid in ids:
            f[sid] = rng.integers(-100, 100, size=(5,)).astype(np.int16)
    with h5py.File(root / "text.h5", "w") as f:
        for sid in ids:
            f[sid] = rng.normal(size=(3,)).astype(np.float32)
    (root / "labels.csv").write_text("id,label\n" + "".join(f"{s},{i % 2}\n" for i, s in enumerate(ids)))
    return ids


def test_integer_h5_features_are_cast_for_a_float_encoder(tmp_path, recipe, capsys):
    root = tmp_path / "data"
    _int_features(root)
    splits = Arrays(root=root).load()
    x = splits.train.inputs["audio"]
    assert x.dtype == torch.float32
    with h5py.File(root / "audio.h5") as f:
        assert x[0].tolist() == f[splits.train.ids[0]][()].astype(np.float32).tolist()
    r = recipe(tmp_path / "r.yaml", {"type": "arrays", "root": str(root)}, ("audio", "text"))
    assert main(["run", str(r), "--dry-run"]) == 0, capsys.readouterr().err


def test_token_ids_stay_integers_and_a_float_sample_among_them_is_named(tmp_path):
    root = tmp_path / "data"
    ids = _int_features(root)
    (root / "manifest.json").write_text(json.dumps({"format": "mmtk-arrays", "version": 1, "modalities": {
        "audio": {"kind": "inputs", "dtype": "int16"}}}))
    assert Arrays(root=root).load().train.inputs["audio"].dtype == torch.long
    with h5py.File(root / "audio.h5", "a") as f:
        del f[ids[5]]
        f[ids[5]] = np.full(5, 2.5)
    with pytest.raises(DataError, match=rf"audio\.h5: sample '{ids[5]}' \((train|test) split\): has "
                                        "float64 values but modality 'audio' holds integer token ids"):
        Arrays(root=root).load()


# ------------------------------------------------------------ a pickled .npy, mmap: true ---
def test_object_npy_under_mmap_is_an_error_naming_the_file(tmp_path):
    np.save(tmp_path / "text.npy", np.array(["a", "b"], dtype=object), allow_pickle=True)
    (tmp_path / "ids.txt").write_text("a\nb\n")
    (tmp_path / "labels.csv").write_text("id,label\na,0\nb,1\n")
    with pytest.raises(DataError, match=r"text\.npy holds Python objects.*never unpickles"):
        Arrays(root=tmp_path, mmap=True).load()


# ------------------------------------------------------------------------------ labels ---
def _labels(root, ids, values):
    (root / "labels.csv").write_text("id,label\n" + "".join(f"{i},{v}\n" for i, v in zip(ids, values)))


def test_labels_1_and_1_0_are_one_class(fx, tmp_path):
    truth = fx.arrays(tmp_path)
    ids = truth["ids"]
    _labels(tmp_path, ids, ["1.0" if n % 2 else "1" for n in range(len(ids) // 2)]
            + ["0" if n % 2 else "0.0" for n in range(len(ids) // 2)])
    splits = Arrays(root=tmp_path).load()
    assert splits.class_names == ["0", "1"]
    labels = dict(zip(splits.train.ids + splits.test.ids,
                      splits.train.labels.tolist() + splits.test.labels.tolist()))
    assert [labels[i] for i in ids] == [1] * 15 + [0] * 15


def test_numbers_mixed_with_names_is_an_error_naming_both(fx, tmp_path):
    truth = fx.arrays(tmp_path)
    ids = truth["ids"]
    _labels(tmp_path, ids, ["1"] * 20 + ["happy"] * 10)
    with pytest.raises(DataError, match=rf"labels\.csv mixes class indices and class names: '1' "
                                        rf"\(id '{ids[0]}', line 2\).*'happy' \(id '{ids[20]}', line 22\)"):
        Arrays(root=tmp_path).load()
    splits = Arrays(root=tmp_path, class_names=["sad", "happy"]).load()   # names given: fine
    assert sorted(splits.train.labels.tolist() + splits.test.labels.tolist()) == [1] * 30


def test_non_integer_label_names_file_split_and_id(fx, tmp_path):
    truth = fx.arrays(tmp_path)
    ids = truth["ids"]
    (tmp_path / "splits.csv").write_text("id,split\n" + "".join(
        f"{i},{'val' if n == 7 else 'train'}\n" for n, i in enumerate(ids[:-6])) + "".join(
        f"{i},test\n" for i in ids[-6:]))
    _labels(tmp_path, ids, [str(n % 3) for n in range(7)] + ["1.5"] + [str(n % 3) for n in range(22)])
    with pytest.raises(DataError, match=rf"labels\.csv: sample '{ids[7]}' \(val split\): label '1\.5' "
                                        "is not an integer class index"):
        Arrays(root=tmp_path).load()
    skipped = Arrays(root=tmp_path, on_bad_sample="skip").load()
    assert skipped.info["skipped"] == {"val": {"label_out_of_range": 1}}
    with pytest.raises(DataError, match=rf"sample '{ids[7]}' \(val split\): label '1\.5'"):
        Arrays(root=tmp_path, mmap=True, select=["text"]).load()


def test_non_integer_label_in_mmin_and_mmsa_names_file_split_and_id(fx, tmp_path):
    root = tmp_path / "iemocap"
    truth = fx.mmin(root, folds=1, one_hot=False)
    path = root / "target" / "1" / "val_label.npy"
    labels = np.load(path).astype(np.float64)
    labels[2] = 1.5
    np.save(path, labels)
    sid = truth["splits"][1]["val"][2]
    with pytest.raises(DataError, match=rf"val_label\.npy: sample '{sid}' \(val split, row 2\) has "
                                        "label 1.5, which is not an integer"):
        MMINLayout(root=root).load(1)
    labels[2] = np.nan                      # int(nan) used to crash while counting classes
    np.save(path, labels)
    with pytest.raises(DataError, match=rf"sample '{sid}' \(val split, row 2\) has label nan"):
        MMINLayout(root=root).load(1)
    pkl = tmp_path / "d.pkl"
    data = fx.mmsa(pkl)
    data["valid"]["classification_labels"][1] = 0.5
    pkl.write_bytes(pickle.dumps(data))
    with pytest.raises(DataError, match=rf"\[valid\]\[classification_labels\]: sample "
                                        rf"'{re.escape(data['valid']['id'][1])}' \(val split\) has "
                                        "label 0.5"):
        MMSA(root=pkl, label_rule="classification_labels").load()


def test_unknown_class_name_is_named(fx, tmp_path):
    fx.arrays(tmp_path, names=True)          # zebra, apple, mango
    with pytest.raises(DataError, match=r"\(train split\): label 'mango' is not one of "
                                        r"data\.class_names \(apple, zebra\)"):
        Arrays(root=tmp_path, class_names=["apple", "zebra"]).load()
    with pytest.raises(DataError, match=r"split\): label 'mango' is not one of data\.class_names"):
        Arrays(root=tmp_path, class_names=["apple", "zebra"], mmap=True, select=["text"]).load()


# ------------------------------------------------- unreadable samples name file and split ---
def test_unreadable_sample_names_file_split_and_id(fx, tmp_path):
    pkl = tmp_path / "d.pkl"
    data = fx.mmsa(pkl)
    data["valid"]["audio_lengths"][2] = 999
    pkl.write_bytes(pickle.dumps(data))
    sid = re.escape(data["valid"]["id"][2])
    with pytest.raises(DataError, match=rf"d\.pkl\[valid\]\[audio\]: sample '{sid}' \(val split\) "
                                        "states length 999"):
        MMSA(root=pkl).load()
    truth = fx.arrays(tmp_path / "arrays", kinds={"audio": "h5"})
    with h5py.File(tmp_path / "arrays" / "audio.h5", "a") as f:
        del f[truth["ids"][4]]
        f.create_group(truth["ids"][4])
    with pytest.raises(DataError, match=rf"audio\.h5: sample '{truth['ids'][4]}' \((train|test) "
                                        r"split\) is an HDF5 Group"):
        Arrays(root=tmp_path / "arrays").load()


def test_ragged_mmsa_field_is_an_error_naming_it(fx, tmp_path):
    pkl = tmp_path / "d.pkl"
    data = fx.mmsa(pkl)
    data["test"]["vision"] = [np.zeros((3, 5)), np.zeros((2, 5))] + [np.zeros((7, 5))] * 2
    pkl.write_bytes(pickle.dumps(data))
    with pytest.raises(DataError, match=r"d\.pkl: the test split's 'vision' holds object values"):
        MMSA(root=pkl).load()
