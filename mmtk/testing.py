"""The registry-wide contract test, for mmtk's own plugins and for yours, in one line.

In your plugin's test suite (``pip install mmtk[test]``, or mmtk plus pytest)::

    from mmtk.testing import contract_test

    test_contract = contract_test("myplugin")      # entry-point name(s); none = every plugin

pytest then runs, for each component your plugin registers, the checks of its kind:

- model parts (encoder, aligner, reconstructor, refiner, fuser, head), inside a real
  pipeline (basic MLP encoders, concat fuser and MLP head around it): ``train_step`` —
  training forward on a batch where some samples have one modality only, finite logits and
  auxiliary losses, declared loss names, backward, **a gradient on every trainable
  parameter** (the failure names those without one) and finite gradients; ``absent_modality``
  — one modality absent for every sample, in training and evaluation, gives no NaN;
- encoders also: ``encoder_output`` — ``(B, latent_dim)`` — and ``padding`` — frames past a
  sample's length do not change its representation;
- ``loss``, ``metric``, ``optimizer``, ``scheduler``, ``missing`` and ``dataset`` components:
  the contract of their kind (see CONTRIBUTING.md);
- every component: ``parameter_docs`` — its ``Parameters:`` docstring section documents only
  real parameters;
- every selected plugin: ``load`` — it loaded. A plugin that fails to import, is disabled
  or is not installed makes this test fail rather than leaving nothing to run.

A component whose constructor needs more than the context values provides a static
``example_params(workdir) -> dict``; one that needs partners in other slots provides
``contract_partners() -> {slot: {"type": ..., ...}}``; an encoder with its own input format
provides ``example_input(n, in_dim) -> (x, lengths)``. A parameter that legitimately gets no
gradient from one training step (e.g. a teacher trained in an earlier stage and frozen by the
recipe) is allowed explicitly, with the reason::

    test_contract = contract_test("myplugin", allow_no_gradient={
        "reconstructor/myplugin:distill": {"teacher.": "trained in stage 1, frozen in stage 2"}})

The checks are plain functions raising ``AssertionError`` (:func:`run_case`); only
:func:`contract_test` needs pytest.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from .errors import MmtkError
from .registry import ComponentSpec

MODALITIES = ("audio", "text", "visual")
IN_DIMS = {"audio": 12, "text": 10, "visual": 8}
LATENT_DIM = 16
NUM_CLASSES = 3
MODEL_PARTS = ("encoder", "aligner", "reconstructor", "refiner", "fuser", "head")
DEFAULT_PARTS = {"encoder": "basic:mlp", "fuser": "basic:concat", "head": "basic:mlp"}

CHECKS: dict[str, tuple[str, ...]] = {
    "encoder": ("train_step", "absent_modality", "encoder_output", "padding"),
    **{k: ("train_step", "absent_modality") for k in MODEL_PARTS[1:]},
    "loss": ("loss",), "metric": ("metric",), "optimizer": ("optimizer",),
    "scheduler": ("scheduler",), "missing": ("protocol",), "dataset": ("dataset",),
}

NoGradient = Mapping[str, Mapping[str, str]]  # "kind/provider:name" -> {param prefix: reason}


class ContractSkip(Exception):
    """A check that does not apply to this component (reported as skipped, with the reason)."""


@dataclass(frozen=True)
class Case:
    """One check of one component, or the ``load`` check of one plugin."""

    check: str
    plugin: str
    spec: ComponentSpec | None = None
    problem: str | None = None  # why the plugin cannot be tested (``load`` cases)

    @property
    def id(self) -> str:
        if self.spec is None:
            return f"plugin/{self.plugin}::{self.check}"
        return f"{self.spec.kind}/{self.spec.qualified_name}::{self.check}"


# -- selecting what to test ----------------------------------------------------------------
def contract_cases(*plugins: str, distribution: str | None = None,
                   system: Any = None) -> list[Case]:
    """The cases for the named plugins (or those of ``distribution``; or every plugin)."""
    if system is None:
        from .plugins import load_plugins
        system = load_plugins()
    statuses = system.statuses
    if plugins:
        chosen = list(dict.fromkeys(plugins))
    elif distribution is not None:
        chosen = [n for n, s in statuses.items() if s.distribution == distribution]
        if not chosen:
            return [Case("load", distribution, problem=f"no installed plugin comes from the "
                         f"distribution '{distribution}'; is it installed in this environment?")]
    else:
        chosen = list(statuses)
    cases = []
    for name in chosen:
        status = statuses.get(name)
        if status is None:
            cases.append(Case("load", name, problem=f"no plugin named '{name}' is installed "
                              f"(installed: {', '.join(sorted(statuses)) or 'none'}); check the "
                              "entry point in your pyproject.toml and reinstall the package"))
        elif status.status != "ok":
            why = status.error if status.status == "failed" else "it is disabled by MMTK_LOAD_PLUGINS/MMTK_DISABLE_PLUGINS"
            cases.append(Case("load", name, problem=f"plugin '{name}' ({status.source}) "
                              f"{'failed to load' if status.status == 'failed' else 'did not load'}: {why}"))
        else:
            cases.append(Case("load", name))
            for spec in system.registry.list():
                if spec.provider.plugin == name:
                    cases += [Case(check, name, spec) for check in ("parameter_docs",) + CHECKS.get(spec.kind, ())]
    return cases


def contract_test(*plugins: str, distribution: str | None = None,
                  allow_no_gradient: NoGradient | None = None, system: Any = None) -> Callable:
    """A pytest test function parametrized over the components of ``plugins``; assign it to
    a ``test_*`` name in a test module. See the module docstring."""
    import pytest

    if system is None:
        from .plugins import load_plugins
        system = load_plugins()
    allow = _checked_allowance(allow_no_gradient or {}, system)
    cases = contract_cases(*plugins, distribution=distribution, system=system)

    @pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in cases])
    def test_contract(case: Case, tmp_path: Path) -> None:
        try:
            run_case(case, tmp_path, system, allow)
        except ContractSkip as skip:
            pytest.skip(str(skip))

    return test_contract


def _checked_allowance(allow: NoGradient, system: Any) -> dict[str, dict[str, str]]:
    known = {f"{s.kind}/{s.qualified_name}" for s in system.registry.list()}
    for key, prefixes in allow.items():
        if key not in known:
            raise MmtkError(f"allow_no_gradient names '{key}', which is not a registered component; "
                            "write 'kind/provider:name', e.g. 'reconstructor/myplugin:distill'")
        for prefix, reason in prefixes.items():
            if not isinstance(reason, str) or not reason.strip():
                raise MmtkError(f"allow_no_gradient['{key}']['{prefix}'] needs a reason: say why "
                                "these parameters get no gradient in a training step")
    return {k: dict(v) for k, v in allow.items()}


# -- running one case ----------------------------------------------------------------------
def run_case(case: Case, workdir: Path, system: Any, allow_no_gradient: NoGradient = {}) -> None:
    """Run one check; raises AssertionError naming what is wrong, or :class:`ContractSkip`."""
    if case.check == "load":
        assert case.problem is None, case.problem
        return
    spec = case.spec
    checker = _CHECKERS[case.check]
    try:
        checker(spec, Path(workdir), system, allow_no_gradient)
    except (AssertionError, MmtkError) as exc:  # an MmtkError here is mmtk naming the fault
        raise AssertionError(f"{spec.kind} '{spec.qualified_name}' ({spec.provider}) fails "
                             f"'{case.check}': {exc}") from exc


def _block(kind: str, ref: Any, workdir: Path, system: Any) -> Any:
    """A recipe component block for ``ref`` (a spec, a name or a ``{type: ...}`` mapping)."""
    from .recipe import Component

    if isinstance(ref, ComponentSpec):
        example = getattr(ref.obj, "example_params", None)
        return Component(ref.qualified_name, dict(example(workdir)) if example else {})
    if isinstance(ref, str):
        ref = {"type": ref}
    params = {k: v for k, v in ref.items() if k != "type"}
    spec = system.registry.get(kind, ref["type"])
    return Component(spec.qualified_name, params)


def _builder(system: Any) -> Any:
    from .builder import Builder
    return Builder(system.registry)


def build_pipeline(spec: ComponentSpec, workdir: Path, system: Any) -> tuple[Any, dict[str, Any]]:
    """``spec`` inside a pipeline of default parts and its own ``contract_partners``;
    returns the pipeline and ``{parameter prefix: block}`` for every part."""
    from .recipe import Model

    parts: dict[str, Any] = {"encoder": DEFAULT_PARTS["encoder"], "fuser": DEFAULT_PARTS["fuser"],
                             "head": DEFAULT_PARTS["head"]}
    partners = getattr(spec.obj, "contract_partners", None)
    if partners is not None:
        parts.update({("encoder" if k == "encoders" else k): v for k, v in partners().items()})
    parts[spec.kind] = spec
    blocks = {k: _block(k, v, workdir, system) for k, v in parts.items()}
    model = Model(latent_dim=LATENT_DIM, encoders={m: blocks["encoder"] for m in MODALITIES},
                  aligner=blocks.get("aligner"), reconstructor=blocks.get("reconstructor"),
                  refiner=blocks.get("refiner"), fuser=blocks["fuser"], head=blocks["head"])
    try:
        pipe = _builder(system).model(model, dict(IN_DIMS), num_classes=NUM_CLASSES, seed=0)
    except MmtkError as exc:
        raise AssertionError(f"the pipeline around it could not be built: {exc}") from exc
    pipe.latent_dim = LATENT_DIM  # lets the pipeline check each encoder's output width
    prefixes = {f"encoders.{m}.": blocks["encoder"] for m in MODALITIES}
    prefixes.update({f"{k}.": b for k, b in blocks.items() if k != "encoder"})
    return pipe, prefixes


def make_batch(spec: ComponentSpec | None = None, n: int = 8, frames: int = 5, seed: int = 0,
               absent: str | None = None) -> tuple[Any, Any]:
    """(complete batch, present mask). Every modality is present in some samples, alone and
    with each other one; with ``absent`` that modality is absent from every sample."""
    import torch
    from .batch import ModalityBatch

    g = torch.Generator().manual_seed(seed)
    own_input = getattr(spec.obj, "example_input", None) if spec is not None and spec.kind == "encoder" else None
    inputs, lengths = {}, {}
    for m in MODALITIES:
        if own_input is not None:
            inputs[m], lengths[m] = own_input(n, IN_DIMS[m])
        else:
            inputs[m] = torch.randn(n, frames, IN_DIMS[m], generator=g)
            lengths[m] = torch.randint(1, frames + 1, (n,), generator=g)
    rows = ["a", "t", "v", "atv", "at", "av", "tv", "at"]
    present = torch.tensor([[m[0] in rows[i % len(rows)] for m in MODALITIES] for i in range(n)])
    if absent is not None:
        present[:, MODALITIES.index(absent)] = False
        present[~present.any(1), MODALITIES.index("audio" if absent != "audio" else "text")] = True
    truth = ModalityBatch(inputs, torch.ones(n, len(MODALITIES), dtype=torch.bool), MODALITIES,
                          torch.arange(n) % NUM_CLASSES, [f"s{i}" for i in range(n)], lengths)
    return truth, present


def _allowed(name: str, prefixes: dict[str, Any], system: Any, allow: NoGradient) -> str | None:
    """The declared reason why parameter ``name`` of the pipeline may get no gradient."""
    for part_prefix, block in prefixes.items():
        if not name.startswith(part_prefix):
            continue
        kind = "encoder" if part_prefix.startswith("encoders.") else part_prefix.rstrip(".")
        spec = system.registry.get(kind, block.qualified)
        for prefix, reason in allow.get(f"{kind}/{spec.qualified_name}", {}).items():
            if name[len(part_prefix):].startswith(prefix):
                return reason
    return None


def _finite_forward(pipe: Any, truth: Any, present: Any, training: bool) -> Any:
    import torch

    pipe.train(training)
    out = pipe(truth.masked(present), truth=truth if training else None)
    when = "training" if training else "evaluation"
    assert tuple(out.logits.shape) == (truth.size, NUM_CLASSES), \
        f"logits have shape {tuple(out.logits.shape)} in {when}, expected {(truth.size, NUM_CLASSES)}"
    assert torch.isfinite(out.logits).all(), f"NaN/inf logits in {when}"
    for name, value in out.aux.items():
        assert value.dim() == 0, f"auxiliary loss '{name}' is not a scalar (shape {tuple(value.shape)})"
        assert torch.isfinite(value), f"auxiliary loss '{name}' is not finite in {when}"
    declared = pipe.declared_losses()
    assert set(out.aux) <= declared, \
        f"emits auxiliary losses {sorted(set(out.aux) - declared)} it does not declare in aux_losses"
    return out


def check_train_step(spec: ComponentSpec, workdir: Path, system: Any, allow: NoGradient) -> None:
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    pipe, prefixes = build_pipeline(spec, workdir, system)
    truth, present = make_batch(spec)
    out = _finite_forward(pipe, truth, present, training=True)
    loss = F.cross_entropy(out.logits, truth.labels) + sum(out.aux.values())
    loss.backward()
    trainable = [(n, p) for n, p in pipe.named_parameters() if p.requires_grad]
    assert trainable, "the pipeline has no trainable parameter"
    without = [n for n, p in trainable if p.grad is None and _allowed(n, prefixes, system, allow) is None]
    shown = ", ".join(without[:12]) + (f", … ({len(without) - 12} more)" if len(without) > 12 else "")
    assert not without, (
        f"{len(without)} trainable parameter(s) got no gradient from the task loss plus the "
        f"auxiliary losses: {shown}. A parameter the training step never uses cannot learn: "
        "use it, remove it, or set requires_grad=False; if it is trained elsewhere (e.g. a "
        "teacher frozen by the recipe), allow it in contract_test(allow_no_gradient={"
        f"'{spec.kind}/{spec.qualified_name}': {{'prefix.': 'why'}}}})")
    bad = [n for n, p in trainable if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not bad, f"NaN/inf gradient on {', '.join(bad[:12])}"
    with torch.no_grad():
        _finite_forward(pipe, truth, present, training=False)


def check_absent_modality(spec: ComponentSpec, workdir: Path, system: Any, allow: NoGradient) -> None:
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    pipe, _ = build_pipeline(spec, workdir, system)
    truth, present = make_batch(spec, absent="visual")
    out = _finite_forward(pipe, truth, present, training=True)
    (F.cross_entropy(out.logits, truth.labels) + sum(out.aux.values())).backward()
    bad = [n for n, p in pipe.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not bad, f"NaN/inf gradient with 'visual' absent from every sample on {', '.join(bad[:12])}"
    with torch.no_grad():
        _finite_forward(pipe, truth, present, training=False)


def _encoder(spec: ComponentSpec, workdir: Path, system: Any, in_dim: int, latent_dim: int) -> Any:
    context = {"in_dim": in_dim, "latent_dim": latent_dim, "modality": "audio", "modalities": MODALITIES,
               "in_dims": dict(IN_DIMS, audio=in_dim), "num_classes": NUM_CLASSES, "seed": 0}
    return _builder(system).component("encoder", _block("encoder", spec, workdir, system), context)


def check_encoder_output(spec: ComponentSpec, workdir: Path, system: Any, allow: NoGradient) -> None:
    import torch

    enc = _encoder(spec, workdir, system, IN_DIMS["audio"], LATENT_DIM)
    truth, _ = make_batch(spec)
    for training in (True, False):
        enc.train(training)
        with torch.no_grad():
            out = enc(truth.inputs["audio"], truth.lengths.get("audio"))
        assert isinstance(out, torch.Tensor), f"forward returned {type(out).__name__}, not a tensor"
        assert tuple(out.shape) == (truth.size, LATENT_DIM), \
            f"forward returned shape {tuple(out.shape)}; an encoder returns (batch, latent_dim) = " \
            f"{(truth.size, LATENT_DIM)}"


def check_padding(spec: ComponentSpec, workdir: Path, system: Any, allow: NoGradient) -> None:
    """Frames past a sample's length must not change its representation."""
    import torch

    if hasattr(spec.obj, "example_input"):
        raise ContractSkip("encoder with its own input format: check padding in its plugin's tests")
    enc = _encoder(spec, workdir, system, 6, 8)
    enc.eval()
    x = torch.randn(3, 6, 6, generator=torch.Generator().manual_seed(1))
    lengths = torch.tensor([2, 4, 6])
    padded = x.clone()
    for i, n in enumerate(lengths.tolist()):
        padded[i, n:] = 100.0
    with torch.no_grad():
        a, b = enc(x, lengths), enc(padded, lengths)
    assert torch.allclose(a, b, rtol=1e-4, atol=1e-5), \
        "changing frames past a sample's length (lengths) changed its representation: mask them"


def check_loss(spec: ComponentSpec, workdir: Path, system: Any, allow: NoGradient) -> None:
    import torch
    from .task import loss_target

    loss_fn = _builder(system).component("loss", _block("loss", spec, workdir, system))
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
    from .metrics import as_metric, confusion_matrix

    metric = as_metric(_builder(system).component("metric", spec.qualified_name))
    if metric.reads == "regression":
        # no |score| < 0.5 and no zero, so every sign-flipped prediction changes every class
        y = torch.tensor([-2.6, -1.2, -0.7, 0.6, 1.4, 2.8])
        perfect, wrong = metric(y, y), metric(-y, y)
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
    opt = _builder(system).optimizer(_block("optimizer", spec, workdir, system), [w])
    (w ** 2).sum().backward()
    opt.step()
    assert not torch.equal(w.detach(), torch.ones(3)), "a step did not change the parameter"


def check_scheduler(spec: ComponentSpec, workdir: Path, system: Any, allow: NoGradient) -> None:
    import torch

    w = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([w], lr=0.1)
    sched = _builder(system).scheduler(_block("scheduler", spec, workdir, system), opt, epochs=5)
    for _ in range(5):
        opt.step()
        sched.step()
    lrs = [g["lr"] for g in opt.param_groups]
    assert all(lr >= 0 and lr == lr for lr in lrs), f"learning rate(s) {lrs} after 5 epochs"


def check_protocol(spec: ComponentSpec, workdir: Path, system: Any, allow: NoGradient) -> None:
    import torch
    from .protocols import MissingProtocol

    block = _block("missing", spec, workdir, system)
    if spec.name == "fixed" and "condition" not in block.params:
        block = type(block)(block.type, {**block.params, "condition": "at"})
    proto = _builder(system).component("missing", block, {"seed": 0})
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
    from .data import DataSplits, Dataset

    required = [p for p in inspect.signature(spec.obj).parameters.values()
                if p.default is p.empty and p.name not in ("self", "seed")
                and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    assert not required or hasattr(spec.obj, "example_params"), \
        f"it needs {[p.name for p in required]}: give it an example_params(workdir) static " \
        "method that builds a tiny fixture under workdir and returns the parameters"
    ds = _builder(system).dataset(_block("dataset", spec, workdir, system))
    assert isinstance(ds, Dataset), "is not a mmtk.data.Dataset"
    splits = ds.load(ds.folds()[0])
    assert isinstance(splits, DataSplits), "load() did not return mmtk.data.DataSplits"
    assert tuple(sorted(ds.modalities)) == splits.modalities, \
        f".modalities {ds.modalities} differ from the loaded splits' {splits.modalities}"
    assert splits.num_classes > 0, "num_classes must be positive"
    assert int(splits.train.labels.max()) < splits.num_classes, "a label is >= num_classes"
    assert set(splits.train.ids).isdisjoint(splits.test.ids), "train and test share ids"


def check_parameter_docs(spec: ComponentSpec, workdir: Path, system: Any, allow: NoGradient) -> None:
    from .docs import parameter_docs

    try:
        sig = inspect.signature(spec.obj)
    except (TypeError, ValueError):
        raise ContractSkip("no inspectable signature") from None
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        raise ContractSkip("accepts **kwargs: any documented name may be a parameter")
    unknown = sorted(set(parameter_docs(spec.obj)) - set(sig.parameters))
    assert not unknown, (f"its docstring's 'Parameters:' section documents {unknown}, which "
                         f"are not parameters; parameters are {', '.join(sig.parameters) or 'none'}")


_CHECKERS: dict[str, Callable[[ComponentSpec, Path, Any, NoGradient], None]] = {
    "train_step": check_train_step, "absent_modality": check_absent_modality,
    "encoder_output": check_encoder_output, "padding": check_padding, "loss": check_loss,
    "metric": check_metric, "optimizer": check_optimizer, "scheduler": check_scheduler,
    "protocol": check_protocol, "dataset": check_dataset, "parameter_docs": check_parameter_docs,
}
