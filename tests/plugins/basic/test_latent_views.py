"""The latent_views dataset: shapes, seeds, every knob's documented effect, and its Bayes bound
checked against a Monte-Carlo estimate of the likelihood rule on the un-mixed views."""
from __future__ import annotations

import itertools
import json
import math

import pytest
import torch

from mmtk import MmtkError, condition_code
from mmtk.builder import Builder
from mmtk.plugins import load_plugins

REG = load_plugins().registry
SMALL = {"dims": {"audio": 8, "text": 10, "visual": 7}, "n_test": 400}


def make(seed: int = 0, **params):
    return Builder(REG).dataset({"type": "latent_views", **SMALL, **params}, seed=seed)


def test_shapes_ids_and_splits():
    splits = make(labels=60, unlabeled=30, n_val=20).load()
    assert splits.modalities == ("audio", "text", "visual")
    assert splits.in_dims == {"audio": 8, "text": 10, "visual": 7}
    assert (len(splits.train), len(splits.val), len(splits.test)) == (90, 20, 400)
    assert splits.num_classes == 4 and len(splits.class_names) == 4
    ids = splits.train.ids + splits.val.ids + splits.test.ids
    assert len(set(ids)) == len(ids)
    assert make(labels=60).load().val is None          # carved by the core from the labelled samples


def test_label_budget_and_unlabelled_pool():
    splits = make(labels=203, unlabeled=150).load()
    labels = splits.train.labels
    assert int((labels >= 0).sum()) == 203 and int((labels == -1).sum()) == 150
    counts = torch.bincount(labels[labels >= 0], minlength=4)
    assert int(counts.max() - counts.min()) <= 1                                  # stratified
    assert splits.train.present[labels == -1].all()                               # the pool is complete
    assert torch.bincount(splits.test.labels, minlength=4).tolist() == [100] * 4


def test_missing_fraction_is_exact_never_all_and_zeroed():
    splits = make(labels=300, unlabeled=50, complete_fraction=0.4).load()
    labelled = splits.train.labels >= 0
    present = splits.train.present[labelled]
    assert int(present.all(1).sum()) == 120                                       # round(0.4 * 300)
    assert present.any(1).all()                                                   # never all missing
    patterns = {tuple(row.tolist()) for row in present[~present.all(1)]}
    assert len(patterns) == 6                                                     # one or two lost
    for i, m in enumerate(splits.modalities):
        absent = ~splits.train.present[:, i]
        assert absent.any() and (splits.train.inputs[m][absent] == 0).all()
        assert (splits.train.inputs[m][~absent].abs().sum(1) > 0).all()
    assert splits.test.present.all()


def test_determinism_sample_seed_and_task_seed():
    a, b = make(seed=3).load(), make(seed=3).load()
    assert torch.equal(a.test.inputs["text"], b.test.inputs["text"])
    assert torch.equal(a.train.inputs["audio"], b.train.inputs["audio"])
    other_trial = make(seed=4).load()                      # sample_seed 'trial': other samples
    assert not torch.equal(a.test.inputs["text"], other_trial.test.inputs["text"])
    fixed = make(seed=4, sample_seed=3).load()             # ... unless fixed
    assert torch.equal(a.test.inputs["text"], fixed.test.inputs["text"])
    # the test set does not move with the label budget or the pool
    assert torch.equal(a.test.inputs["text"], make(seed=3, labels=100, unlabeled=40).load().test.inputs["text"])
    ds, other_task = make(), make(data_seed=1)
    assert torch.equal(ds.mixing("text"), make(seed=9).mixing("text"))          # the task is data_seed's
    assert not torch.allclose(ds.mixing("text"), other_task.mixing("text"))


@pytest.mark.parametrize("warp", [0.0, 1.5])
def test_unmix_inverts_the_mixing(warp):
    ds = make(warp=warp)
    q = ds.mixing("visual")
    assert torch.allclose(q @ q.T, torch.eye(7), atol=1e-5)
    h = torch.randn(50, 7)
    u = h @ q
    x = u if warp == 0 else torch.asinh(warp * u) / warp
    assert torch.allclose(ds.unmix("visual", x), h, atol=1e-4)


def _class_views(ds, data):
    """The un-mixed class views (N, M, K-1) and the within-class residuals."""
    d = ds.class_dims
    views = torch.stack([ds.unmix(m, data.inputs[m])[:, :d] for m in ds.modalities], 1)
    return views, views - ds.class_centres()[data.labels][:, None]


def _residual_correlation(rho: float) -> float:
    ds = make(shared_signal=rho, n_test=4000, snr={"audio": 3.0, "text": 3.0, "visual": 3.0})
    _, resid = _class_views(ds, ds.load().test)
    return float(torch.corrcoef(torch.stack([resid[:, 0, 0], resid[:, 1, 0]]))[0, 1])


def test_shared_signal_makes_the_class_views_correlate():
    # within-class correlation of two views = rho / (1 + 1/snr^2) = 0.9 rho here
    assert _residual_correlation(1.0) == pytest.approx(0.9, abs=0.04)
    assert abs(_residual_correlation(0.0)) < 0.05


def test_class_views_hold_the_class_signal_and_distractors_are_shared():
    ds = make(n_test=4000, distractor_dims=2, distractor_scale=2.0)
    data = ds.load().test
    views, resid = _class_views(ds, data)
    for i, m in enumerate(ds.modalities):                                   # 1 + sensor noise
        assert resid[:, i].std().item() == pytest.approx((1 + 1 / ds.snr[m] ** 2) ** 0.5, rel=0.05)
    a, t = ds.unmix("audio", data.inputs["audio"]), ds.unmix("text", data.inputs["text"])
    d = ds.class_dims
    assert torch.allclose(a[:, d:d + 2], t[:, d:d + 2], atol=1e-3)          # one shared latent
    assert a[:, d:d + 2].std().item() == pytest.approx(2.0, abs=0.15)
    mean_by_class = torch.stack([a[data.labels == k, d:].mean(0) for k in range(4)])
    assert mean_by_class.abs().max() < 0.25                                 # class-irrelevant


def _monte_carlo_uar(ds, data, keep: tuple[bool, ...]) -> float:
    """The class-likelihood rule on the views of the kept modalities, evaluated by sampling:
    an independent check of the quadrature (full joint Gaussian, no reduction)."""
    views, _ = _class_views(ds, data)
    chosen = [i for i, k in enumerate(keep) if k]
    snr = [ds.snr[ds.modalities[i]] for i in chosen]
    c = ds.rho * torch.ones(len(chosen), len(chosen)) + torch.diag(torch.tensor([1 - ds.rho + 1 / s ** 2 for s in snr]))
    cov = torch.kron(c, torch.eye(ds.class_dims)).double()
    y = views[:, chosen].reshape(len(data), -1).double()
    loglik = torch.stack([torch.distributions.MultivariateNormal(
        ds.class_centres()[k].repeat(len(chosen)).double(), cov).log_prob(y) for k in range(4)], 1)
    pred = loglik.argmax(1)
    return float(torch.stack([(pred[data.labels == k] == k).float().mean() for k in range(4)]).mean())


@pytest.mark.parametrize("rho", [0.0, 0.6, 1.0])
def test_bayes_bound_matches_monte_carlo(rho):
    n = 40000
    ds = make(shared_signal=rho, n_test=n, warp=0.7)
    bound = ds.bayes_bound()
    data = ds.load().test
    se = (0.25 / n) ** 0.5
    for keep in itertools.product([False, True], repeat=3):
        if any(keep):
            code = condition_code(ds.modalities, keep)
            assert _monte_carlo_uar(ds, data, keep) == pytest.approx(bound[code], abs=4 * se), code


def test_bound_is_monotone_in_modalities_and_knobs():
    for rho in (0.0, 0.5, 1.0):
        b = make(shared_signal=rho).bayes_bound()
        for single, pair in itertools.product("atv", ["at", "av", "tv"]):
            if single in pair:
                assert b["atv"] >= b[pair] >= b[single]
        assert b["mean"] == pytest.approx(sum(b[c] for c in ["a", "t", "v", "at", "av", "tv"]) / 6)
    private, shared = make(shared_signal=0.0).bayes_bound(), make(shared_signal=1.0).bayes_bound()
    assert private["a"] == pytest.approx(shared["a"])                        # rho leaves singles alone
    assert private["atv"] > shared["atv"] + 0.05                             # private signals add up
    noisy, clear = make(snr={"audio": 0.5, "text": 1, "visual": 1}), make(snr={"audio": 2, "text": 1, "visual": 1})
    assert clear.bayes_bound()["a"] > noisy.bayes_bound()["a"] + 0.1
    assert make(separation=4.0).bayes_bound()["t"] > make(separation=2.0).bayes_bound()["t"] + 0.1


@pytest.mark.parametrize("k", [2, 3, 4, 5, 6])
def test_class_centres_are_a_regular_centred_simplex(k):
    centres = make(num_classes=k, separation=2.5, distractor_dims=1).class_centres().double()
    assert centres.shape == (k, k - 1)
    assert torch.allclose(centres.mean(0), torch.zeros(k - 1, dtype=torch.float64), atol=1e-6)
    far = torch.cdist(centres, centres)[~torch.eye(k, dtype=torch.bool)]
    assert torch.allclose(far, torch.full_like(far, 2.5), atol=1e-5)


_DRAW = """
import json, torch
from mmtk.builder import Builder
from mmtk.plugins import load_plugins
data = Builder(load_plugins().registry).dataset(
    {"type": "latent_views", "dims": {"audio": 8, "text": 10, "visual": 7}, "n_test": 50, "labels": 40}, seed=0)
splits = data.load()
print(json.dumps({"centres": data.class_centres().tolist(),
                  "features": sum(float(t.double().abs().sum()) for t in splits.test.inputs.values())}))
"""


def test_the_data_do_not_depend_on_the_cpus_lapack_path(tmp_path):
    """The class centres once came from an SVD whose answer is not unique (equal singular
    values): MKL's SSE4.2 path, taken on other CPUs, returned another basis and so other
    samples. Asking MKL for that path here must not change the data."""
    import os
    import subprocess
    import sys

    def draw(env: dict) -> dict:
        out = subprocess.run([sys.executable, "-c", _DRAW], env={**os.environ, **env}, capture_output=True,
                             text=True, check=True, cwd=tmp_path)
        return json.loads(out.stdout.strip().splitlines()[-1])

    native, sse = draw({}), draw({"MKL_ENABLE_INSTRUCTIONS": "SSE4_2"})
    assert native["centres"] == sse["centres"]                       # exactly
    assert native["features"] == pytest.approx(sse["features"], rel=1e-6)   # QR's rounding at most


def test_two_classes_bound_is_the_normal_cdf():
    # K = 2: recall = Phi(separation / (2 tau)); audio alone: tau^2 = 1 + 1/snr^2 = 2
    b = make(num_classes=2, snr={"audio": 1.0, "text": 1.0, "visual": 1.0}, separation=2.0).bayes_bound()
    phi = 0.5 * (1 + math.erf(1 / 2 ** 0.5 / 2 ** 0.5))
    assert b["a"] == pytest.approx(phi, abs=1e-9)


def test_bound_is_in_the_splits_info():
    info = make().load().info
    assert set(info["bayes_bound"]["uar"]) == {"a", "t", "v", "at", "av", "tv", "atv", "mean"}
    assert info["bayes_bound"]["uar"] == make().bayes_bound()


@pytest.mark.parametrize("params, words", [
    ({"snr": {"audio": 1.0, "text": 1.0}}, "snr names"),
    ({"dims": {"audio": 4, "text": 10, "visual": 7}, "snr": {"audio": 1, "text": 1, "visual": 1}}, "narrower"),
    ({"dims": {"audio": 8}, "snr": {"audio": 1.0}, "complete_fraction": 0.5}, "at least two"),
])
def test_bad_parameters_are_explained(params, words):
    with pytest.raises(MmtkError, match=words):
        Builder(REG).dataset({"type": "latent_views", **SMALL, **params})


def _tiny_run(system, tmp_path, capsys, data: str) -> tuple[dict, str]:
    from conftest import RECIPES, run_recipe
    from mmtk.commands import print_summary

    results = run_recipe(system, RECIPES / "baseline.yaml", tmp_path,
                         [f"data={{type: latent_views, {data}, dims: {{audio: 8, text: 10, visual: 7}}}}",
                          "train.epochs=2", "seed=[0]", "model.latent_dim=16", "eval.batch_size=512"])
    capsys.readouterr()
    print_summary(results, as_json=False)
    return results, capsys.readouterr().out


@pytest.mark.slow
def test_a_run_prints_the_bound_next_to_the_results(system, tmp_path, capsys):
    results, out = _tiny_run(system, tmp_path, capsys, "labels: 120, complete_fraction: 0.5, n_test: 300")
    expected = make(labels=120, n_test=300).bayes_bound()
    assert results["bayes_bound"]["uar"] == pytest.approx(expected)
    line = next(row for row in out.splitlines() if "Bayes bound (from the dataset)" in row)
    assert f"{100 * expected['atv']:.2f}" in line and f"{100 * expected['mean']:.2f}" in line
    data = json.loads(next((tmp_path / "runs").rglob("data.json")).read_text())
    assert data["sizes"]["train"] + data["sizes"]["val"] == 120 and data["sizes"]["test"] == 300


@pytest.mark.slow
def test_a_run_trains_on_the_unlabelled_pool(system, tmp_path, capsys):
    # needs the unlabelled-sample contract (#15 §1): label -1 ignored by the task loss,
    # validation carved from the labelled samples only
    results, _ = _tiny_run(system, tmp_path, capsys, "labels: 120, unlabeled: 200, complete_fraction: 0.5, "
                                                     "n_test: 300")
    data = json.loads(next((tmp_path / "runs").rglob("data.json")).read_text())
    assert data["sizes"]["train"] + data["sizes"]["val"] == 320 and data["sizes"]["val"] == 12
    assert 0.25 < results["summary"]["test"]["atv"]["uar"]["mean"] <= 1


def test_other_modality_names_get_snr_one():
    ds = Builder(REG).dataset({"type": "latent_views", "dims": {"eeg": 8, "ecg": 9}, "n_test": 100})
    assert ds.snr == {"eeg": 1.0, "ecg": 1.0}
    bound = ds.bayes_bound()
    assert set(bound) == {"ecg", "eeg", "ecg+eeg", "mean"} and bound["ecg"] == pytest.approx(bound["eeg"])
    assert ds.load().in_dims == {"ecg": 9, "eeg": 8}
