"""mmtk.trial_model: a finished trial's fold and seed, and its model and data rebuilt as in
training (the robustness curves and the pool-imputation benchmark evaluate through it)."""
from __future__ import annotations

import json

import pytest

from mmtk.errors import MmtkError
from mmtk.trial_model import trial_fold_seed


def test_a_trials_seed_comes_from_its_data_file_and_old_runs_from_the_folder_name(tmp_path):
    renamed = tmp_path / "renamed-trial"
    renamed.mkdir()
    (renamed / "data.json").write_text(json.dumps({"fold": 3, "seed": 7}))
    assert trial_fold_seed(renamed) == (3, 7)
    old = tmp_path / "fold1-seed4"
    old.mkdir()
    (old / "data.json").write_text(json.dumps({"fold": 1}))
    assert trial_fold_seed(old) == (1, 4)
    odd = tmp_path / "other"
    odd.mkdir()
    (odd / "data.json").write_text(json.dumps({"fold": None}))
    with pytest.raises(MmtkError, match="not an mmtk trial folder"):
        trial_fold_seed(odd)


@pytest.mark.slow
def test_a_rebuilt_trial_reproduces_its_kept_predictions_and_needs_its_model(system, tmp_path):
    import numpy as np
    import torch

    from mmtk.predictions import load_predictions
    from mmtk.recipe import resolve
    from mmtk.run import Run
    from mmtk.trial_model import rebuild_trial

    tree = resolve("modality-dropout", system, [
        "data={type: latent_views, labels: 40, unlabeled: 0, n_test: 200}", "train.epochs=1",
        "model.latent_dim=16", f"output.dir={tmp_path}"])
    run = Run.create(tree, system, jobs=1, threads=1)
    run.execute()
    trial_dir = run.directory / "trials" / "seed0"
    kept = load_predictions(trial_dir / "predictions.npz").splits["test"]
    trial = rebuild_trial(resolve(run.directory / "recipe.yaml", system), system.registry, trial_dir)
    assert list(trial.splits.test.ids) == kept.ids
    for c, name in enumerate(kept.conditions):
        pred = trial.evaluator.predict(trial.model, trial.splits.test, torch.as_tensor(kept.mask[c]))
        assert np.array_equal(pred.numpy(), kept.pred[c]), name
    (trial_dir / "model.pt").unlink()
    with pytest.raises(MmtkError, match="has no final model"):
        rebuild_trial(resolve(run.directory / "recipe.yaml", system), system.registry, trial_dir)
