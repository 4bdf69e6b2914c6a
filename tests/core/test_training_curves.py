"""`mmtk eval RUN_DIR --plot`: training curves (losses, validation metric, selected epoch)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import RECIPES, hide_matplotlib, tiny_overrides
from mmtk.cli import main
from mmtk.errors import MmtkError
from mmtk.training_curves import plot_training_curves, read_curves, samples_per_second

mpimg = pytest.importorskip("matplotlib.image")


def assert_real_picture(path: Path, min_width: int = 400) -> np.ndarray:
    """The PNG opens, has a plausible size, is not blank and has several colours."""
    pixels = mpimg.imread(path)
    assert pixels.ndim == 3 and pixels.shape[1] >= min_width and pixels.shape[0] >= 200
    assert pixels.var() > 0
    colours = np.unique((pixels[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 10
    return pixels


def write_history(trial: Path, stage: str, val: list[float], selected: int, aux: bool = False) -> None:
    trial.mkdir(parents=True, exist_ok=True)
    records = [{"epoch": i + 1, "loss/task": 1.4 - 0.1 * i, **({"loss/reconstructor/mse": 0.01 / (i + 1)}
                                                               if aux else {}), "val/uar": v}
               for i, v in enumerate(val)]
    (trial / f"history-{stage}.json").write_text(json.dumps(records))
    evaluation = trial / "evaluation.json"
    chosen = json.loads(evaluation.read_text())["selected"] if evaluation.is_file() else {}
    chosen[stage] = {"epoch": selected, "monitor": "uar", "split": "val", "value": max(val)}
    evaluation.write_text(json.dumps({"selected": chosen}))


def test_read_curves_gives_each_stage_its_trials_and_selected_epochs(tmp_path):
    run = tmp_path / "mmin" / "20260101-000000"
    write_history(run / "trials" / "seed0", "pretrain", [0.3, 0.4, 0.35], 2)
    write_history(run / "trials" / "seed0", "mmin", [0.4, 0.5, 0.6, 0.55], 3, aux=True)
    write_history(run / "trials" / "seed1", "pretrain", [0.3, 0.45], 2)
    write_history(run / "trials" / "seed1", "mmin", [0.42, 0.52], 2, aux=True)
    stages = read_curves(run)
    assert [s.name for s in stages] == ["pretrain", "mmin"]
    assert stages[1].selected == {"seed0": 3, "seed1": 2}
    assert stages[1].losses() == ["loss/task", "loss/reconstructor/mse"]
    assert stages[0].monitors() == ["val/uar"]
    path = plot_training_curves(run, tmp_path / "curves.png")
    pixels = assert_real_picture(path)
    assert pixels.shape[0] > pixels.shape[1] * 0.4    # two rows of panels, one per stage


def test_samples_per_second_pools_every_trials_epochs(tmp_path):
    """The benchmarks' speed figure: samples shown over seconds in the train loop."""
    run = tmp_path / "run"
    for trial, (samples, seconds) in {"seed0": (100, 2.0), "seed1": (300, 2.0)}.items():
        (run / "trials" / trial).mkdir(parents=True)
        records = [{"epoch": 1, "train_samples": samples, "train_seconds": seconds, "val/uar": 0.5}] * 2
        (run / "trials" / trial / "history-main.json").write_text(json.dumps(records))
    (stage,) = read_curves(run)
    assert len(stage.records()) == 4 and samples_per_second(stage.records()) == 800 / 8.0
    assert samples_per_second([]) == 0.0


def test_no_history_and_no_matplotlib_are_clear_errors(tmp_path, monkeypatch):
    run = tmp_path / "m" / "20260101-000000"
    (run / "trials" / "seed0").mkdir(parents=True)
    with pytest.raises(MmtkError, match="no training history"):
        plot_training_curves(run, tmp_path / "x.png")
    write_history(run / "trials" / "seed0", "main", [0.3, 0.4], 2)
    hide_matplotlib(monkeypatch)
    with pytest.raises(MmtkError, match=r"pip install 'mmtk\[plot\]'"):
        plot_training_curves(run, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


@pytest.mark.slow
def test_eval_plot_draws_the_curves_of_a_real_run(tmp_path, capsys):
    runs = tmp_path / "runs"
    tiny = [a for o in tiny_overrides(4) + ["data.n_test=500"] for a in ("--set", o)]   # curves, not scores
    assert main(["run", str(RECIPES / "baseline.yaml"), *tiny, "--set", f"output.dir={runs}", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["eval", "baseline@latest", "--runs-dir", str(runs), "--plot"]) == 0
    (run_dir,) = list((runs / "baseline").iterdir())
    assert f"training curves: {run_dir / 'training-curves.png'}" in capsys.readouterr().out
    assert_real_picture(run_dir / "training-curves.png")
