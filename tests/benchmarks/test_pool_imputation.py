"""benchmarks/pool_imputation.py: the ridge imputer (closed form, λ by GCV), the imputed test
inputs, and a tiny run evaluated again with imputed, oracle and zero-filled modalities."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mmtk.data import TensorData

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "pool_imputation.py"


@pytest.fixture(scope="module")
def pool():
    spec = importlib.util.spec_from_file_location("pool_imputation", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["pool_imputation"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("pool_imputation", None)


def _split(n=40):
    g = torch.Generator().manual_seed(0)
    inputs = {"a": torch.randn(n, 3, generator=g), "b": torch.randn(n, 2, generator=g)}
    inputs["b"] = inputs["b"] + 2 * inputs["a"][:, :2]   # b is predictable from a
    return TensorData(inputs, torch.arange(n) % 2, [f"s{i}" for i in range(n)])


def test_imputed_inputs_fill_only_hidden_modalities_with_the_ridge_impute_component(pool):
    data = _split()
    imputer = pool.fitted_imputer(data, {"a": 3, "b": 2}, unlabeled=True)
    assert imputer.patterns == [("a",), ("b",)] and int(imputer.fitted_on) == len(data)
    shown = np.zeros((len(data), 2), dtype=bool)
    shown[:20, 0] = True          # first half: only a shown
    shown[20:, :] = True          # second half: complete
    out = pool.imputed_inputs(data, shown, imputer)
    assert bool(out.present.all())
    assert torch.equal(out.inputs["a"], data.inputs["a"])
    assert torch.equal(out.inputs["b"][20:], data.inputs["b"][20:])
    a = data.inputs["a"][:20]
    guess = (a - imputer.x_mean_0) @ imputer.coef_0 + imputer.y_mean_0   # the regression a -> b
    assert np.allclose(out.inputs["b"][:20].numpy(), guess.numpy(), atol=1e-6)
    assert not torch.equal(out.inputs["b"][:20], data.inputs["b"][:20])
    oracle = pool.imputed_inputs(data, shown, None)
    assert torch.equal(oracle.inputs["b"], data.inputs["b"]) and bool(oracle.present.all())
    assert torch.equal(data.inputs["b"], _split().inputs["b"])   # the split itself is untouched


@pytest.mark.slow
def test_a_run_is_reproduced_then_scored_with_imputed_modalities(pool, system, tmp_path, capsys):
    from mmtk.errors import MmtkError
    from mmtk.predictions import load_predictions
    from mmtk.recipe import resolve
    from mmtk.run import Run

    tree = resolve("modality-dropout", system, [
        "data={type: latent_views, labels: 40, unlabeled: 200, complete_fraction: 0.5, shared_signal: 1.0, "
        "n_test: 300}", "seed=[0, 1]", "train.epochs=2", "model.latent_dim=16", f"output.dir={tmp_path}"])
    run = Run.create(tree, system, jobs=1, threads=1)
    run.execute()
    assert pool.main([str(run.directory), "--out", str(tmp_path / "out")]) == 0
    report = (tmp_path / "out" / "pool-imputation.md").read_text()
    keys, table, conditions = pool.run_scores(run.directory, system)
    assert keys == ["seed0", "seed1"] and conditions[-1] == "mean" and "atv" in conditions
    saved = {k: run.directory / "trials" / k / "metrics.json" for k in keys}
    import json
    for i, k in enumerate(keys):   # the zero-filled row is the run's own test score
        own = json.loads(saved[k].read_text())["test"]
        for c in conditions:
            assert table["as run (zero-filled)"][c][i] == pytest.approx(own[c]["uar"], abs=1e-12)
    for c in conditions[:-1]:      # the oracle shows every modality: the full condition's score
        assert table["oracle"][c] == table["as run (zero-filled)"]["atv"]
    assert table["ridge (pool)"]["atv"] == table["as run (zero-filled)"]["atv"]
    assert table["ridge (pool)"]["a"] != table["as run (zero-filled)"]["a"]
    assert "| ridge (pool) | mean |" in report and "Holm" in report
    capsys.readouterr()
    assert pool.main([str(run.directory), "--against", str(run.directory)]) == 0
    against_itself = capsys.readouterr().out
    assert "| as run (zero-filled) | mean | +0.00 | [+0.00, +0.00] |" in against_itself
    assert "| modality-dropout (its own run) |" in against_itself
    ids = {k: load_predictions(run.directory / "trials" / k / "predictions.npz").splits["test"].ids for k in keys}
    with pytest.raises(MmtkError, match="has no trial seed7; it needs the same seeds"):
        pool.other_run_scores(run.directory, ["seed0", "seed7"], {**ids, "seed7": []}, conditions)
    with pytest.raises(MmtkError, match="trial seed1 was tested on other samples"):
        pool.other_run_scores(run.directory, keys, {**ids, "seed1": ids["seed1"][::-1]}, conditions)
