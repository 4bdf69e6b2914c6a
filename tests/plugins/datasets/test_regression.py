"""Regression targets end to end: scores.csv / MMSA scores reach a one-output head trained
with l1, selection follows the validation MAE, and the MOSI recipes run on fixtures."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from conftest import RECIPES, write_scored_arrays
from mmtk.errors import DataError
from mmtk.run import Run
from mmtk_datasets.arrays import Arrays
from mmtk_datasets.mmsa import MMSA

MOSI_METRICS = ["mae", "corr", "acc2", "f1_2", "acc2_nonzero", "f1_2_nonzero", "acc5", "acc7"]


def _recipe(root, epochs: int = 30) -> dict:
    return {"mmtk": 1, "name": "reg", "data": {"type": "arrays", "root": str(root)},
            "model": {"latent_dim": 32,
                      "encoders": {m: {"type": "mlp", "hidden": 64} for m in ("audio", "text", "visual")},
                      "fuser": {"type": "concat"}, "head": {"type": "mlp", "hidden": [32], "dropout": 0.0}},
            "losses": {"task": {"type": "l1"}},
            "eval": {"metrics": ["mae", "corr"]},
            "train": {"epochs": epochs, "batch_size": 32, "monitor": "mae", "patience": None,
                      "optimizer": {"type": "adam", "lr": 3e-3}}}


def test_scores_csv_is_read_and_aligned(tmp_path):
    score = write_scored_arrays(tmp_path / "d", n=40)
    splits = Arrays(root=tmp_path / "d").load()
    for part in (splits.train, splits.test):
        rows = [int(i[1:]) for i in part.ids]
        assert part.scores.numpy() == pytest.approx(score[rows].astype(np.float32), abs=1e-5)
    mm = Arrays(root=tmp_path / "d", mmap=True).load()
    assert mm.train.scores.tolist() == pytest.approx(splits.train.scores.tolist())


@pytest.mark.parametrize("line,message", [
    ("s001,abc\n", "'abc' of id 's001' is not a number"),
    ("s001,nan\n", "score of id 's001' is nan"),
    ("s000,0.5\n", r"id 's000' is listed twice \(lines 2 and 3\)"),
])
def test_bad_scores_are_named(tmp_path, line, message):
    write_scored_arrays(tmp_path / "d", n=20)
    text = (tmp_path / "d" / "scores.csv").read_text().splitlines(keepends=True)
    (tmp_path / "d" / "scores.csv").write_text("".join(text[:2]) + line + "".join(text[3:]))
    with pytest.raises(DataError, match=message):
        Arrays(root=tmp_path / "d").load()


def test_a_sample_without_score_is_named(tmp_path):
    write_scored_arrays(tmp_path / "d", n=20)
    text = (tmp_path / "d" / "scores.csv").read_text().splitlines(keepends=True)
    (tmp_path / "d" / "scores.csv").write_text("".join(text[:-1]))
    with pytest.raises(DataError, match="id 's019' has a label and a split but no score"):
        Arrays(root=tmp_path / "d").load()


@pytest.mark.slow
def test_regression_head_learns_and_selection_follows_validation_mae(system, prepare_tree, tmp_path):
    score = write_scored_arrays(tmp_path / "d")
    results = Run.create(prepare_tree(_recipe(tmp_path / "d")), system).execute()
    assert results["metrics_info"]["mae"] == {"higher_is_better": False, "percent": False,
                                              "reads": "regression"}
    test = results["summary"]["test"]["full"]
    # predicting the training median everywhere: the best constant under MAE
    splits = Arrays(root=tmp_path / "d").load()
    rows_test = [int(i[1:]) for i in splits.test.ids]
    median = float(np.median(splits.train.scores.numpy()))
    constant_mae = float(np.abs(score[rows_test] - median).mean())
    assert test["mae"]["mean"] < 0.25 * constant_mae
    assert test["corr"]["mean"] > 0.8
    trial = next((tmp_path / "runs").glob("reg/*/trials/seed0"))
    history = json.loads((trial / "history-main.json").read_text())
    val_maes = [h["val/mae"] for h in history]
    assert results["trials"]["seed0"]["val"]["full"]["mae"] == pytest.approx(min(val_maes), rel=1e-5)


def test_mmsa_skipped_samples_keep_scores_aligned(fx, tmp_path):
    path = tmp_path / "d.pkl"
    truth = fx.mmsa(path)
    data = pickle.loads(path.read_bytes())
    data["train"]["audio"][2, 0, 0] = np.nan
    path.write_bytes(pickle.dumps(data))
    splits = MMSA(root=path, on_bad_sample="skip").load()
    raw_ids = list(truth["train"]["id"])
    assert truth["train"]["id"][2] not in splits.train.ids
    for sid, s in zip(splits.train.ids, splits.train.scores.tolist()):
        assert s == pytest.approx(float(truth["train"]["regression_labels"][raw_ids.index(sid)]))


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["cmarr-mosi", "baseline-mosi"])
def test_mosi_recipes_train_a_regressor_on_an_mmsa_fixture(system, prepare_tree, fx, tmp_path, recipe):
    fx.mmsa(tmp_path / "mosi.pkl", per_split={"train": 24, "valid": 8, "test": 8})
    tree = prepare_tree(RECIPES / f"{recipe}.yaml", [f"data.root={tmp_path / 'mosi.pkl'}",
                                                      "train.epochs=2", "train.batch_size=8"])
    assert tree.first_stage.losses.task.type == "l1" and tree.first_stage.train.monitor == "mae"
    results = Run.create(tree, system).execute()
    test = results["summary"]["test"]
    assert set(test) == {"a", "t", "v", "at", "av", "tv", "atv", "mean"}
    assert list(test["mean"]) == MOSI_METRICS
    for name in MOSI_METRICS:
        value = test["mean"][name]["mean"]
        assert np.isfinite(value) and (name in ("mae", "corr") or 0.0 <= value <= 1.0)


@pytest.mark.slow
def test_compare_shows_regression_metrics(system, fx, tmp_path, capsys):
    fx.mmsa(tmp_path / "mosi.pkl", per_split={"train": 24, "valid": 8, "test": 8})
    from mmtk.cli import main
    out = tmp_path / "cmp"
    code = main(["compare", str(RECIPES / "baseline-mosi.yaml"), str(RECIPES / "cmarr-mosi.yaml"),
                 "--set", f"data.root={tmp_path / 'mosi.pkl'}", "--set", "train.epochs=1",
                 "--set", f"output.dir={tmp_path / 'runs'}", "--out", str(out),
                 "--jobs", "2"])   # the two runs side by side: most of each is starting torch
    assert code == 0
    folder = next(out.glob("compare/*"))
    table = (folder / "comparison.md").read_text()
    assert table.startswith("Cells: MAE (MAE)")   # by default the recipes' train.monitor only
    csv_head = (folder / "comparison.csv").read_text().splitlines()[0]
    assert csv_head.startswith("method,condition,mae_mean,mae_std,n,mae_ci_low,")
    row = next(line for line in table.splitlines() if line.startswith("| baseline-mosi"))
    mae = float(row.split("|")[-2].split("/")[0].split("[")[0])  # the 'mean' column, raw (not x100)
    assert 0.0 < mae < 10.0
    # chosen metrics; the finished runs are reused, not trained again
    common = ["--set", f"data.root={tmp_path / 'mosi.pkl'}", "--set", "train.epochs=1",
              "--set", f"output.dir={tmp_path / 'runs'}", "--out", str(tmp_path / "cmp2")]
    assert main(["compare", str(RECIPES / "baseline-mosi.yaml"), str(RECIPES / "cmarr-mosi.yaml"),
                 *common, "--metrics", "acc2", "acc7", "mae"]) == 0
    assert len(list((tmp_path / "runs" / "baseline-mosi").iterdir())) == 1
    table = next((tmp_path / "cmp2").glob("compare/*/comparison.md")).read_text()
    assert table.startswith("Cells: ACC2 / ACC7 / MAE (ACC2 in %, ACC7 in %, MAE)")
    row = next(line for line in table.splitlines() if line.startswith("| baseline-mosi"))
    acc2 = float(row.split("|")[-2].split("/")[0].split("[")[0])
    assert 0.0 <= acc2 <= 100.0
    capsys.readouterr()
    assert main(["compare", str(RECIPES / "baseline-mosi.yaml"), str(RECIPES / "cmarr-mosi.yaml"),
                 *common, "--metrics", "war"]) == 2
    assert "--metrics war: not among the recipes' eval.metrics" in capsys.readouterr().err
