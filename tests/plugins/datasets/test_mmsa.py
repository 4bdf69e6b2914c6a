"""MMSA pickles (MOSI / MOSEI / SIMS): round trip, label rules, bad data."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from mmtk.errors import DataError
from mmtk_datasets.mmsa import MMSA, sentiment_to_class


def test_round_trip(fx, seq_eq, tmp_path):
    truth = fx.mmsa(tmp_path / "unaligned_50.pkl")
    ds = MMSA(root=tmp_path)              # a folder holding one pickle is enough
    assert ds.modalities == ("audio", "text", "visual") and ds.folds() == [None]
    splits = ds.load(None)
    for split, key in (("train", "train"), ("val", "valid"), ("test", "test")):
        part, raw = getattr(splits, split), truth[key]
        assert part.ids == list(raw["id"])
        assert part.labels.tolist() == (raw["regression_labels"] >= 0).astype(int).tolist()
        for row in range(len(part)):
            assert seq_eq(part.inputs["audio"][row], part.lengths["audio"][row],
                          raw["audio"][row, :raw["audio_lengths"][row]])
            assert seq_eq(part.inputs["visual"][row], part.lengths["visual"][row],
                          raw["vision"][row, :raw["vision_lengths"][row]])
            t = int(raw["text_bert"][row, 1].sum())
            assert seq_eq(part.inputs["text"][row], part.lengths["text"][row], raw["text"][row, :t])
        # regression targets kept as per-sample scores, aligned with the split's ids
        assert np.allclose(part.scores.numpy(), raw["regression_labels"])
        assert part.subset(torch.tensor([2, 0])).scores.tolist() == \
            pytest.approx([float(raw["regression_labels"][2]), float(raw["regression_labels"][0])])
    assert splits.class_names == ["negative", "non-negative"]


def test_token_ids_stay_integers(fx, tmp_path):
    truth = fx.mmsa(tmp_path / "d.pkl")
    part = MMSA(root=tmp_path / "d.pkl", text="text_bert").load().train
    x = part.inputs["text"]
    assert x.dtype == torch.long and x.shape[-1] == 3
    t = int(part.lengths["text"][0])
    assert x[0, :t, 0].tolist() == truth["train"]["text_bert"][0, 0, :t].astype(int).tolist()
    assert x[0, :t, 1].tolist() == [1] * t


@pytest.mark.parametrize("rule,values,expected", [
    ("binary", [-0.2, 0.0, 0.4], [0, 1, 1]),
    ("binary_nonzero", [-0.2, 0.0, 0.4], [0, -1, 1]),
    ("5class", [-3.0, -1.4, 0.49, 2.6], [0, 1, 2, 4]),
    ("7class", [-3.0, -1.6, 0.2, 2.9], [0, 1, 3, 6]),
    ("sims3", [-1.0, -0.1, 0.0, 0.1, 0.11, 1.0], [0, 0, 1, 1, 2, 2]),
    ("sims2", [-1.0, 0.0, 0.2], [0, 0, 1]),
])
def test_label_rules(rule, values, expected):
    assert sentiment_to_class(np.array(values), rule).tolist() == expected


def test_binary_nonzero_leaves_out_zeros_and_counts_them(fx, tmp_path):
    truth = fx.mmsa(tmp_path / "d.pkl")
    splits = MMSA(root=tmp_path / "d.pkl", label_rule="binary_nonzero").load()
    zeros = int((truth["train"]["regression_labels"] == 0).sum())
    assert zeros >= 1
    assert len(splits.train) == len(truth["train"]["id"]) - zeros
    assert splits.info["excluded_by_label_rule"]["train"] == zeros
    assert len(splits.train.scores) == len(splits.train)
    assert (splits.train.scores != 0).all()


def test_classification_labels_field(fx, tmp_path):
    truth = fx.mmsa(tmp_path / "d.pkl")
    splits = MMSA(root=tmp_path / "d.pkl", label_rule="classification_labels").load()
    assert splits.test.labels.tolist() == truth["test"]["classification_labels"].astype(int).tolist()


def _edit(path, fn):
    data = pickle.loads(path.read_bytes())
    fn(data)
    path.write_bytes(pickle.dumps(data))


def test_audio_minus_inf_follows_mmsa_and_is_counted(fx, tmp_path):
    path = tmp_path / "d.pkl"
    fx.mmsa(path)
    _edit(path, lambda d: d["train"]["audio"].__setitem__((1, 0, 0), -np.inf))
    splits = MMSA(root=path).load()
    assert splits.info["neg_inf_set_to_zero"] == {"train": 1}
    assert float(splits.train.inputs["audio"][1, 0, 0]) == 0.0
    with pytest.raises(DataError, match=r"vid001.*infinite"):
        MMSA(root=path, neg_inf_to_zero=False).load()


@pytest.mark.parametrize("edit,needle", [
    (lambda d: d["valid"]["vision"].__setitem__((2, 0, 1), np.nan), "NaN"),
    (lambda d: d["valid"]["vision_lengths"].__setitem__(2, 0), "empty"),
    (lambda d: d["valid"]["regression_labels"].__setitem__(2, np.nan), "NaN/infinite or outside"),
])
def test_bad_samples(fx, tmp_path, edit, needle):
    path = tmp_path / "d.pkl"
    truth = fx.mmsa(path)
    _edit(path, edit)
    sid = truth["valid"]["id"][2]
    with pytest.raises(DataError) as err:
        MMSA(root=path).load()
    assert needle in str(err.value) and sid in str(err.value) and "d.pkl" in str(err.value)
    splits = MMSA(root=path, on_bad_sample="skip").load()
    assert sid not in splits.val.ids and splits.info["skipped_total"] == 1


def test_sims_rule_rejects_out_of_range_scores(fx, tmp_path):
    path = tmp_path / "d.pkl"
    fx.mmsa(path)                                   # scores up to ±3: not SIMS' [-1, 1]
    with pytest.raises(DataError, match="outside the range of label_rule 'sims3'"):
        MMSA(root=path, label_rule="sims3").load()


def test_missing_field_file_and_corrupt_pickle(fx, tmp_path):
    path = tmp_path / "d.pkl"
    fx.mmsa(path)
    _edit(path, lambda d: d["test"].pop("vision"))
    with pytest.raises(DataError, match="test split has no field 'vision'"):
        MMSA(root=path).load()
    assert MMSA(root=path, select=["audio", "text"]).load().modalities == ("audio", "text")
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match="corrupt"):
        MMSA(root=path).load()
    with pytest.raises(DataError, match="does not exist"):
        MMSA(root=tmp_path / "nope.pkl")
    (tmp_path / "other.pkl").write_bytes(b"")
    with pytest.raises(DataError, match="several pickles"):
        MMSA(root=tmp_path)
