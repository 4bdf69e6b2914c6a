"""The training loop: evaluation invariance, validation-only selection, resume, run folders."""
from __future__ import annotations

import json
import os

import pytest
import torch

from conftest import RECIPES, prepare, tiny_overrides
from mmtk.builder import Builder
from mmtk.data_loading import load_data
from mmtk.errors import MmtkError, NonFiniteLossError
from mmtk.evaluate import Evaluator
from mmtk.run import Run
from mmtk.rundir import load_torch

SIX = ["missing.train={type: six_conditions}", "missing.eval={type: six_conditions}"]
# 500 test samples, not tiny_overrides' 10,000: for tests that compare runs exactly or check
# what the machinery does, never how well a model scores
SMALL_TEST = "data.n_test=500"


def test_eval_predictions_ignore_hidden_values_of_absent_modalities(system, tmp_path):
    """Changing what an absent modality would have contained changes nothing at test time.
    No training is needed: the masking is the evaluator's, whatever the weights."""
    tree = prepare(system, RECIPES / "baseline.yaml", tmp_path, tiny_overrides(2) + [SMALL_TEST])
    builder = Builder(system.registry)
    splits = load_data(builder, tree.data, None, 0)
    model = builder.model(tree.last_stage.model, splits.in_dims, splits.num_classes, seed=0)
    evaluator = Evaluator({}, splits.num_classes, 64, None)
    test = splits.test
    plan = builder.component("missing", tree.last_stage.missing.eval).eval_conditions(splits.modalities, len(test))
    changed = 0
    for cond in plan.conditions:
        before = evaluator.predict(model, test, cond.mask)
        tampered = {m: x.clone() for m, x in test.inputs.items()}
        for i, m in enumerate(splits.modalities):
            absent = ~cond.mask[:, i]
            tampered[m][absent] = torch.randn_like(tampered[m][absent]) * 50 + 7
        other = type(test)(tampered, test.labels, test.ids, test.present, test.lengths)
        after = evaluator.predict(model, other, cond.mask)
        assert torch.equal(before, after), f"condition {cond.name}: predictions changed"
        # the check has teeth: without masking the tampered values do reach the model
        changed += not torch.equal(before, evaluator.predict(model, other, torch.ones_like(cond.mask)))
    assert changed, "tampering never changed an unmasked prediction: the check proves nothing"


@pytest.mark.slow
def test_selection_never_looks_at_test(system, tmp_path, monkeypatch):
    """During training only validation is evaluated; test is evaluated once at the end."""
    seen = []
    original = Evaluator.evaluate

    def spy(self, model, data, plan, *rest):
        seen.append(len(data))
        return original(self, model, data, plan, *rest)

    monkeypatch.setattr(Evaluator, "evaluate", spy)
    tree = prepare(system, RECIPES / "baseline.yaml", tmp_path, tiny_overrides(3) + ["train.patience=null", SMALL_TEST])
    Run.create(tree, system).execute()
    builder = Builder(system.registry)
    splits = load_data(builder, tree.data, None, 0)
    n_val, n_test = len(splits.val), len(splits.test)
    assert n_val != n_test
    assert seen[:3] == [n_val] * 3            # one validation pass per epoch
    assert seen[3:] == [n_val, n_test]        # final report: val then test, once


def test_normalisation_fitted_on_train_only(system, tmp_path):
    tree = prepare(system, RECIPES / "baseline.yaml", tmp_path, tiny_overrides(1))
    builder = Builder(system.registry)
    splits = load_data(builder, tree.data, None, 0)
    for m in splits.modalities:
        mean = splits.train.inputs[m].mean(0)
        assert mean.abs().max() < 1e-4                       # train is centred exactly
        assert splits.test.inputs[m].mean(0).abs().max() > 1e-3  # test is not: stats are train's


@pytest.mark.slow
def test_run_directory_contents_and_no_overwrite(system, tmp_path):
    tree = prepare(system, RECIPES / "baseline.yaml", tmp_path, tiny_overrides(1) + [SMALL_TEST])
    first = Run.create(tree, system)
    second = Run.create(tree, system)
    assert first.directory != second.directory
    res = first.execute()
    d = first.directory
    for name in ("recipe.yaml", "environment.json", "metrics.json", "metrics.csv",
                 "trials/seed0/model.pt", "trials/seed0/metrics.json"):
        assert (d / name).is_file(), name
    state = torch.load(d / "trials/seed0/model.pt", weights_only=True)
    assert any(k.startswith("encoders.audio") for k in state)
    metrics = json.loads((d / "metrics.json").read_text())
    test = metrics["trials"]["seed0"]["test"]
    assert set(test) == {"a", "t", "v", "at", "av", "tv", "atv", "mean"}
    assert set(test["at"]) == {"war", "uar", "f1_macro", "f1_weighted"}
    six = ["a", "t", "v", "at", "av", "tv"]
    assert test["mean"]["uar"] == pytest.approx(sum(test[c]["uar"] for c in six) / 6)
    env = json.loads((d / "environment.json").read_text())
    assert env["plugins"]["basic"]["status"] == "ok" and env["torch"] == torch.__version__
    # the CPU is recorded as far as it can change a result: the kernels torch dispatches to
    assert env["cpu"]["capability"] == torch.backends.cpu.get_cpu_capability()
    assert env["cpu"]["logical_cores"] == os.cpu_count() and isinstance(env["cpu"]["vector_flags"], list)
    assert res["summary"]["test"]["atv"]["war"]["n"] == 1


class Interrupt(Exception):
    pass


@pytest.mark.slow
def test_killed_then_resumed_run_matches_uninterrupted(system, tmp_path):
    over = tiny_overrides(4) + ["train.patience=null", "train.checkpoint_seconds=0", SMALL_TEST]  # snapshot every epoch
    full = Run.create(prepare(system, RECIPES / "baseline.yaml", tmp_path / "a", over), system).execute()

    def kill_after_two_epochs(event, **info):
        if event == "epoch_end" and info["epoch"] == 2:
            raise Interrupt

    tree = prepare(system, RECIPES / "baseline.yaml", tmp_path / "b", over)
    run = Run.create(tree, system, progress=kill_after_two_epochs)
    with pytest.raises(Interrupt):
        run.execute()
    assert (run.directory / "trials/seed0/resume.pt").is_file()
    assert not (run.directory / "metrics.json").exists()
    resumed = Run.resume(run.directory, system).execute()
    assert resumed["trials"]["seed0"] == full["trials"]["seed0"]


@pytest.mark.slow
def test_two_seeds_give_mean_and_std(run_tiny):
    res = run_tiny(RECIPES / "baseline.yaml", ["seed=[0, 1]", SMALL_TEST], epochs=1)
    assert set(res["trials"]) == {"seed0", "seed1"}
    stat = res["summary"]["test"]["mean"]["uar"]
    vals = [res["trials"][k]["test"]["mean"]["uar"] for k in ("seed0", "seed1")]
    assert stat["n"] == 2 and stat["mean"] == pytest.approx(sum(vals) / 2)
    assert stat["std"] == pytest.approx(abs(vals[0] - vals[1]) / 2 ** 0.5)


@pytest.mark.slow
def test_non_finite_loss_names_stage_epoch_step(system, tmp_path):
    tree = prepare(system, RECIPES / "baseline.yaml", tmp_path, tiny_overrides(2) + ["train.optimizer.lr=1e30",
                                                                                   "train.grad_clip=null"])
    with pytest.raises(NonFiniteLossError, match=r"stage 'main', epoch \d+, step \d+.*task="):
        Run.create(tree, system).execute()


@pytest.mark.slow
def test_multistage_init_from_and_freeze(system, tmp_path):
    recipe = {
        "name": "two-stage", "data": {"type": "synthetic", "n_samples": 200},
        "model": {"latent_dim": 8, "encoders": {m: {"type": "mlp", "hidden": 16} for m in ("audio", "text", "visual")},
                  "fuser": {"type": "concat"}, "head": {"type": "mlp", "hidden": [8]}},
        "train": {"epochs": 2, "patience": None},
        "stages": [{"name": "teacher"},
                   {"name": "student", "init_from": "teacher", "freeze": ["encoders"],
                    "missing": {"train": {"type": "six_conditions"}, "eval": {"type": "six_conditions"}}}],
    }
    tree = prepare(system, recipe, tmp_path)
    run = Run.create(tree, system)
    run.execute()
    trial = run.directory / "trials/seed0"
    teacher, student = load_torch(trial / "stage-teacher.pt"), load_torch(trial / "stage-student.pt")
    enc = [k for k in teacher if k.startswith("encoders.")]
    head = [k for k in teacher if k.startswith("head.")]
    assert all(torch.equal(teacher[k], student[k]) for k in enc), "frozen encoders changed"
    assert any(not torch.equal(teacher[k], student[k]) for k in head), "unfrozen head did not train"


@pytest.mark.slow
def test_cpu_runs_are_deterministic(run_tiny):
    a = run_tiny(RECIPES / "baseline.yaml", [SMALL_TEST], epochs=2)
    b = run_tiny(RECIPES / "baseline.yaml", [SMALL_TEST], epochs=2)
    assert a["trials"] == b["trials"]


@pytest.mark.slow
def test_parallel_trials_match_sequential_and_report_failures(system, tmp_path):
    over = tiny_overrides(2) + ["seed=[0, 1]", SMALL_TEST]
    seq = Run.create(prepare(system, RECIPES / "baseline.yaml", tmp_path / "s", over), system).execute()
    run = Run.create(prepare(system, RECIPES / "baseline.yaml", tmp_path / "p", over), system, jobs=2)
    par = run.execute()
    assert par["trials"] == seq["trials"]
    plugin = tmp_path / "flaky.py"
    plugin.write_text(
        "import mmtk, torch\n"
        "from mmtk.protocols import MissingProtocol\n"
        "class FailOnSeedOne(MissingProtocol):\n"
        "    def __init__(self, seed: int):\n"
        "        self.seed = seed\n"
        "    def train_mask(self, present, generator, modalities):\n"
        "        if self.seed == 1:\n"
        "            raise RuntimeError('seed one is cursed')\n"
        "        return torch.ones_like(present)\n"
        "@mmtk.hookimpl\n"
        "def mmtk_register_components(register):\n"
        "    register('missing', 'fail_on_seed_one', FailOnSeedOne)\n")
    recipe = {"imports": [str(plugin)], "name": "flaky", "data": {"type": "synthetic", "n_samples": 240},
              "missing": {"train": {"type": "fail_on_seed_one"}, "eval": {"type": "six_conditions"}},
              "model": {"encoders": {m: {"type": "mlp"} for m in ("audio", "text", "visual")},
                        "fuser": {"type": "concat"}, "head": {"type": "mlp"}},
              "train": {"epochs": 1}, "seed": [0, 1]}
    run = Run.create(prepare(system, recipe, tmp_path / "f"), system, jobs=2)
    with pytest.raises(MmtkError, match="1 of 2 trial.*seed1: RuntimeError: seed one is cursed"):
        run.execute()
    saved = json.loads((run.directory / "metrics.json").read_text())
    assert list(saved["trials"]) == ["seed0"] and "seed1" in saved["failed"]
