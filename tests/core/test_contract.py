"""Every registered component, of every installed plugin, honours its kind's contract.

Model parts are tested inside a real pipeline (forward in training and evaluation, backward,
no NaN) with batches where some samples have only one modality and one modality is absent
for everyone. A component whose constructor needs more than context values provides
``example_params(workdir)``; one that needs partners in other slots provides
``contract_partners()`` -> {slot: block}.
"""
from __future__ import annotations

import inspect

import pytest
import torch

from mmtk.batch import ModalityBatch
from mmtk.builder import Builder
from mmtk.data import DataSplits, Dataset
from mmtk.metrics import as_metric, confusion_matrix
from mmtk.plugins import load_plugins
from mmtk.protocols import MissingProtocol
from mmtk.task import loss_target

SYSTEM = load_plugins()
MODALITIES = ("audio", "text", "visual")
IN_DIMS = {"audio": 12, "text": 10, "visual": 8}
MODEL_PARTS = ("encoder", "aligner", "reconstructor", "refiner", "fuser", "head")


def specs(*kinds):
    return [pytest.param(s, id=f"{s.kind}/{s.qualified_name}") for k in kinds for s in SYSTEM.registry.list(k)]


def block_for(spec, workdir):
    block = {"type": spec.qualified_name}
    example = getattr(spec.obj, "example_params", None)
    if example is not None:
        block.update(example(workdir))
    return block


def make_batch(n=8, frames=5, seed=0, encoder=None):
    g = torch.Generator().manual_seed(seed)
    inputs, lengths = {}, {}
    for m in MODALITIES:
        if encoder is not None and hasattr(encoder, "example_input"):
            inputs[m], lengths[m] = encoder.example_input(n, IN_DIMS[m])
        else:
            inputs[m] = torch.randn(n, frames, IN_DIMS[m], generator=g)
            lengths[m] = torch.randint(1, frames + 1, (n,), generator=g)
    present = torch.ones(n, 3, dtype=torch.bool)
    present[0] = torch.tensor([True, False, False])     # only audio
    present[1] = torch.tensor([False, True, False])     # only text
    present[2] = torch.tensor([False, False, True])     # only visual
    present[3:, 2] = False                              # visual absent for the rest
    labels = torch.arange(n) % 3
    truth = ModalityBatch(inputs, torch.ones(n, 3, dtype=torch.bool), MODALITIES, labels,
                          [f"s{i}" for i in range(n)], lengths)
    return truth, present


def build_pipeline(spec, workdir):
    model = {"latent_dim": 16, "encoders": {m: {"type": "basic:mlp"} for m in MODALITIES},
             "aligner": None, "reconstructor": None, "refiner": None,
             "fuser": {"type": "basic:concat"}, "head": {"type": "basic:mlp"}}
    partners = getattr(spec.obj, "contract_partners", None)
    if partners is not None:
        model.update(partners())
    block = block_for(spec, workdir)
    if spec.kind == "encoder":
        model["encoders"] = {m: dict(block) for m in MODALITIES}
    else:
        model[spec.kind] = block
    return Builder(SYSTEM.registry, workdir).model(model, IN_DIMS, num_classes=3, seed=0)


@pytest.mark.parametrize("spec", specs(*MODEL_PARTS))
def test_model_part_forward_backward_absent_modalities(spec, tmp_path):
    torch.manual_seed(0)
    pipe = build_pipeline(spec, tmp_path)
    truth, present = make_batch(encoder=spec.obj if spec.kind == "encoder" else None)
    pipe.train()
    out = pipe(truth.masked(present), truth=truth)
    assert out.logits.shape == (truth.size, 3)
    assert torch.isfinite(out.logits).all(), "NaN/inf logits in training"
    for name, value in out.aux.items():
        assert value.dim() == 0, f"aux loss {name} is not a scalar"
        assert torch.isfinite(value), f"aux loss {name} is not finite"
    assert set(out.aux) <= pipe.declared_losses()
    loss = torch.nn.functional.cross_entropy(out.logits, truth.labels) + sum(out.aux.values())
    loss.backward()
    grads = [p.grad for p in pipe.parameters() if p.requires_grad and p.grad is not None]
    assert grads, "no parameter received a gradient"
    assert all(torch.isfinite(g).all() for g in grads), "NaN/inf gradient"
    pipe.eval()
    with torch.no_grad():
        logits = pipe(truth.masked(present)).logits
    assert torch.isfinite(logits).all(), "NaN/inf logits at evaluation"


@pytest.mark.parametrize("spec", specs("encoder"))
def test_encoder_ignores_padding(spec, tmp_path):
    """Frames past a sample's length must not change its representation."""
    enc = Builder(SYSTEM.registry, tmp_path).component(
        "encoder", block_for(spec, tmp_path), {"in_dim": 6, "latent_dim": 8, "modality": "audio",
                                               "modalities": MODALITIES, "num_classes": 3, "seed": 0})
    if hasattr(spec.obj, "example_input"):
        pytest.skip("encoder with its own input format: padding is checked in its plugin's tests")
    enc.eval()
    x = torch.randn(3, 6, 6)
    lengths = torch.tensor([2, 4, 6])
    y1 = enc(x, lengths)
    x2 = x.clone()
    for i, n in enumerate(lengths.tolist()):
        x2[i, n:] = 100.0
    torch.testing.assert_close(y1, enc(x2, lengths))


@pytest.mark.parametrize("spec", specs("loss"))
def test_task_loss(spec, tmp_path):
    loss_fn = Builder(SYSTEM.registry, tmp_path).component("loss", block_for(spec, tmp_path))
    if loss_target(loss_fn) == "scores":   # regression: one output per sample, float targets
        logits = torch.randn(6, 1, requires_grad=True)
        value = loss_fn(logits, torch.linspace(-3, 3, 6))
    else:
        logits = torch.randn(6, 4, requires_grad=True)
        value = loss_fn(logits, torch.tensor([0, 1, 2, 3, 0, 1]))
    assert value.dim() == 0 and torch.isfinite(value)
    value.backward()
    assert torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("spec", specs("metric"))
def test_metric_bounds_and_perfect_score(spec, tmp_path):
    metric = as_metric(Builder(SYSTEM.registry, tmp_path).component("metric", spec.qualified_name))
    if metric.reads == "regression":
        # no |score| < 0.5 and no zero, so every sign-flipped prediction changes every class
        y = torch.tensor([-2.6, -1.2, -0.7, 0.6, 1.4, 2.8])
        perfect, wrong = metric(y, y), metric(-y, y)
    else:
        y = torch.tensor([0, 0, 1, 2, 2, 2])
        perfect, wrong = metric(confusion_matrix(y, y, 3)), metric(confusion_matrix(y, (y + 1) % 3, 3))
    if metric.percent:  # a rate in [0, 1]
        assert perfect == pytest.approx(1.0) and wrong == pytest.approx(0.0)
    else:
        assert (perfect > wrong) == metric.higher_is_better and perfect != wrong


@pytest.mark.parametrize("spec", specs("optimizer"))
def test_optimizer_steps(spec, tmp_path):
    w = torch.nn.Parameter(torch.ones(3))
    opt = Builder(SYSTEM.registry, tmp_path).optimizer(block_for(spec, tmp_path), [w])
    (w ** 2).sum().backward()
    opt.step()
    assert not torch.equal(w.detach(), torch.ones(3))


@pytest.mark.parametrize("spec", specs("scheduler"))
def test_scheduler_steps(spec, tmp_path):
    w = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([w], lr=0.1)
    sched = Builder(SYSTEM.registry, tmp_path).scheduler(block_for(spec, tmp_path), opt, epochs=5)
    for _ in range(5):
        opt.step()
        sched.step()
    assert all(g["lr"] >= 0 for g in opt.param_groups)


@pytest.mark.parametrize("spec", specs("missing"))
def test_missing_protocol(spec, tmp_path):
    block = block_for(spec, tmp_path)
    if spec.name == "fixed" and "condition" not in block:
        block["condition"] = "at"
    proto = Builder(SYSTEM.registry, tmp_path).component("missing", block, {"seed": 0})
    assert isinstance(proto, MissingProtocol)
    present = torch.ones(50, 3, dtype=torch.bool)
    mask = proto.train_mask(present, torch.Generator().manual_seed(0), MODALITIES)
    assert mask.shape == (50, 3) and mask.dtype == torch.bool
    plan = proto.eval_conditions(MODALITIES, 20)
    assert plan.conditions and set(plan.mean_over) <= {c.name for c in plan.conditions}
    for cond in plan.conditions:
        assert cond.mask.shape == (20, 3) and cond.mask.any(1).all(), \
            f"condition {cond.name} leaves a sample with no modality"
    again = proto.eval_conditions(MODALITIES, 20)
    assert all(torch.equal(a.mask, b.mask) for a, b in zip(plan.conditions, again.conditions)), \
        "evaluation conditions must be deterministic"


@pytest.mark.parametrize("spec", specs("dataset"))
def test_dataset_contract(spec, tmp_path):
    block = block_for(spec, tmp_path)
    required = [p for p in inspect.signature(spec.obj).parameters.values()
                if p.default is p.empty and p.name not in ("self", "seed")]
    if required and not hasattr(spec.obj, "example_params"):
        pytest.fail(f"dataset {spec.name} needs {[p.name for p in required]}: give it "
                    "an example_params(workdir) classmethod that builds a tiny fixture")
    ds = Builder(SYSTEM.registry, tmp_path).dataset(block)
    assert isinstance(ds, Dataset)
    splits = ds.load(ds.folds()[0])
    assert isinstance(splits, DataSplits)
    assert tuple(sorted(ds.modalities)) == splits.modalities
    assert splits.num_classes > 0
    assert int(splits.train.labels.max()) < splits.num_classes
    assert set(splits.train.ids).isdisjoint(splits.test.ids), "train and test share ids"
