"""Generic per-modality arrays (.h5 / .npy / features.npz): round trip, splits, bad data."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from mmtk.errors import DataError
from mmtk_datasets.arrays import Arrays


def _check_rows(part, truth, seq_eq):
    for row, sid in enumerate(part.ids):
        assert int(part.labels[row]) == truth["labels"][sid]
        for m, x in part.inputs.items():
            if x.dim() == 3:
                assert seq_eq(x[row], part.lengths[m][row], truth["feats"][sid][m])
            else:
                assert np.allclose(x[row].numpy(), truth["feats"][sid][m])


def test_round_trip_all_three_containers(fx, seq_eq, tmp_path):
    truth = fx.arrays(tmp_path)          # audio.h5 (variable T), text.npy, visual in features.npz
    ds = Arrays(root=tmp_path, seed=3)
    assert ds.modalities == ("audio", "text", "visual") and ds.folds() == [None]
    assert Arrays(root=tmp_path, select=["visual", "audio"]).load().modalities == ("audio", "visual")
    splits = ds.load()
    assert splits.val is None            # carved later by the core
    assert len(splits.train) == 24 and len(splits.test) == 6
    assert sorted(splits.train.ids + splits.test.ids) == truth["ids"]
    assert torch.bincount(splits.test.labels).tolist() == [2, 2, 2]   # stratified
    for part in (splits.train, splits.test):
        _check_rows(part, truth, seq_eq)
    assert splits.class_names == ["0", "1", "2"]
    # the split is seeded: same seed, same split; another seed, another split
    assert Arrays(root=tmp_path, seed=3).load().test.ids == splits.test.ids
    assert Arrays(root=tmp_path, seed=4).load().test.ids != splits.test.ids


def test_class_names_are_sorted(fx, tmp_path):
    truth = fx.arrays(tmp_path, names=True)
    splits = Arrays(root=tmp_path).load()
    assert splits.class_names == sorted(truth["class_names"][:3])       # apple, mango, zebra
    sid = splits.train.ids[0]
    assert splits.class_names[int(splits.train.labels[0])] == truth["written_labels"][sid]


def test_splits_csv(fx, seq_eq, tmp_path):
    truth = fx.arrays(tmp_path)
    names = ["train"] * 20 + ["val"] * 5 + ["test"] * 5
    (tmp_path / "splits.csv").write_text("id,split\n" + "".join(
        f"{i},{s}\n" for i, s in zip(truth["ids"], names)))
    splits = Arrays(root=tmp_path).load()
    assert splits.train.ids == truth["ids"][:20]
    assert splits.val.ids == truth["ids"][20:25] and splits.test.ids == truth["ids"][25:]
    _check_rows(splits.val, truth, seq_eq)


def test_fold_files(fx, tmp_path):
    truth = fx.arrays(tmp_path)
    ids = truth["ids"]
    for k in (1, 2):
        fdir = tmp_path / "folds" / str(k)
        fdir.mkdir(parents=True)
        test = ids[(k - 1) * 10:k * 10]
        rest = [i for i in ids if i not in test]
        (fdir / "test.txt").write_text("\n".join(test))
        (fdir / "train.txt").write_text("\n".join(rest[:-4]))
        if k == 1:
            (fdir / "val.txt").write_text("\n".join(rest[-4:]))
    ds = Arrays(root=tmp_path)
    assert ds.folds() == [1, 2]
    one, two = ds.load(1), ds.load(2)
    assert one.test.ids == ids[:10] and len(one.val) == 4
    assert two.test.ids == ids[10:20] and two.val is None
    assert two.info["unassigned_ids"] == 4


def test_missing_modality_in_h5(fx, tmp_path):
    truth = fx.arrays(tmp_path, kinds={"audio": "h5", "text": "h5"}, seq=("audio",))
    sid = truth["ids"][5]
    with h5py.File(tmp_path / "text.h5", "a") as f:
        del f[sid]
    with pytest.raises(DataError) as err:
        Arrays(root=tmp_path).load()
    assert "text.h5" in str(err.value) and sid in str(err.value)
    splits = Arrays(root=tmp_path, allow_missing_modalities=True).load()
    part = splits.train if sid in splits.train.ids else splits.test
    row = part.ids.index(sid)
    assert part.present[row].tolist() == [True, False]
    assert float(part.inputs["text"][row].abs().sum()) == 0.0


@pytest.mark.parametrize("value,needle", [
    (np.ones(9, np.float32), "feature dimension 9 but 6"),
    (np.array([1, 2, np.nan, 4, 5, 6], np.float32), "NaN"),
    (np.array([1, 2, np.inf, 4, 5, 6], np.float32), "infinite"),
    (np.zeros(0, np.float32), "empty"),
])
def test_bad_h5_sample(fx, tmp_path, value, needle):
    truth = fx.arrays(tmp_path, kinds={"audio": "h5", "text": "h5"})
    sid = truth["ids"][7]
    with h5py.File(tmp_path / "text.h5", "a") as f:
        del f[sid]
        f.create_dataset(sid, data=value)
    with pytest.raises(DataError) as err:
        Arrays(root=tmp_path).load()
    assert needle in str(err.value) and sid in str(err.value) and "text.h5" in str(err.value)
    splits = Arrays(root=tmp_path, on_bad_sample="skip").load()
    assert sid not in splits.train.ids + splits.test.ids
    assert splits.info["skipped_total"] == 1


def test_nan_row_in_npy_names_the_id(fx, tmp_path):
    truth = fx.arrays(tmp_path)
    x = np.load(tmp_path / "text.npy")
    x[11, 2] = np.nan
    np.save(tmp_path / "text.npy", x)
    with pytest.raises(DataError, match=rf"text\.npy: sample '{truth['ids'][11]}'.*NaN"):
        Arrays(root=tmp_path).load()


def test_rows_must_match_ids(fx, tmp_path):
    fx.arrays(tmp_path)
    np.save(tmp_path / "text.npy", np.zeros((29, 6), np.float32))
    with pytest.raises(DataError, match=r"text\.npy has shape \(29, 6\).*N = 30"):
        Arrays(root=tmp_path).load()


def test_label_out_of_range_and_unknown_name(fx, tmp_path):
    truth = fx.arrays(tmp_path)
    with pytest.raises(DataError, match=r"label 2 is out of range \(classes are 0..1,"):
        Arrays(root=tmp_path, class_names=["no", "yes"]).load()
    csv = (tmp_path / "labels.csv").read_text().replace(f"{truth['ids'][3]},0", f"{truth['ids'][3]},-1")
    (tmp_path / "labels.csv").write_text(csv)
    with pytest.raises(DataError, match=rf"{truth['ids'][3]}.*label -1 is out of range"):
        Arrays(root=tmp_path).load()
    fx.arrays(tmp_path / "named", names=True)
    with pytest.raises(DataError, match=r"train split\): label 'zebra' is not one of "
                                        r"data.class_names \(apple, mango\)"):
        Arrays(root=tmp_path / "named", class_names=["apple", "mango"]).load()


def test_split_id_without_label_or_features(fx, tmp_path):
    truth = fx.arrays(tmp_path)
    (tmp_path / "splits.csv").write_text("id,split\nghost,train\n" + "".join(
        f"{i},test\n" for i in truth["ids"]))
    with pytest.raises(DataError, match=r"sample 'ghost' \(train split\): has no entry for modality"):
        Arrays(root=tmp_path).load()
    # an id with a label but no row in ids.txt is absent from the .npy files
    (tmp_path / "splits.csv").write_text("id,split\n" + "".join(
        f"{i},{'test' if n % 5 == 0 else 'train'}\n" for n, i in enumerate(truth["ids"])))
    (tmp_path / "ids.txt").write_text("\n".join(truth["ids"][:-1] + ["other"]))
    with pytest.raises(DataError, match=rf"text\.npy: sample '{truth['ids'][-1]}'.*absent"):
        Arrays(root=tmp_path).load()


def test_format_errors(fx, tmp_path):
    truth = fx.arrays(tmp_path)
    (tmp_path / "labels.csv").write_text("name,class\n")
    with pytest.raises(DataError, match="must start with the header 'id,label'"):
        Arrays(root=tmp_path).load()
    (tmp_path / "labels.csv").write_text("id,label\ns000,0\ns001,1\ns000,2\n")
    with pytest.raises(DataError, match=r"id 's000' is listed twice \(lines 2 and 4\)"):
        Arrays(root=tmp_path).load()
    (tmp_path / "labels.csv").unlink()
    with pytest.raises(DataError, match=r"looked for .*labels\.csv"):
        Arrays(root=tmp_path).load()
    (tmp_path / "labels.csv").write_text("id,label\n" + "".join(f"{i},0\n" for i in truth["ids"]))
    (tmp_path / "audio.h5").write_bytes(b"not an hdf5 file at all")
    with pytest.raises(DataError, match=r"audio\.h5 as an HDF5 file"):
        Arrays(root=tmp_path).load()
    np.save(tmp_path / "audio.npy", np.zeros((30, 2)))
    with pytest.raises(DataError, match="modality 'audio' is given twice"):
        Arrays(root=tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no feature files"):
        Arrays(root=tmp_path / "empty")


def test_variable_length_sequences_pad_and_truncate(fx, tmp_path):
    truth = fx.arrays(tmp_path, kinds={"audio": "h5"}, seq=("audio",))
    splits = Arrays(root=tmp_path, max_frames=2).load()
    lengths = splits.train.lengths["audio"]
    assert splits.train.inputs["audio"].shape[1] == 2 and int(lengths.max()) == 2
    sid = splits.train.ids[0]
    t = min(2, truth["feats"][sid]["audio"].shape[0])
    assert np.allclose(splits.train.inputs["audio"][0, :t].numpy(), truth["feats"][sid]["audio"][:t])
    assert sum(f.get("truncated_to_max_frames", {}).get("audio", 0)
               for f in splits.info["splits"].values()) > 0
