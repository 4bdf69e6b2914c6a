"""MMIN layout (IEMOCAP / MSP-IMPROV): round trip and every bad-data case."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from mmtk.errors import DataError
from mmtk_datasets.mmin import MMINLayout


def test_round_trip_every_fold(fx, seq_eq, tmp_path):
    truth = fx.mmin(tmp_path, folds=3)
    ds = MMINLayout(root=tmp_path)
    assert ds.modalities == ("audio", "text", "visual")
    assert ds.folds() == [1, 2, 3]
    for fold in ds.folds():
        splits = ds.load(fold)
        assert splits.num_classes == 4
        for split, stem in (("train", "trn"), ("val", "val"), ("test", "tst")):
            part = getattr(splits, split)
            assert part.ids == truth["splits"][fold][stem]
            assert part.labels.tolist() == [truth["labels"][i] for i in part.ids]
            assert part.present.all()
            for m in ds.modalities:
                assert part.inputs[m].dtype == torch.float32 and part.inputs[m].dim() == 3
                for row, uid in enumerate(part.ids):
                    assert seq_eq(part.inputs[m][row], part.lengths[m][row], truth["feats"][uid][m])
        assert splits.info["fold"] == fold
        assert splits.info["feature_files"]["audio"].endswith("comparE.h5")


def test_integer_labels_and_mean_pooling(fx, tmp_path):
    truth = fx.mmin(tmp_path, folds=1, one_hot=False)
    splits = MMINLayout(root=tmp_path, pool="mean").load(1)
    assert splits.info["labels"] == "integer"
    uid = splits.test.ids[0]
    assert splits.test.inputs["audio"].shape == (len(splits.test), 5)
    assert torch.allclose(splits.test.inputs["audio"][0], torch.from_numpy(truth["feats"][uid]["audio"].mean(0)))
    assert splits.test.lengths == {}


def test_no_fold_given_uses_the_first(fx, tmp_path):
    fx.mmin(tmp_path, folds=2)
    assert MMINLayout(root=tmp_path).load(None).info["fold"] == 1


def test_root_from_environment(fx, tmp_path, monkeypatch):
    fx.mmin(tmp_path, folds=1)
    monkeypatch.setenv("MMTK_DATA", str(tmp_path))
    assert len(MMINLayout().load(1).train) == 12


def test_wrong_root_says_where_it_looked(tmp_path, monkeypatch):
    with pytest.raises(DataError, match=str(tmp_path / "nowhere")):
        MMINLayout(root=tmp_path / "nowhere")
    monkeypatch.delenv("MMTK_DATA", raising=False)
    with pytest.raises(DataError, match="MMTK_DATA"):
        MMINLayout()


@pytest.mark.parametrize("victim,looked", [("A/comparE.h5", "A"), ("target/1/tst_label.npy", None),
                                           ("target/1/val_int2name.npy", None)])
def test_missing_file_is_named(fx, tmp_path, victim, looked):
    fx.mmin(tmp_path, folds=1)
    (tmp_path / victim).unlink()
    with pytest.raises(DataError) as err:
        MMINLayout(root=tmp_path).load(1)
    assert f"looked for {tmp_path / (looked or victim)}" in str(err.value)


def test_missing_fold_lists_the_folds(fx, tmp_path):
    fx.mmin(tmp_path, folds=2)
    with pytest.raises(DataError, match=r"fold 7 not found.*folds present: 1, 2"):
        MMINLayout(root=tmp_path).load(7)


def _rewrite(path, uid, data):
    with h5py.File(path, "a") as f:
        del f[uid]
        if data is not None:
            f.create_dataset(uid, data=data)


def test_id_absent_from_feature_file(fx, tmp_path):
    truth = fx.mmin(tmp_path, folds=1)
    uid = truth["splits"][1]["tst"][1]
    _rewrite(tmp_path / "V" / "denseface.h5", uid, None)
    with pytest.raises(DataError) as err:
        MMINLayout(root=tmp_path).load(1)
    assert "denseface.h5" in str(err.value) and uid in str(err.value) and "absent" in str(err.value)
    # declared as naturally missing: kept, with the modality marked absent and zero-filled
    splits = MMINLayout(root=tmp_path, allow_missing_modalities=True).load(1)
    row = splits.test.ids.index(uid)
    assert splits.test.present[row].tolist() == [True, True, False]
    assert float(splits.test.inputs["visual"][row].abs().sum()) == 0.0
    assert splits.info["splits"]["test"]["absent_modalities"] == {"visual": 1}


@pytest.mark.parametrize("case,data,needle", [
    ("wrong_dim", np.ones((3, 9), np.float32), "feature dimension 9 but 5"),
    ("nan", np.array([[0, 1, 2, 3, np.nan]], np.float32), "NaN"),
    ("inf", np.array([[0, 1, 2, 3, np.inf]], np.float32), "infinite"),
    ("empty", np.zeros((0, 5), np.float32), "empty"),
    ("vector", np.ones(5, np.float32), "samples of this modality are"),
])
def test_bad_sample_errors_and_skip(fx, tmp_path, case, data, needle):
    truth = fx.mmin(tmp_path, folds=1)
    uid = truth["splits"][1]["trn"][3]
    _rewrite(tmp_path / "A" / "comparE.h5", uid, data)
    with pytest.raises(DataError) as err:
        MMINLayout(root=tmp_path).load(1)
    msg = str(err.value)
    assert needle in msg and uid in msg and "comparE.h5" in msg and "train split" in msg
    splits = MMINLayout(root=tmp_path, on_bad_sample="skip").load(1)
    assert uid not in splits.train.ids and len(splits.train) == 11
    assert splits.info["skipped_total"] == 1
    assert sum(splits.info["skipped"]["train"].values()) == 1


def test_declared_dims_are_enforced(fx, tmp_path):
    fx.mmin(tmp_path, folds=1)
    with pytest.raises(DataError, match="feature dimension 7 but 1024"):
        MMINLayout(root=tmp_path, dims={"text": 1024}).load(1)


def test_label_not_one_hot_and_out_of_range(fx, tmp_path):
    truth = fx.mmin(tmp_path, folds=1)
    path = tmp_path / "target" / "1" / "val_label.npy"
    y = np.load(path)
    y[2] = [1, 1, 0, 0]
    np.save(path, y)
    with pytest.raises(DataError, match=f"{truth['splits'][1]['val'][2]}.*not one-hot"):
        MMINLayout(root=tmp_path).load(1)
    # integer labels beyond the declared classes
    fx.mmin(tmp_path / "msp", folds=1, one_hot=False)
    with pytest.raises(DataError, match=r"label 3 is out of range \(classes are 0..2\)"):
        MMINLayout(root=tmp_path / "msp", class_names=["a", "b", "c"]).load(1)


def test_corrupt_h5_is_named(fx, tmp_path):
    fx.mmin(tmp_path, folds=1)
    path = tmp_path / "L" / "bert_large.h5"
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(DataError, match="bert_large.h5.*HDF5"):
        MMINLayout(root=tmp_path).load(1)


def test_leak_between_splits_is_refused(fx, tmp_path):
    truth = fx.mmin(tmp_path, folds=1)
    fdir = tmp_path / "target" / "1"
    names = np.load(fdir / "tst_int2name.npy")
    names[0] = [truth["splits"][1]["trn"][0].encode()]
    np.save(fdir / "tst_int2name.npy", names)
    with pytest.raises(DataError, match="both the train and the test split"):
        MMINLayout(root=tmp_path).load(1)


def test_several_feature_files_need_a_name(fx, tmp_path):
    fx.mmin(tmp_path, folds=1)
    with h5py.File(tmp_path / "A" / "IS10.h5", "w"):
        pass
    with pytest.raises(DataError, match="several feature files"):
        MMINLayout(root=tmp_path).load(1)
    splits = MMINLayout(root=tmp_path, features={"audio": "A/comparE.h5", "text": "L"}).load(1)
    assert splits.modalities == ("audio", "text")
