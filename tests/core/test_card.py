"""Every run carries a protocol card built from what the engine recorded; `mmtk audit` finds
test-set reads during training, per-condition models and altered cards."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from conftest import RECIPES, control_data, fails_with
from mmtk.cli import main
from mmtk.protocols import EvalCondition, EvalPlan

BASE = RECIPES / "baseline.yaml"
# 500 test samples (not 10,000): the cards record the protocol, no score is asserted
TINY = ["--set", "train.epochs=2", "--set", control_data(200), "--set", "data.n_test=500",
        "--set", "train.patience=null"]


def _run(tmp_path, *extra) -> Path:
    out = tmp_path / "runs"
    assert main(["run", str(BASE), "--quiet", *TINY, "--set", f"output.dir={out}", *extra]) == 0
    return next((out / "baseline").iterdir())


@pytest.mark.slow
def test_card_records_selection_and_test_reads(tmp_path, capsys):
    run = _run(tmp_path, "--seeds", "0", "1")
    card = yaml.safe_load((run / "card.yaml").read_text())
    assert card["trials"] == 2 and card["seeds"] == [0, 1]
    assert card["test split"]["read while training"] == {"seed0": 0, "seed1": 0}
    assert card["test split"]["read at the end"] == {"seed0": 1, "seed1": 1}
    history = json.loads((run / "trials/seed1/history-main.json").read_text())
    best = max(history, key=lambda r: r["val/uar"])["epoch"]
    assert card["selection"]["selected epoch"]["seed1"] == {"main": best}
    assert main(["audit", str(run)]) == 0
    assert "OK" in capsys.readouterr().out


@pytest.mark.slow
def test_audit_catches_a_test_read_during_training(tmp_path, capsys, monkeypatch):
    """The card's facts are the engine's: a loop that peeks at test is caught."""
    from mmtk import stage_loop

    original = stage_loop.StageLoop.epoch

    def peeking_epoch(self, epoch):
        test = self.splits.test
        full = torch.ones(len(test), len(test.modalities), dtype=torch.bool)
        self.evaluator.evaluate(self.p.model, test, EvalPlan([EvalCondition("atv", full)], []))
        return original(self, epoch)

    monkeypatch.setattr(stage_loop.StageLoop, "epoch", peeking_epoch)
    run = _run(tmp_path)
    monkeypatch.undo()
    capsys.readouterr()
    assert main(["audit", str(run)]) == 1
    assert "test split was read 2 time(s) while training" in capsys.readouterr().out


@pytest.mark.slow
def test_audit_flags_per_condition_models_and_altered_cards(tmp_path, capsys):
    fixed = "{type: fixed, condition: at}"
    run = _run(tmp_path, "--set", f"missing.train={fixed}", "--set", f"missing.eval={fixed}")
    capsys.readouterr()
    assert main(["audit", str(run), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert any("one model per test condition" in v for v in report["runs"][str(run)])
    card = yaml.safe_load((run / "card.yaml").read_text())
    card["selection"]["split"] = "test"
    card["trials"] = 3
    (run / "card.yaml").write_text(yaml.safe_dump(card))
    assert main(["audit", str(run)]) == 1
    out = capsys.readouterr().out
    assert "selected on 'test'" in out and "records 3 trial(s) but 1 finished" in out


def test_audit_bad_input(tmp_path, capsys):
    fails_with(capsys, ["audit", str(tmp_path)], "no card.yaml")
    (tmp_path / "card.yaml").write_text("a: [unclosed\n")
    fails_with(capsys, ["audit", str(tmp_path)], "card.yaml", "damaged")
