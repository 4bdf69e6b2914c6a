"""Contract checks of the other kinds: losses, metrics, optimizers, schedulers, missing
protocols, datasets, and every component's parameter docs."""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from ..registry import ComponentSpec
from .common import MODALITIES, ContractSkip, NoGradient, example_block, make_builder


def check_loss(spec: ComponentSpec, workdir: Path, system: Any, allow: NoGradient) -> None:
    import torch

    from ..task import loss_target

    loss_fn = make_builder(system).component("loss", example_block("loss", spec, workdir, system))
    if loss_target(loss_fn) == "scores":  # regression: one output per sample, float targets
        logits = torch.randn(6, 1, requires_grad=True)
        value = loss_fn(logits, torch.linspace(-3, 3, 6))
    else:
        logits = torch.randn(6, 4, requires_grad=True)
        value = loss_fn(logits, torch.tensor([0, 1, 2, 3, 0, 1]))
    assert isinstance(value, torch.Tensor) and value.dim() == 0, "the loss is not a scalar tensor"
    assert torch.isfinite(value), "the loss is not finite"
    value.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all(), \
        "no finite gradient reaches the predictions"


def check_metric(spec: ComponentSpec, workdir: Path, system: Any, allow: NoGradient) -> None:
    import torch

    from ..metrics import as_metric, confusion_matrix

    metric = as_metric(make_builder(system).component("metric", spec.qualified_name))
    if metric.reads == "regression":
        # no |score| < 0.5 and no zero, so every sign-flipped prediction changes every class
        y = torch.tensor([-2.6, -1.2, -0.7, 0.6, 1.4, 2.8])
        perfect, wrong = metric(y, y), metric(-y, y)
    elif metric.reads == "probabilities":
        y = torch.tensor([0, 0, 1, 2, 2, 2])
        per_sample = metric.fn(torch.eye(3)[y], y)
        assert isinstance(per_sample, torch.Tensor) and per_sample.shape == y.shape, \
            "a probability metric returns one value per sample (the metric is their mean)"
        perfect, wrong = metric(torch.eye(3)[y], y), metric(torch.eye(3)[(y + 1) % 3], y)
    else:
        y = torch.tensor([0, 0, 1, 2, 2, 2])
        perfect = metric(confusion_matrix(y, y, 3))
        wrong = metric(confusion_matrix(y, (y + 1) % 3, 3))
    if metric.percent:  # a rate in [0, 1]
        assert abs(perfect - 1.0) < 1e-6 and abs(wrong) < 1e-6, \
            f"a rate must be 1 for perfect predictions and 0 for all wrong; got {perfect}, {wrong}"
    else:
        assert perfect != wrong and (perfect > wrong) == metric.higher_is_better, \
            f"perfect predictions score {perfect}, wrong ones {wrong}, but higher_is_better is " \
            f"{metric.higher_is_better}"


def check_optimizer(spec: ComponentSpec, workdir: Path, system: Any, allow: NoGradient) -> None:
    import torch

    w = torch.nn.Parameter(torch.ones(3))
    opt = make_builder(system).optimizer(example_block("optimizer", spec, workdir, system), [w])
    (w ** 2).sum().backward()
    opt.step()
    assert not torch.equal(w.detach(), torch.ones(3)), "a step did not change the parameter"


def check_scheduler(spec: ComponentSpec, workdir: Path, system: Any, allow: NoGradient) -> None:
    import torch

    w = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([w], lr=0.1)
    sched = make_builder(system).scheduler(example_block("scheduler", spec, workdir, system), opt, epochs=5)
    for _ in range(5):
        opt.step()
        sched.step()
    lrs = [g["lr"] for g in opt.param_groups]
    assert all(lr >= 0 and lr == lr for lr in lrs), f"learning rate(s) {lrs} after 5 epochs"


def check_protocol(spec: ComponentSpec, workdir: Path, system: Any, allow: NoGradient) -> None:
    import torch

    from ..protocols import MissingProtocol

    block = example_block("missing", spec, workdir, system)
    if spec.name == "fixed" and "condition" not in block.params:
        block = type(block)(block.type, {**block.params, "condition": "at"})
    proto = make_builder(system).component("missing", block, {"seed": 0})
    assert isinstance(proto, MissingProtocol), "is not a mmtk.protocols.MissingProtocol"
    present = torch.ones(50, 3, dtype=torch.bool)
    mask = proto.train_mask(present, torch.Generator().manual_seed(0), MODALITIES)
    assert mask.shape == (50, 3) and mask.dtype == torch.bool, \
        f"train_mask gave {mask.dtype} {tuple(mask.shape)}, expected a (50, 3) bool mask"
    plan = proto.eval_conditions(MODALITIES, 20)
    assert plan.conditions, "eval_conditions gave no condition"
    assert set(plan.mean_over) <= {c.name for c in plan.conditions}, \
        "mean_over names a condition that is not evaluated"
    for cond in plan.conditions:
        assert cond.mask.shape == (20, 3) and cond.mask.any(1).all(), \
            f"condition {cond.name} leaves a sample with no modality"
    again = proto.eval_conditions(MODALITIES, 20)
    assert all(torch.equal(a.mask, b.mask) for a, b in zip(plan.conditions, again.conditions)), \
        "evaluation conditions must be deterministic"


def check_dataset(spec: ComponentSpec, workdir: Path, system: Any, allow: NoGradient) -> None:
    from ..data import Dataset, DataSplits

    required = [p for p in inspect.signature(spec.obj).parameters.values()
                if p.default is p.empty and p.name not in ("self", "seed")
                and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    assert not required or hasattr(spec.obj, "example_params"), \
        f"it needs {[p.name for p in required]}: give it an example_params(workdir) static " \
        "method that builds a tiny fixture under workdir and returns the parameters"
    ds = make_builder(system).dataset(example_block("dataset", spec, workdir, system))
    assert isinstance(ds, Dataset), "is not a mmtk.data.Dataset"
    splits = ds.load(ds.folds()[0])
    assert isinstance(splits, DataSplits), "load() did not return mmtk.data.DataSplits"
    assert tuple(sorted(ds.modalities)) == splits.modalities, \
        f".modalities {ds.modalities} differ from the loaded splits' {splits.modalities}"
    assert splits.num_classes > 0, "num_classes must be positive"
    assert int(splits.train.labels.max()) < splits.num_classes, "a label is >= num_classes"
    assert set(splits.train.ids).isdisjoint(splits.test.ids), "train and test share ids"


def check_parameter_docs(spec: ComponentSpec, workdir: Path, system: Any, allow: NoGradient) -> None:
    from ..docs import parameter_docs

    try:
        sig = inspect.signature(spec.obj)
    except (TypeError, ValueError):
        raise ContractSkip("no inspectable signature") from None
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        raise ContractSkip("accepts **kwargs: any documented name may be a parameter")
    unknown = sorted(set(parameter_docs(spec.obj)) - set(sig.parameters))
    assert not unknown, (f"its docstring's 'Parameters:' section documents {unknown}, which "
                         f"are not parameters; parameters are {', '.join(sig.parameters) or 'none'}")
