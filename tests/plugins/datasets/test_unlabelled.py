"""Readers of unlabelled training samples (#15 §1): arrays (ids left out of labels.csv, the
``unlabeled`` split and id lists), mmin_layout / mmsa (an ``unlabeled_ids`` file), handwritten
(``label_budget``); bad input is a clear DataError."""
from __future__ import annotations

import math

import pytest
import torch

from mmtk.errors import DataError
from mmtk_datasets.arrays import Arrays
from mmtk_datasets.handwritten import Handwritten
from mmtk_datasets.mmin import MMINLayout
from mmtk_datasets.mmsa import MMSA


def _unlabelled(part) -> set[str]:
    return {sid for sid, y in zip(part.ids, part.labels.tolist()) if y == -1}


# -- arrays ------------------------------------------------------------------------------
def test_arrays_train_ids_left_out_of_labels_are_unlabelled(fx, tmp_path):
    truth = fx.arrays(tmp_path)
    ids = truth["ids"]
    (tmp_path / "splits.csv").write_text("id,split\n" + "".join(
        f"{i},{'test' if n % 5 == 0 else 'train'}\n" for n, i in enumerate(ids)))
    dropped = [i for n, i in enumerate(ids) if n % 5 in (1, 2)]
    (tmp_path / "labels.csv").write_text("id,label\n" + "".join(
        f"{i},{truth['labels'][i]}\n" for i in ids if i not in dropped))
    splits = Arrays(root=tmp_path).load()
    assert _unlabelled(splits.train) == set(dropped) and splits.test.labeled.all()
    assert splits.info["unlabelled"] == len(dropped)
    kept = [i for i in splits.train.ids if i not in dropped]
    assert [int(splits.train.labels[splits.train.ids.index(i)]) for i in kept] == [truth["labels"][i] for i in kept]
    # a test sample needs a label
    (tmp_path / "labels.csv").write_text("id,label\n" + "".join(
        f"{i},{truth['labels'][i]}\n" for i in ids[1:]))
    with pytest.raises(DataError, match=rf"id '{ids[0]}' \(test split\) has no label.*belongs in train"):
        Arrays(root=tmp_path).load()


def test_arrays_unlabeled_split_drops_labels_and_scores(fx, tmp_path):
    truth = fx.arrays(tmp_path, kinds={"audio": "npy", "text": "npy"})
    ids = truth["ids"]
    role = {i: ("test" if n % 5 == 0 else "unlabeled" if n % 5 == 1 else "train") for n, i in enumerate(ids)}
    (tmp_path / "splits.csv").write_text("id,split\n" + "".join(f"{i},{s}\n" for i, s in role.items()))
    (tmp_path / "scores.csv").write_text("id,score\n" + "".join(f"{i},{n / 10}\n" for n, i in enumerate(ids)
                                                                if role[i] != "unlabeled"))
    for mmap in (False, True):
        splits = Arrays(root=tmp_path, mmap=mmap).load()
        pool = {i for i, s in role.items() if s == "unlabeled"}
        assert _unlabelled(splits.train) == pool and len(splits.train) == 24
        nan = {sid for sid, s in zip(splits.train.ids, splits.train.scores.tolist()) if math.isnan(s)}
        assert nan == pool


def test_arrays_unlabelled_pool_files(fx, tmp_path):
    truth = fx.arrays(tmp_path)
    pool = truth["ids"][:6]
    (tmp_path / "unlabeled.txt").write_text("\n".join(pool) + "\n")
    splits = Arrays(root=tmp_path).load()             # the reader draws train/test from the rest
    assert _unlabelled(splits.train) == set(pool)
    assert set(pool).isdisjoint(splits.test.ids)
    (tmp_path / "unlabeled.txt").write_text("ghost\n")
    with pytest.raises(DataError, match="sample 'ghost' \\(train split\\): has no entry"):
        Arrays(root=tmp_path).load()


def test_arrays_fold_unlabeled_list(fx, tmp_path):
    truth = fx.arrays(tmp_path)
    ids = truth["ids"]
    fold = tmp_path / "folds" / "1"
    fold.mkdir(parents=True)
    (fold / "train.txt").write_text("\n".join(ids[:20]))
    (fold / "test.txt").write_text("\n".join(ids[20:26]))
    (fold / "unlabeled.txt").write_text("\n".join(ids[26:]))
    splits = Arrays(root=tmp_path).load(1)
    assert _unlabelled(splits.train) == set(ids[26:]) and len(splits.train) == 24
    (fold / "unlabeled.txt").write_text("\n".join(ids[18:]))   # overlaps train and test
    with pytest.raises(DataError, match="is in both the"):
        Arrays(root=tmp_path).load(1)


# -- mmin_layout and mmsa ---------------------------------------------------------------
def test_mmin_layout_unlabeled_ids(fx, tmp_path):
    truth = fx.mmin(tmp_path)
    train = truth["splits"][1]["trn"]
    listed = train[:5] + truth["splits"][1]["tst"][:1]        # a test id keeps its label
    (tmp_path / "pool.txt").write_text("\n".join(listed) + "\n")
    splits = MMINLayout(root=tmp_path, unlabeled_ids=tmp_path / "pool.txt").load(1)
    assert _unlabelled(splits.train) == set(train[:5]) and splits.test.labeled.all()
    assert splits.info["unlabelled_train"] == 5
    (tmp_path / "pool.txt").write_text("Ses09_nobody\n")
    with pytest.raises(DataError, match=r"pool\.txt lists id 'Ses09_nobody', which is in no split"):
        MMINLayout(root=tmp_path, unlabeled_ids=tmp_path / "pool.txt").load(1)
    with pytest.raises(DataError, match="unlabeled_ids file"):
        MMINLayout(root=tmp_path, unlabeled_ids=tmp_path / "absent.txt").load(1)


def test_mmsa_unlabeled_ids_drop_label_and_score(fx, tmp_path):
    path = tmp_path / "unaligned.pkl"
    truth = fx.mmsa(path)
    train_ids = [str(i) for i in truth["train"]["id"]] if "train" in truth else None
    splits = MMSA(root=path).load()
    train_ids = train_ids or splits.train.ids
    (tmp_path / "pool.txt").write_text("\n".join(train_ids[:3]))
    splits = MMSA(root=path, unlabeled_ids=tmp_path / "pool.txt").load()
    assert _unlabelled(splits.train) == set(train_ids[:3])
    nan = {sid for sid, s in zip(splits.train.ids, splits.train.scores.tolist()) if math.isnan(s)}
    assert nan == set(train_ids[:3])


# -- handwritten ------------------------------------------------------------------------
def test_handwritten_label_budget(fx, tmp_path):
    fx.mfeat(tmp_path, per_class=10)
    full = Handwritten(data_dir=tmp_path).load()
    for budget, kept in ((0.5, 40), (20, 20)):
        splits = Handwritten(data_dir=tmp_path, label_budget=budget).load()
        assert int(splits.train.labeled.sum()) == kept and len(splits.train) == len(full.train)
        labelled = splits.train.labels[splits.train.labeled]
        assert torch.bincount(labelled, minlength=10).tolist() == [kept // 10] * 10  # stratified
        assert splits.test.labeled.all() and splits.info["labelled_train"] == kept
        again = Handwritten(data_dir=tmp_path, label_budget=budget).load()
        assert torch.equal(again.train.labels, splits.train.labels)          # seeded
    other = Handwritten(data_dir=tmp_path, label_budget=0.5, label_seed=7).load()
    assert not torch.equal(other.train.labels, Handwritten(data_dir=tmp_path, label_budget=0.5).load().train.labels)
    assert torch.equal(Handwritten(data_dir=tmp_path, label_budget=1.0).load().train.labels, full.train.labels)
    with pytest.raises(DataError, match="label_budget 500 is not a whole number of training labels "
                                        "between 1 and the 80"):
        Handwritten(data_dir=tmp_path, label_budget=500).load()
    with pytest.raises(DataError, match="label_budget 2.5"):
        Handwritten(data_dir=tmp_path, label_budget=2.5).load()
