"""Classification vs regression: the task loss decides what the head predicts and which
metrics fit; mismatches are clear errors before training."""
from __future__ import annotations

import math

import pytest
import torch

from conftest import RECIPES, prepare, tiny_overrides
from mmtk.builder import Builder
from mmtk.data import DataSplits, TensorData
from mmtk.errors import DataError, MmtkError
from mmtk.evaluate import Evaluator
from mmtk.metrics import Metric, as_metric, mean_absolute_error, pearson
from mmtk.protocols import EvalCondition, EvalPlan
from mmtk.recipe import Component, check
from mmtk.run import Run
from mmtk.task import check_metrics, check_output, check_scores, loss_target
from mmtk.trainer import Trainer

MODS = ("audio", "text", "visual")
DIMS = {"audio": 5, "text": 4, "visual": 3}
REGRESSION = ["losses.task={type: l1}", "eval.metrics=[mae, corr]", "train.monitor=mae"]


def _data(n: int = 12, scores: bool = True, seed: int = 0) -> TensorData:
    g = torch.Generator().manual_seed(seed)
    return TensorData({m: torch.randn(n, d, generator=g) for m, d in DIMS.items()},
                      torch.arange(n) % 3, [f"s{i}" for i in range(n)],
                      scores=torch.linspace(-3, 3, n) if scores else None)


def test_scores_travel_with_rows():
    data = _data()
    sub = data.subset(torch.tensor([5, 1]))
    assert sub.scores.tolist() == pytest.approx([data.scores[5].item(), data.scores[1].item()])
    assert data.batch(torch.tensor([2, 3])).scores.tolist() == pytest.approx(data.scores[2:4].tolist())
    assert data.batch(torch.tensor([0])).to("cpu").scores is not None
    with pytest.raises(DataError, match="one score per sample"):
        TensorData(data.inputs, data.labels, data.ids, scores=torch.zeros(3))


def test_loss_target_and_head_width(system):
    builder = Builder(system.registry)
    assert loss_target(builder.component("loss", "cross_entropy")) == "labels"
    assert loss_target(builder.component("loss", "l1")) == "scores"
    model = {"encoders": {m: {"type": "mlp"} for m in MODS}, "fuser": {"type": "concat"},
             "head": {"type": "mlp"}}
    pipe = builder.model(model, DIMS, num_classes=3, out_dim=1).eval()
    assert pipe(_data().batch(torch.arange(4))).logits.shape == (4, 1)
    with pytest.raises(MmtkError, match="gives 3 output"):
        check_output(torch.zeros(2, 3), 1, "scores")


def test_metric_kinds_must_match_the_task():
    war = as_metric(lambda cm: 0.0)
    mae = Metric(mean_absolute_error, reads="regression", higher_is_better=False, percent=False)
    check_metrics("scores", {"mae": mae}, "l1")
    check_metrics("labels", {"war": war}, "cross_entropy")
    with pytest.raises(MmtkError, match=r"\['war'\].*regression metrics"):
        check_metrics("scores", {"mae": mae, "war": war}, "l1")
    with pytest.raises(MmtkError, match=r"\['mae'\].*classification metrics"):
        check_metrics("labels", {"mae": mae}, "cross_entropy")


def test_missing_or_bad_scores_are_named():
    data = _data()
    with pytest.raises(DataError, match="gives no scores for its train split"):
        check_scores(DataSplits(train=_data(scores=False), test=data), "arrays", "l1")
    bad = _data()
    bad.scores[4] = float("inf")
    with pytest.raises(DataError, match="sample 's4' is infinite"):
        check_scores(DataSplits(train=data, test=bad), "arrays", "l1")
    unlabelled = _data()
    unlabelled.scores[4], unlabelled.labels[4] = float("nan"), -1   # NaN: no target, allowed
    check_scores(DataSplits(train=unlabelled, test=data), "arrays", "l1")


def test_evaluator_scores_regression_predictions(system):
    builder = Builder(system.registry)
    model = {"encoders": {m: {"type": "mlp"} for m in MODS}, "fuser": {"type": "concat"},
             "head": {"type": "mlp"}}
    pipe = builder.model(model, DIMS, num_classes=3, out_dim=1)
    data = _data(20)
    metrics = {"mae": as_metric(builder.component("metric", "mae")),
               "corr": as_metric(builder.component("metric", "corr"))}
    evaluator = Evaluator(metrics, 3, batch_size=7, amp_dtype=None, target="scores")
    full = torch.ones(20, 3, dtype=torch.bool)
    pred = evaluator.predict(pipe, data, full)
    assert pred.dtype == torch.float32 and pred.shape == (20,)
    with torch.no_grad():  # the same model, called directly in one batch
        direct = pipe.eval()(data.batch(torch.arange(20))).logits[:, 0]
    torch.testing.assert_close(pred, direct)
    res = evaluator.evaluate(pipe, data, EvalPlan([EvalCondition("atv", full)], []))
    expected_mae = (direct - data.scores).abs().mean().item()
    assert res["atv"]["mae"] == pytest.approx(expected_mae, rel=1e-5)
    assert res["atv"]["corr"] == pytest.approx(pearson(direct, data.scores), rel=1e-5)


def test_regression_metrics_by_hand():
    pred, true = torch.tensor([1.0, 2.0, 4.0]), torch.tensor([1.5, 2.0, 3.0])
    assert mean_absolute_error(pred, true) == pytest.approx(0.5)
    pm, tm = pred.mean(), true.mean()
    num = float(((pred - pm) * (true - tm)).sum())
    den = math.sqrt(float(((pred - pm) ** 2).sum()) * float(((true - tm) ** 2).sum()))
    assert pearson(pred, true) == pytest.approx(num / den)
    assert pearson(torch.ones(3), true) == 0.0          # a constant prediction: no correlation


def test_recipe_validation_names_task_mismatches(system):
    def problems_with(overrides):
        return check(RECIPES / "baseline.yaml", system, overrides).problems

    problems = problems_with(["losses.task={type: l1}"])
    paths = {p.path for p in problems}
    assert "eval.metrics[0]" in paths and "train.monitor" not in paths
    assert any("set eval.metrics" in p.message and "'war' reads class predictions" in p.message
               for p in problems)
    problems = problems_with(["eval.metrics=[mae]", "losses.task={type: l1}"])
    assert [p.path for p in problems] == ["train.monitor"]
    problems = problems_with(["eval.metrics=[war, mae]"])
    assert [p.path for p in problems] == ["eval.metrics[1]", "train.monitor"]
    assert problems_with(REGRESSION) == []


def test_regression_on_data_without_scores_is_a_clear_error(system, tmp_path):
    tree = prepare(system, RECIPES / "baseline.yaml", tmp_path, tiny_overrides(1) + REGRESSION)
    with pytest.raises(DataError, match="dataset 'synthetic' gives no scores"):
        Run.create(tree, system).execute()


def test_trainer_refuses_mismatched_metrics_before_loading_data(system, tmp_path):
    tree = prepare(system, RECIPES / "baseline.yaml", tmp_path, tiny_overrides(1))
    tree.stages[0].losses.task = Component("l1")   # bypasses validation on purpose
    with pytest.raises(MmtkError, match="cannot score this model"):
        Trainer(tree, system.registry)
