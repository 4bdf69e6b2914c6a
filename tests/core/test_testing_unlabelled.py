"""The contract check ``::unlabelled`` catches a slot that feeds unlabelled samples to a
supervised loss, one whose label-free loss skips them, one whose supervised loss is not 0
without labels, and one that learns into a buffer it never saves; a correct slot passes;
label_losses must name declared losses."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import mmtk
from mmtk.errors import MmtkError
from mmtk.ops import zero_loss
from mmtk.pipeline import Pipeline, label_losses
from mmtk.plugins import load_plugins
from mmtk.testing import Case, run_case


class _Probe(mmtk.Slot):
    """A refiner with a class-prototype loss (supervised) and a norm loss (label-free)."""

    aux_losses = ("proto", "norm")
    needs_labels = True
    label_losses = ("proto",)

    def __init__(self, latent_dim: int, num_classes: int):
        super().__init__()
        self.protos = nn.Parameter(torch.randn(num_classes, latent_dim))

    def rows(self, state):
        return state.labeled

    def supervised(self, state, reps, rows):
        if not bool(rows.any()):
            return zero_loss(reps)
        return F.cross_entropy(reps[rows] @ self.protos.T, state.labels[rows])

    def forward(self, state):
        reps = torch.stack([state.reps[m] for m in state.modalities], 1).mean(1)
        losses = {"norm": (reps ** 2).mean()}
        if state.labels is not None:
            losses["proto"] = self.supervised(state, reps, self.rows(state))
        return state, losses


class Good(_Probe):
    """Supervised loss on labelled rows, label-free loss on every row."""


class NegativeAsClass(_Probe):
    """Treats every negative label as one more class (a silent leak)."""

    def rows(self, state):
        return torch.ones_like(state.labels, dtype=torch.bool)

    def supervised(self, state, reps, rows):
        sims = reps @ reps.T
        same = (state.labels[:, None] == state.labels[None, :]).float()
        return -(sims.log_softmax(1) * same).sum() / same.sum()


class ClampedLabels(_Probe):
    """Reads unlabelled rows as class 0."""

    def rows(self, state):
        return torch.ones_like(state.labels, dtype=torch.bool)

    def supervised(self, state, reps, rows):
        return F.cross_entropy(reps @ self.protos.T, state.labels.clamp_min(0))


class LabelFreeOnLabelledOnly(_Probe):
    """Its label-free loss reads labelled rows only: unlabelled samples teach it nothing."""

    def forward(self, state):
        state, losses = super().forward(state)
        reps = torch.stack([state.reps[m] for m in state.modalities], 1).mean(1)
        losses["norm"] = (reps[state.labeled] ** 2).mean()
        return state, losses


class NotZeroWithoutLabels(_Probe):
    def supervised(self, state, reps, rows):
        if not bool(rows.any()):
            return reps.sum() * 0 + 1.0
        return super().supervised(state, reps, rows)


class HiddenRunningMean(Good):
    """Learns a running mean of its batches into a buffer that is never saved."""

    def __init__(self, latent_dim: int, num_classes: int):
        super().__init__(latent_dim, num_classes)
        self.register_buffer("running", torch.zeros(latent_dim), persistent=False)

    def forward(self, state):
        if self.training:
            reps = torch.stack([state.reps[m] for m in state.modalities], 1).mean(1)
            self.running.mul_(0.9).add_(0.1 * reps.detach().mean(0))
        return super().forward(state)


class UndeclaredLabelLoss(Good):
    label_losses = ("prototypes",)


class ToySlots:
    @mmtk.hookimpl
    def mmtk_register_components(self, register):
        for cls in (Good, NegativeAsClass, ClampedLabels, LabelFreeOnLabelledOnly, NotZeroWithoutLabels,
                    HiddenRunningMean):
            register("refiner", cls.__name__.lower(), cls)


@pytest.fixture(scope="module")
def toy_system():
    return load_plugins(extra=[("toyslots", ToySlots())])


def _outcome(system, name, tmp_path):
    case = Case("unlabelled", "toyslots", system.registry.get("refiner", f"toyslots:{name}"))
    try:
        run_case(case, tmp_path, system)
    except AssertionError as exc:
        return str(exc)
    return "pass"


def test_a_correct_slot_passes(toy_system, tmp_path):
    assert _outcome(toy_system, "good", tmp_path) == "pass"


@pytest.mark.parametrize("name, says", [
    ("negativeasclass", "supervised loss 'refiner/proto' changed"),
    ("clampedlabels", "supervised loss 'refiner/proto' changed"),
    ("labelfreeonlabelledonly", "label-free loss 'refiner/norm' ignores the unlabelled rows"),
    ("notzerowithoutlabels", "'refiner/proto' is 1 on a batch without any labelled row"),
    ("hiddenrunningmean", "changed its non-persistent buffer 'running'"),
])
def test_a_slot_breaking_the_contract_is_named(toy_system, tmp_path, name, says):
    got = _outcome(toy_system, name, tmp_path)
    assert got.startswith(f"refiner 'toyslots:{name}'") and says in got, got


def test_label_losses_default_and_must_be_declared():
    assert label_losses(Good(4, 3)) == ("proto",)

    class AllSupervised(mmtk.Slot):
        aux_losses = ("a", "b")
        needs_labels = True

    class NoLabels(mmtk.Slot):
        aux_losses = ("a",)
        label_losses = ("a",)               # gets no labels: nothing can read them

    assert label_losses(AllSupervised()) == ("a", "b") and label_losses(NoLabels()) == ()
    with pytest.raises(MmtkError, match=r"refiner 'UndeclaredLabelLoss' lists \['prototypes'\] in label_losses"):
        Pipeline({"a": nn.Linear(2, 4)}, fuser=None, head=nn.Identity(), refiner=UndeclaredLabelLoss(4, 3))
