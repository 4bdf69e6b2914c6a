"""dicmor_flow's recovery: each missing modality comes from the inverse of its OWN flow,
several sources are averaged, and its losses read ground truth only where the data has it."""
from __future__ import annotations

from dataclasses import replace

import torch

from mmtk.pipeline import State
from mmtk_recovery.dicmor import DiCMoRFlow
from mmtk_recovery.flows import from_latent, to_latent

MODS = ("audio", "text", "visual")


def slot(perturb, refine=False, **params):
    torch.manual_seed(0)
    s = DiCMoRFlow(MODS, 6, 3, blocks=2, hidden=16, refine=refine, **params)
    perturb(s, 0.2)
    return s


def state(present, seed=0, training=False, labels=None):
    g = torch.Generator().manual_seed(seed)
    reps = {m: torch.randn(len(present), 6, generator=g) for m in MODS}
    return State(reps=reps, present=present, modalities=MODS, training=training, labels=labels)


def test_a_missing_modality_comes_from_its_own_inverse_flow(perturb, rows):
    s, st = slot(perturb), state(rows("t", "t"))
    out, _ = s(st)
    by_hand = {m: from_latent(s.flows[m], to_latent(s.flows["text"], st.reps["text"])[0]) for m in ("audio", "visual")}
    assert torch.allclose(out.reps["audio"], by_hand["audio"], atol=1e-5)
    assert torch.allclose(out.reps["visual"], by_hand["visual"], atol=1e-5)
    assert not torch.allclose(out.reps["audio"], out.reps["visual"], atol=1e-3)
    assert torch.equal(out.reps["text"], st.reps["text"])
    # swap the audio and visual flows: the recovered audio becomes the former visual one
    flows = {m: {k: v.clone() for k, v in s.flows[m].state_dict().items()} for m in MODS}
    s.flows["audio"].load_state_dict(flows["visual"])
    s.flows["visual"].load_state_dict(flows["audio"])
    swapped, _ = s(state(rows("t", "t")))
    assert torch.allclose(swapped.reps["audio"], out.reps["visual"], atol=1e-5)
    assert torch.allclose(swapped.reps["visual"], out.reps["audio"], atol=1e-5)


def test_two_available_modalities_are_both_recovered_from_and_averaged(perturb, rows):
    s, st = slot(perturb), state(rows("tv"))
    out, _ = s(st)
    from_text = s.translate("text", "audio", st.reps["text"])
    from_visual = s.translate("visual", "audio", st.reps["visual"])
    assert torch.allclose(out.reps["audio"], (from_text + from_visual) / 2, atol=1e-5)
    assert not torch.allclose(from_text, from_visual, atol=1e-3)


def test_recovered_cells_are_marked_and_refined(perturb, rows):
    present = rows("a", "at", "atv", "")
    plain, refined = slot(perturb), slot(perturb, refine=True)
    refined.flows.load_state_dict(plain.flows.state_dict())
    refined.prior.load_state_dict(plain.prior.state_dict())
    st = state(present)
    a, _ = plain(st)
    b, _ = refined(st)
    recoverable = present.any(1, keepdim=True).expand(-1, 3)   # a sample with no modality stays empty
    assert torch.equal(a.represented, recoverable)
    for i, m in enumerate(MODS):
        keep = present[:, i] | ~present.any(1)   # present, or a sample with nothing to recover from
        assert torch.equal(a.reps[m][keep], st.reps[m][keep])
        missing = ~keep
        if missing.any():
            assert torch.allclose(b.reps[m][missing], refined.refiners[m](a.reps[m][missing]), atol=1e-6)
            assert not torch.allclose(b.reps[m][missing], a.reps[m][missing])


def test_nll_reads_labelled_rows_and_the_mixture_unlabelled_ones(perturb, rows):
    s = slot(perturb)
    present = rows("a", "t", "at", "atv")
    labels = torch.tensor([0, 2, -1, -1])
    _, losses = s(state(present, training=True, labels=labels))
    reps = state(present).reps
    chosen = [present[:, i] & (labels >= 0) for i in range(3)]
    labelled = [s.log_prob(m, reps[m][chosen[i]], labels[chosen[i]]) for i, m in enumerate(MODS)]
    expected = torch.stack([-lp.mean() / 6 for lp in labelled if len(lp)]).mean()
    assert torch.allclose(losses["nll"], expected, atol=1e-6)
    # the unlabelled rows' log-likelihood is the mixture, whatever negative label they carry
    other = s(state(present, training=True, labels=torch.tensor([0, 2, -5, -9])))[1]
    assert torch.allclose(other["nll_unlabelled"], losses["nll_unlabelled"])
    assert torch.allclose(other["nll"], losses["nll"])
    assert losses["nll_unlabelled"] > 0 and "rec" not in losses  # no targets given: no rec


def test_losses_ignore_what_the_data_does_not_have(pipeline, make_batch, rows):
    """Garbage in the cells the data lacks (targets.available False) changes no loss; the
    same garbage in a cell the data has but the protocol dropped does change rec."""
    pipe = pipeline({"type": "dicmor_flow", "blocks": 2, "hidden": 16}).train()
    available = rows("at", "atv", "tv", "a", "atv", "av")
    shown = rows("a", "t", "v", "a", "at", "av")       # the training mask (within available)
    clean = make_batch(6, available=available)

    def losses(batch):
        torch.manual_seed(0)
        return pipe(batch.masked(shown), truth=batch).aux

    def with_garbage(where):
        inputs = {m: torch.where(where[:, i:i + 1], 1e3 * torch.ones_like(x), x)
                  for i, (m, x) in enumerate(clean.inputs.items())}
        return replace(clean, inputs=inputs)

    ref = losses(clean)
    assert ref["reconstructor/rec"] > 0
    unavailable = losses(with_garbage(~available))
    assert all(torch.equal(ref[k], unavailable[k]) for k in ref), (ref, unavailable)
    dropped = losses(with_garbage(available & ~shown))
    assert not torch.allclose(ref["reconstructor/rec"], dropped["reconstructor/rec"])


def test_recovery_is_detached_from_the_flows_unless_asked(perturb, rows, pipeline, make_batch):
    for detach, flows_learn in ((True, False), (False, True)):
        pipe = pipeline({"type": "dicmor_flow", "blocks": 2, "hidden": 16, "detach_recovery": detach}).train()
        perturb(pipe.reconstructor.flows, 0.1)
        truth = make_batch(6)
        out = pipe(truth.masked(rows("a", "t", "v", "at", "av", "tv")), truth=truth)
        out.aux["reconstructor/rec"].backward()
        grads = [p.grad for p in pipe.reconstructor.flows.parameters()]
        got = any(g is not None and bool(g.abs().sum() > 0) for g in grads)
        assert got == flows_learn, f"detach_recovery={detach}"
        assert all(p.grad is not None for p in pipe.reconstructor.refiners.parameters())


def test_evaluation_reads_no_labels_and_emits_no_losses(perturb, rows):
    s = slot(perturb).eval()
    out, losses = s(state(rows("a", "tv")))
    assert losses == {} and out.represented.all()
