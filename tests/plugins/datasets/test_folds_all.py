"""`mmtk run --folds all` runs every fold of an MMIN-layout dataset and reports over folds."""
import json

import pytest

from mmtk.cli import main


@pytest.mark.slow
def test_folds_all_end_to_end(fx, tmp_path, capsys, monkeypatch):
    fx.mmin(tmp_path / "data", folds=3)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: folds\ndata:\n  type: mmin_layout\n  root: ${env:MMTK_DATA}\n"
        "missing: {train: {type: six_conditions}, eval: {type: six_conditions}}\n"
        "model:\n  latent_dim: 8\n  encoders: {audio: {type: lstm}, text: {type: textcnn, channels: 4}, "
        "visual: {type: lstm}}\n  fuser: {type: concat}\n  head: {type: mlp, hidden: [8]}\n"
        f"train: {{epochs: 1, batch_size: 8}}\noutput: {{dir: {tmp_path / 'runs'}}}\n")
    monkeypatch.setenv("MMTK_DATA", str(tmp_path / "data"))
    assert main(["run", str(recipe), "--folds", "all", "--json", "--quiet"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert list(res["trials"]) == ["fold1-seed0", "fold2-seed0", "fold3-seed0"]
    stat = res["summary"]["test"]["mean"]["uar"]
    vals = [t["test"]["mean"]["uar"] for t in res["trials"].values()]
    assert stat["n"] == 3 and stat["mean"] == pytest.approx(sum(vals) / 3)
    assert main(["run", str(recipe), "--folds", "2", "--json", "--quiet"]) == 0
    assert list(json.loads(capsys.readouterr().out)["trials"]) == ["fold2-seed0"]
