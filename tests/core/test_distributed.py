"""DDP through torchrun (gloo, 2 CPU processes) against a single process."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import RECIPES, control_data, prepare, write_scored_arrays
from mmtk.builder import Builder
from mmtk.data_loading import load_data
from mmtk.evaluate import Evaluator
from mmtk.rundir import load_torch

TOLERANCE = 0.04  # |Δ test mean UAR| between 2 ranks and 1 process (dropout draws differ)


def _two_ranks_and_one(common: list[str], tmp_path: Path, port: int) -> tuple[Path, dict]:
    """``mmtk <common>`` under torchrun with 2 ranks (into tmp_path/ddp) and as one process
    (into tmp_path/one): the 2-rank run's folder and the single run's results."""
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    ddp = subprocess.run([torchrun, "--nproc_per_node=2", f"--master_port={port}", "-m", "mmtk", *common,
                          "--set", f"output.dir={tmp_path / 'ddp'}"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    single = subprocess.run([sys.executable, "-m", "mmtk", *common, "--set", f"output.dir={tmp_path / 'one'}"],
                            capture_output=True, text=True, env=env, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    runs = list((tmp_path / "ddp").glob("*/*"))
    assert len(runs) == 1, "only rank 0 may create a run directory"
    return runs[0], json.loads(single.stdout)


@pytest.mark.slow
def test_torchrun_two_processes_match_one(system, tmp_path):
    # 2,000 test samples, not 10,000: the two runs then differ by ~0.004 UAR, a tenth of TOLERANCE
    common = ["run", str(RECIPES / "baseline.yaml"), "--set", "train.epochs=3", "--set", "train.patience=null",
              "--set", control_data(800), "--set", "data.n_test=2000", "--quiet", "--json"]
    run, s = _two_ranks_and_one(common, tmp_path, 29533)
    d = json.loads((run / "metrics.json").read_text())
    assert json.loads((run / "environment.json").read_text())["world_size"] == 2
    a, b = d["summary"]["test"]["mean"]["uar"]["mean"], s["summary"]["test"]["mean"]["uar"]["mean"]
    assert abs(a - b) < TOLERANCE, (a, b)

    # gathered evaluation == one process evaluating the same (DDP-trained) model
    tree = prepare(system, RECIPES / "baseline.yaml", tmp_path, [control_data(800), "data.n_test=2000"])
    builder = Builder(system.registry)
    splits = load_data(builder, tree.data, None, 0)
    model = builder.model(tree.last_stage.model, splits.in_dims, splits.num_classes)
    model.load_state_dict(load_torch(run / "trials/seed0/model.pt"))
    metrics = builder.metrics(tree.eval.metrics)
    protocol = builder.component("missing", tree.last_stage.missing.eval)
    plan = protocol.eval_conditions(splits.modalities, len(splits.test))
    mine = Evaluator(metrics, splits.num_classes, 256, None).evaluate(model, splits.test, plan)
    assert mine == d["trials"]["seed0"]["test"]


@pytest.mark.slow
def test_torchrun_gathers_regression_scores(system, tmp_path):
    """Regression under DDP: float predictions are gathered so the metrics equal one process
    evaluating the same model."""
    write_scored_arrays(tmp_path / "data", n=240)
    recipe = tmp_path / "reg.yaml"
    recipe.write_text(
        "mmtk: 1\nname: reg\ndata: {type: arrays, root: data}\n"
        "missing: {train: {type: six_conditions}, eval: {type: six_conditions}}\n"
        "model:\n  latent_dim: 16\n  encoders: {audio: {type: mlp}, text: {type: mlp}, visual: {type: mlp}}\n"
        "  fuser: {type: concat}\n  head: {type: mlp, hidden: [16]}\n"
        "losses: {task: {type: l1}}\neval: {metrics: [mae, corr, acc2]}\n"
        "train: {epochs: 2, batch_size: 32, monitor: mae}\n")
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    ddp = subprocess.run([torchrun, "--nproc_per_node=2", "--master_port=29534", "-m", "mmtk", "run",
                          str(recipe), "--quiet", "--json", "--set", f"output.dir={tmp_path / 'ddp'}"],
                         capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"),
                         timeout=600)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    run = next((tmp_path / "ddp" / "reg").iterdir())
    saved = json.loads((run / "metrics.json").read_text())
    tree = prepare(system, recipe, tmp_path)
    builder = Builder(system.registry)
    splits = load_data(builder, tree.data, None, 0)
    model = builder.model(tree.last_stage.model, splits.in_dims, splits.num_classes, out_dim=1)
    model.load_state_dict(load_torch(run / "trials/seed0/model.pt"))
    metrics = builder.metrics(tree.eval.metrics)
    protocol = builder.component("missing", tree.last_stage.missing.eval)
    plan = protocol.eval_conditions(splits.modalities, len(splits.test))
    mine = Evaluator(metrics, splits.num_classes, 256, None, target="scores").evaluate(model, splits.test, plan)
    assert mine == saved["trials"]["seed0"]["test"]


@pytest.mark.slow
def test_torchrun_with_unlabelled_and_incomplete_training_samples(tmp_path):
    """DDP on a label budget with an unlabelled pool and naturally incomplete samples: both
    ranks train (the label-free reconstruction loss on every sample, the task loss on the
    labelled ones), the history counts the labelled samples, and the result is close to one
    process training the same recipe."""
    recipe = RECIPES / "ae-impute.yaml"   # the default benchmark: few labels, a pool, incomplete samples
    common = ["run", str(recipe), "--quiet", "--json", "--set", "train.epochs=3", "--set", "train.patience=null",
              "--set", "data.labels=120", "--set", "data.unlabeled=480", "--set", "data.n_test=600"]
    run, single = _two_ranks_and_one(common, tmp_path, 29535)
    assert json.loads((run / "environment.json").read_text())["world_size"] == 2
    history = json.loads(next(run.glob("trials/*/history*.json")).read_text())
    assert all(e["train_labeled"] < e["train_samples"] for e in history)
    assert all(e["loss/reconstructor/recon"] > 0 for e in history)
    d = json.loads((run / "metrics.json").read_text())
    a = d["summary"]["test"]["mean"]["uar"]["mean"]
    b = single["summary"]["test"]["mean"]["uar"]["mean"]
    assert abs(a - b) < 2 * TOLERANCE, (a, b)   # 120 labels: noisier than the full-label run
