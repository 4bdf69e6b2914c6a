"""imder_diffusion's maths: denoising score matching on a Gaussian whose score is known,
the samplers against that score, the fixed evaluation noise, and the sampling steps."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from mmtk.pipeline import State
from mmtk_recovery.imder import IMDerDiffusion
from mmtk_recovery.noise import FixedNoise
from mmtk_recovery.score_net import RunningStandardizer, ScoreNet
from mmtk_recovery.vesde import VESDE, dsm_loss, sample

MODS = ("audio", "text", "visual")
MU, S = 1.5, 0.7          # the data: N(MU, S^2) in every dimension
SDE = VESDE(25.0)


def gaussian_score(x, t):
    """The exact score of N(MU, S^2) perturbed by the VE kernel at time t."""
    return -(x - MU) / (S ** 2 + SDE.std(t)[:, None] ** 2)


def expected_dsm(t):
    """E[(std(t) s + z)^2] per dimension for the exact score: S^2 / (S^2 + std(t)^2)."""
    std2 = SDE.std(torch.as_tensor(t, dtype=torch.float64)) ** 2
    return S ** 2 / (S ** 2 + std2)


def test_a_perfect_score_gives_the_analytic_dsm_loss_at_a_fixed_time():
    g = torch.Generator().manual_seed(0)
    x0 = MU + S * torch.randn(200_000, 4, generator=g, dtype=torch.float64)
    for t in (0.05, 0.3, 0.9):
        times = torch.full((len(x0),), t, dtype=torch.float64)
        loss = dsm_loss(gaussian_score, x0, SDE, t=times, z=torch.randn(x0.shape, generator=g, dtype=torch.float64))
        assert float(loss) == pytest.approx(float(expected_dsm(t)), rel=0.01)


def test_the_dsm_loss_over_random_times_is_the_integral_and_a_wrong_score_costs_more():
    torch.manual_seed(0)
    x0 = MU + S * torch.randn(400_000, 2, dtype=torch.float64)
    eps = 1e-5
    grid = torch.linspace(eps, 1.0, 200_001, dtype=torch.float64)
    expected = float(torch.trapezoid(expected_dsm(grid), grid)) / (1 - eps)   # E over t ~ U(eps, 1)
    assert float(dsm_loss(gaussian_score, x0, SDE, eps=eps)) == pytest.approx(expected, rel=0.01)

    def standard_score(x, t):   # the score of N(0, 1) data: wrong mean and variance
        return -x / (1 + SDE.std(t)[:, None] ** 2)
    assert float(dsm_loss(standard_score, x0, SDE, eps=eps)) > 1.2 * expected


def marginal_var(t: float) -> float:
    return S ** 2 + float(SDE.std(torch.tensor(t, dtype=torch.float64))) ** 2


def test_the_probability_flow_ode_follows_the_exact_gaussian_flow():
    """With the exact score, the ODE maps x_1 to MU + (x_1 - MU) * r, r = sqrt(v(eps) / v(1))
    (v(t) = S^2 + std(t)^2). Euler's error is first order: halving the step halves it."""
    eps = 1e-3
    r = (marginal_var(eps) / marginal_var(1.0)) ** 0.5
    errors = []
    for steps in (400, 800):
        noise = torch.randn(1000, steps + 1, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        start = noise[:, 0, 0] * float(SDE.std(torch.tensor(1.0, dtype=torch.float64)))
        x = sample(gaussian_score, SDE, noise, steps, "ode", eps)[:, 0]
        ratio = (x - MU) / (start - MU)
        assert float(ratio.std()) < 1e-9, "the Gaussian's flow is affine: one ratio for every sample"
        errors.append(abs(float(ratio.mean()) / r - 1))
    assert errors[0] < 0.03
    assert 0.35 < errors[1] / errors[0] < 0.65


def test_euler_maruyama_draws_the_data_distribution():
    """The reverse SDE contracts the start's error by v(eps) / v(1): the samples are N(MU, S^2)
    up to less than 1 % here."""
    steps = 400
    noise = torch.randn(10_000, steps + 1, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = sample(gaussian_score, SDE, noise, steps, "euler_maruyama")
    assert float(x.mean()) == pytest.approx(MU, abs=0.02)
    assert float(x.std()) == pytest.approx(marginal_var(1e-3) ** 0.5, rel=0.02)


@pytest.mark.parametrize("kind", ["ode", "euler_maruyama"])
@pytest.mark.parametrize("steps", [1, 3, 7])
def test_the_sampler_evaluates_the_score_once_per_step(kind, steps):
    calls = []

    def score(x, t):
        calls.append(float(t[0]))
        return torch.zeros_like(x)
    sample(score, SDE, torch.randn(4, steps + 1, 2), steps, kind)
    assert len(calls) == steps and calls[0] == 1.0


def test_a_new_score_network_is_the_exact_score_of_standard_normal_data():
    torch.manual_seed(0)
    net = ScoreNet(4, 2, SDE, hidden=8, layers=2)
    u, t = torch.randn(5, 4), torch.rand(5) * 0.9 + 0.05
    expected = -u / (1 + SDE.std(t)[:, None] ** 2)
    assert torch.allclose(net(u, t, torch.randn(5, 2 * 4 + 2)), expected, atol=1e-6)


def test_the_running_standardizer_starts_at_the_first_batch_and_round_trips():
    scale = RunningStandardizer(3, momentum=0.5)
    x = 4 + 2 * torch.randn(1000, 3, generator=torch.Generator().manual_seed(0))
    scale.update(x)
    assert torch.allclose(scale.mean, x.mean(0)) and torch.allclose(scale.var, x.var(0))
    assert torch.allclose(scale.to_unit(x).std(0), torch.ones(3), atol=1e-3)
    assert torch.allclose(scale.from_unit(scale.to_unit(x)), x, atol=1e-5)
    scale.update(x + 2)
    assert torch.allclose(scale.mean, x.mean(0) + 1, atol=1e-5)   # moved halfway


# -- the slot ------------------------------------------------------------------------------
def slot(seed=0, **params):
    """A slot with random weights (a new score network is the score of N(0, I): it would
    ignore the condition)."""
    torch.manual_seed(0)
    s = IMDerDiffusion(MODS, 6, **{"steps": 4, "sample_seed": seed, "hidden": 16, **params})
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in s.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g))
    return s.eval()


def state(present, seed=0, training=False):
    g = torch.Generator().manual_seed(seed)
    reps = {m: torch.randn(len(present), 6, generator=g) for m in MODS}
    return State(reps=reps, present=present, modalities=MODS, training=training)


def test_evaluation_is_repeatable_and_seeded(rows):
    present = rows("a", "t", "v", "at", "av", "tv", "atv")
    first = slot()(state(present))[0].reps
    again = slot()(state(present))[0].reps
    other_seed = slot(seed=1)(state(present))[0].reps
    for m in MODS:
        assert torch.equal(first[m], again[m])
    assert all(not torch.allclose(first[m][~present[:, i]], other_seed[m][~present[:, i]])
               for i, m in enumerate(MODS))


def test_a_rows_noise_does_not_depend_on_the_batch_it_is_in():
    noise = FixedNoise(3)
    like = torch.zeros(())
    alone = noise.rows(0, torch.tensor([5]), (3, 2), like)
    many = FixedNoise(3).rows(0, torch.arange(9), (3, 2), like)
    assert torch.equal(alone[0], many[5])
    assert not torch.equal(many[4], many[5])
    assert not torch.equal(noise.rows(1, torch.tensor([5]), (3, 2), like), alone)  # per modality


def test_steps_and_train_steps_are_honoured(rows):
    s = slot(steps=5, train_steps=2)
    calls = {m: 0 for m in MODS}

    def counter(m):
        def hook(*_):
            calls[m] += 1
        return hook
    for m in MODS:
        s.scores[m].register_forward_hook(counter(m))
    present = rows("a", "at")              # text and visual missing in row 0, visual in row 1
    s.eval()(state(present))
    assert calls == {"audio": 0, "text": 5, "visual": 5}
    calls.update(dict.fromkeys(MODS, 0))
    s.train()(state(present, training=True))   # no targets: sampling only
    assert calls == {"audio": 0, "text": 2, "visual": 2}


def test_the_condition_reads_available_modalities_only(rows):
    present = rows("a", "at")
    st = state(present)
    changed = replace(st, reps={**st.reps, "visual": 100 + st.reps["visual"]})  # absent everywhere
    a, b = slot()(st)[0].reps, slot()(changed)[0].reps
    assert torch.equal(a["text"][0], b["text"][0])
    moved = replace(st, reps={**st.reps, "audio": 1 + st.reps["audio"]})
    assert not torch.allclose(slot()(moved)[0].reps["text"][0], a["text"][0])


def test_losses_ignore_what_the_data_does_not_have(pipeline, make_batch, rows):
    pipe = pipeline({"type": "imder_diffusion", "steps": 3, "hidden": 16}).train()
    available = rows("at", "atv", "tv", "a", "atv", "av")
    shown = rows("a", "t", "v", "a", "at", "av")
    clean = make_batch(6, available=available)

    def losses(batch):
        torch.manual_seed(0)
        return pipe(batch.masked(shown), truth=batch).aux

    def with_garbage(where):
        return replace(clean, inputs={m: torch.where(where[:, i:i + 1], 1e3 * torch.ones_like(x), x)
                                      for i, (m, x) in enumerate(clean.inputs.items())})
    ref = losses(clean)
    unavailable = losses(with_garbage(~available))
    assert set(ref) == {"reconstructor/score", "reconstructor/rec"}
    assert all(torch.equal(ref[k], unavailable[k]) for k in ref), (ref, unavailable)
    dropped = losses(with_garbage(available & ~shown))
    assert not torch.allclose(ref["reconstructor/score"], dropped["reconstructor/score"])
    assert not torch.allclose(ref["reconstructor/rec"], dropped["reconstructor/rec"])


def test_the_score_networks_learn_from_the_score_loss_only(pipeline, make_batch, rows):
    pipe = pipeline({"type": "imder_diffusion", "steps": 2, "hidden": 16}).train()
    truth = make_batch(6)
    out = pipe(truth.masked(rows("a", "t", "v", "at", "av", "tv")), truth=truth)
    out.aux["reconstructor/rec"].backward(retain_graph=True)
    assert all(p.grad is None for p in pipe.reconstructor.scores.parameters())
    assert all(p.grad is None for p in pipe.encoders.parameters())   # sampling is detached
    out.aux["reconstructor/score"].backward()
    assert all(p.grad is not None for p in pipe.reconstructor.scores.parameters())
    assert all(p.grad is None for p in pipe.encoders.parameters())   # truth and condition detached
