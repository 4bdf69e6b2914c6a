"""Ridge imputation of input features: its closed-form fit (on the pool or the labelled samples),
what it fills in, frame sequences, and how the pipeline runs it before the encoders."""
from __future__ import annotations

import pytest
import torch

from mmtk.batch import ModalityBatch
from mmtk.data import TensorData
from mmtk.errors import MmtkError
from mmtk_baselines.ridge_impute import RidgeImpute, ridge_fit

MODS = ("audio", "text", "visual")
IN_DIMS = {"audio": 4, "text": 3, "visual": 2}


def _split(n: int = 300, seed: int = 0, unlabelled: int = 0) -> TensorData:
    """text and visual are linear functions of audio (plus a little noise)."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, 4, generator=g)
    t = a[:, :3] * 2.0 + 1.0 + 0.01 * torch.randn(n, 3, generator=g)
    v = a[:, 2:] - a[:, :2] + 0.01 * torch.randn(n, 2, generator=g)
    labels = torch.arange(n) % 2
    labels[n - unlabelled:] = -1
    return TensorData({"audio": a, "text": t, "visual": v}, labels, [f"s{i}" for i in range(n)])


def _batch(data: TensorData, present: torch.Tensor) -> ModalityBatch:
    full = ModalityBatch(dict(data.inputs), torch.ones(len(data), 3, dtype=torch.bool), MODS,
                         data.labels, list(data.ids))
    return full.masked(present)


def test_gcv_keeps_a_clean_linear_signal_and_shrinks_noise():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(500, 5, generator=g, dtype=torch.float64)
    coef, *_ , clean = ridge_fit(x, x @ torch.ones(5, 2, dtype=torch.float64), None)
    assert torch.allclose(coef, torch.ones(5, 2, dtype=torch.float64), atol=1e-2) and clean <= 1e-3
    noise = torch.randn(500, 2, generator=g, dtype=torch.float64) + 3.0
    coef, x_mean, y_mean, noisy = ridge_fit(x, noise, None)
    assert noisy >= 100 * clean
    x_new = torch.randn(50, 5, generator=g, dtype=torch.float64)   # predictions shrunk to the mean
    assert ((x_new - x_mean) @ coef + y_mean - noise.mean(0)).abs().max() < 0.1
    *_, fixed = ridge_fit(x, x[:, :2], 0.5)
    assert fixed == 0.5


def test_fit_then_impute_fills_only_absent_inputs_with_the_regression():
    imp = RidgeImpute(IN_DIMS, MODS)
    train = _split()
    imp.fit(train)
    assert int(imp.fitted_on) == 300
    test = _split(20, seed=5)
    present = torch.tensor([[True, False, False]] * 10 + [[True, True, True]] * 5 + [[False, True, True]] * 5)
    out = imp.impute(_batch(test, present))
    assert bool(out.present.all())
    assert torch.equal(out.inputs["audio"][:15], test.inputs["audio"][:15])       # observed: as they were
    assert torch.equal(out.inputs["text"][10:], test.inputs["text"][10:])
    # audio alone predicts text and visual almost exactly (they are linear in it)
    assert torch.allclose(out.inputs["text"][:10], test.inputs["text"][:10], atol=0.05)
    assert torch.allclose(out.inputs["visual"][:10], test.inputs["visual"][:10], atol=0.05)
    assert not torch.allclose(out.inputs["audio"][15:], torch.zeros(5, 4))        # text+visual -> audio: filled
    unfitted = RidgeImpute(IN_DIMS, MODS).impute(_batch(test, present))           # zeros: the zero fill
    assert torch.equal(unfitted.inputs["text"][:10], torch.zeros(10, 3))


def test_labelled_only_fit_and_too_few_samples():
    train = _split(300, unlabelled=200)
    pooled, labelled = RidgeImpute(IN_DIMS, MODS), RidgeImpute(IN_DIMS, MODS, unlabeled=False)
    pooled.fit(train)
    labelled.fit(train)
    assert int(pooled.fitted_on) == 300 and int(labelled.fitted_on) == 100
    incomplete = _split(10)
    incomplete.present[:, 1] = False
    with pytest.raises(MmtkError, match="at least 2 complete training samples.*has 0"):
        RidgeImpute(IN_DIMS, MODS).fit(incomplete)
    with pytest.raises(MmtkError, match="no input size known"):
        RidgeImpute({"audio": 4}, MODS)


def test_frame_sequences_are_pooled_and_a_predicted_modality_repeats_over_its_frames():
    imp = RidgeImpute(IN_DIMS, MODS)
    imp.fit(_split())
    flat = _split(6, seed=3)
    frames = {m: x[:, None, :].expand(-1, 5, -1).clone() for m, x in flat.inputs.items()}
    lengths = {m: torch.full((6,), 5) for m in MODS}
    batch = ModalityBatch(frames, torch.ones(6, 3, dtype=torch.bool), MODS, flat.labels, None, lengths)
    out = imp.impute(batch.masked(torch.tensor([[True, False, True]] * 6)))
    assert out.inputs["text"].shape == (6, 5, 3)
    assert torch.allclose(out.inputs["text"][:, 0], out.inputs["text"][:, 4])
    assert torch.allclose(out.inputs["text"][:, 0], flat.inputs["text"], atol=0.05)


def test_the_pipeline_encodes_imputed_inputs_and_keeps_what_was_observed(system):
    from mmtk.builder import Builder
    from mmtk.recipe import Component, Model

    model = Builder(system.registry).model(
        Model(latent_dim=8, encoders={m: Component("basic:mlp", {}) for m in MODS},
              reconstructor=Component("baselines:ridge_impute", {}), fuser=Component("basic:concat", {}),
              head=Component("basic:mlp", {})), dict(IN_DIMS), num_classes=2, seed=0)
    train = _split(300, unlabelled=200)
    model.fit_training_data(train)
    assert int(model.reconstructor.fitted_on) == 300
    assert not any(u.startswith("reconstructor") for u in model.unlabeled_users({}))   # no pool in batches
    present = torch.tensor([[True, False, False], [True, True, True]])
    state = model.encode(_batch(_split(2, seed=9), present))
    assert torch.equal(state.present, present) and bool(state.represented.all())
    reloaded = Builder(system.registry).model(
        Model(latent_dim=8, encoders={m: Component("basic:mlp", {}) for m in MODS},
              reconstructor=Component("baselines:ridge_impute", {}), fuser=Component("basic:concat", {}),
              head=Component("basic:mlp", {})), dict(IN_DIMS), num_classes=2, seed=0)
    reloaded.load_state_dict(model.state_dict())   # the fit travels with the model
    model.eval()
    reloaded.eval()
    batch = _batch(_split(4, seed=2), torch.tensor([[True, False, False]] * 4))
    assert torch.equal(model(batch).logits, reloaded(batch).logits)


@pytest.mark.slow
def test_a_run_fits_once_per_stage_and_its_rebuilt_model_reproduces_it(system, tmp_path):
    import numpy as np

    from mmtk.predictions import load_predictions
    from mmtk.recipe import resolve
    from mmtk.run import Run
    from mmtk.trial_model import rebuild_trial

    tree = resolve("ridge-impute", system, [
        "data={type: latent_views, labels: 40, unlabeled: 200, complete_fraction: 0.5, n_test: 200}",
        "train.epochs=2", "model.latent_dim=16", f"output.dir={tmp_path}"])
    run = Run.create(tree, system, jobs=1, threads=1)
    run.execute()
    trial_dir = run.directory / "trials" / "seed0"
    kept = load_predictions(trial_dir / "predictions.npz").splits["test"]
    trial = rebuild_trial(resolve(run.directory / "recipe.yaml", system), system.registry, trial_dir)
    complete = int(trial.splits.train.present.all(1).sum())   # the pool and the complete labelled samples
    assert int(trial.model.reconstructor.fitted_on) == complete and 200 < complete < 240
    for c, name in enumerate(kept.conditions):
        pred = trial.evaluator.predict(trial.model, trial.splits.test, torch.as_tensor(kept.mask[c]))
        assert np.array_equal(pred.numpy(), kept.pred[c]), name


def test_available_fit_uses_incomplete_samples_when_none_is_complete():
    train = _split(300)
    train.present[:150, 2] = False            # audio + text
    train.present[150:, 1] = False            # audio + visual: no sample has all three
    with pytest.raises(MmtkError, match="at least 2 complete"):
        RidgeImpute(IN_DIMS, MODS).fit(train)
    imp = RidgeImpute(IN_DIMS, MODS, fit_on="available")
    imp.fit(train)
    assert int(imp.fitted_on) == 300
    test = _split(10, seed=4)
    out = imp.impute(_batch(test, torch.tensor([[True, False, False]] * 10)))
    assert torch.allclose(out.inputs["text"], test.inputs["text"], atol=0.05)     # from audio, 150 samples
    assert torch.allclose(out.inputs["visual"], test.inputs["visual"], atol=0.05)  # from audio, the other 150
    # text + visual were never seen together: audio cannot be regressed on them, it stays the zero fill
    out = imp.impute(_batch(test, torch.tensor([[False, True, True]] * 10)))
    assert torch.equal(out.inputs["audio"], torch.zeros(10, 4))
    with pytest.raises(MmtkError, match="nothing to regress"):
        lonely = _split(10)
        lonely.present[:] = torch.tensor([True, False, False])
        RidgeImpute(IN_DIMS, MODS, fit_on="available").fit(lonely)
