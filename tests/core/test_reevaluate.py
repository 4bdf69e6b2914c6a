"""Every run keeps its per-sample predictions; `mmtk eval` recomputes every metric from them,
adds metrics the run did not compute, and shows confusion matrices."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import RECIPES, control_data, fails_with
from mmtk.cli import main
from mmtk.predictions import SplitPredictions, TrialPredictions, load_predictions, save_predictions


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("eval") / "runs"
    code = main(["run", str(RECIPES / "baseline.yaml"), "--quiet", "--seeds", "0", "1",
                 "--set", "train.epochs=1", "--set", control_data(300),
                 "--set", "eval.metrics=[war, uar]", "--set", f"output.dir={out}"])
    assert code == 0
    return next((out / "baseline").iterdir())


def _eval_json(capsys, run: Path, *extra: str) -> dict:
    assert main(["eval", str(run), "--json", *extra]) == 0
    captured = capsys.readouterr()
    return json.loads(captured.out) | {"_stderr": captured.err}


@pytest.mark.slow
def test_predictions_file_holds_every_condition_and_sample(finished_run):
    saved = json.loads((finished_run / "trials/seed0/metrics.json").read_text())
    with np.load(finished_run / "trials/seed0/predictions.npz", allow_pickle=False) as z:
        files = set(z.files)
        n = len(z["test.ids"])
        assert z["test.pred"].shape == (7, n) and z["test.prob"].shape == (7, n, int(z["num_classes"]))
        assert z["test.mask"].shape == (7, n, 3) and list(z["test.conditions"]) == list(saved["test"])[:-1]
        np.testing.assert_allclose(z["test.prob"].sum(-1), 1.0, rtol=1e-5)
        assert (z["test.prob"].argmax(-1) == z["test.pred"]).all()
    assert {"val.ids", "val.labels", "test.labels", "modalities", "target"} <= files


@pytest.mark.slow
def test_eval_recomputes_from_the_predictions_and_adds_metrics(finished_run, capsys):
    saved = json.loads((finished_run / "metrics.json").read_text())
    again = _eval_json(capsys, finished_run)
    assert again["summary"] == saved["summary"] and not again["mismatches"]
    more = _eval_json(capsys, finished_run, "--metrics", "f1_macro")
    assert more["summary"]["test"]["mean"]["f1_macro"]["n"] == 2
    assert more["summary"]["test"]["mean"]["uar"] == saved["summary"]["test"]["mean"]["uar"]
    # recomputed, not read back: change one trial's predictions and the table follows
    path = finished_run / "trials/seed1/predictions.npz"
    original = path.read_bytes()
    try:
        preds = load_predictions(path)
        preds.splits["test"].pred[:] = 0          # always predict the first class
        save_predictions(path, preds)
        changed = _eval_json(capsys, finished_run)
        assert changed["trials"]["seed1"]["test"]["a"]["uar"] == pytest.approx(1 / preds.num_classes)
        assert changed["mismatches"] and "recomputed" in changed["_stderr"]
    finally:
        path.write_bytes(original)


@pytest.mark.slow
def test_confusion_matrices_per_condition(finished_run, capsys):
    out = _eval_json(capsys, finished_run, "--confusion")["confusion"]
    n = len(load_predictions(finished_run / "trials/seed0/predictions.npz").splits["test"].ids)
    assert set(out["matrices"]) == {"a", "t", "v", "at", "av", "tv", "atv"}
    for cm in out["matrices"].values():
        assert np.array(cm).sum() == 2 * n              # summed over the two trials
    pytest.importorskip("matplotlib")
    assert Path(out["image"]).is_file()
    assert main(["eval", str(finished_run), "--confusion"]) == 0
    assert "rows: true class" in capsys.readouterr().out


@pytest.mark.slow
def test_eval_bad_input(finished_run, capsys, tmp_path):
    fails_with(capsys, ["eval", str(finished_run), "--metrics", "mae"], "mae", "regression")
    fails_with(capsys, ["eval", str(finished_run), "--metrics", "nosuchmetric"], "nosuchmetric")
    fails_with(capsys, ["eval", str(tmp_path)], "is not an mmtk run folder")
    broken = tmp_path / "run"
    (broken / "trials/seed0").mkdir(parents=True)
    (broken / "recipe.yaml").write_text((finished_run / "recipe.yaml").read_text())
    (broken / "metrics.json").write_text((finished_run / "metrics.json").read_text())   # a finished run
    (broken / "trials/seed0/predictions.npz").write_bytes(b"PK\x03\x04 not really a zip")
    fails_with(capsys, ["eval", str(broken)], "predictions.npz", "damaged")


def test_regression_predictions_round_trip(tmp_path):
    split = SplitPredictions(ids=["a", "b"], labels=np.array([0, 1]), scores=np.array([0.5, -1.0], np.float32),
                             conditions=["atv"], mean_over=[], mask=np.ones((1, 2, 3), bool),
                             pred=np.array([[0.4, -0.8]], np.float32), prob=None)
    save_predictions(tmp_path / "p.npz", TrialPredictions(["audio", "text", "visual"], "scores", 2, [],
                                                         {"test": split}))
    back = load_predictions(tmp_path / "p.npz")
    assert back.target == "scores" and back.splits["test"].prob is None
    assert back.splits["test"].ids == ["a", "b"]
    np.testing.assert_array_equal(back.splits["test"].scores, split.scores)
