"""Contract checks of model parts inside a real pipeline: a training step with a gradient on
every parameter, absent modalities, encoder output width, padding invariance."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import MmtkError
from ..registry import ComponentSpec
from .common import (
    DEFAULT_PARTS,
    IN_DIMS,
    LATENT_DIM,
    MODALITIES,
    NUM_CLASSES,
    ContractSkip,
    NoGradient,
    example_block,
    make_builder,
)


def build_pipeline(spec: ComponentSpec, workdir: Path, system: Any) -> tuple[Any, dict[str, Any]]:
    """``spec`` inside a pipeline of default parts and its own ``contract_partners``;
    returns the pipeline and ``{parameter prefix: block}`` for every part."""
    from ..recipe import Model

    parts: dict[str, Any] = {"encoder": DEFAULT_PARTS["encoder"], "fuser": DEFAULT_PARTS["fuser"],
                             "head": DEFAULT_PARTS["head"]}
    partners = getattr(spec.obj, "contract_partners", None)
    if partners is not None:
        parts.update({("encoder" if k == "encoders" else k): v for k, v in partners().items()})
    parts[spec.kind] = spec
    blocks = {k: example_block(k, v, workdir, system) for k, v in parts.items()}
    model = Model(latent_dim=LATENT_DIM, encoders={m: blocks["encoder"] for m in MODALITIES},
                  aligner=blocks.get("aligner"), reconstructor=blocks.get("reconstructor"),
                  refiner=blocks.get("refiner"), fuser=blocks["fuser"], head=blocks["head"])
    try:
        pipe = make_builder(system).model(model, dict(IN_DIMS), num_classes=NUM_CLASSES, seed=0)
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

    from ..batch import ModalityBatch

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
    return make_builder(system).component("encoder", example_block("encoder", spec, workdir, system), context)


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


def check_input_imputer(spec: ComponentSpec, workdir: Path, system: Any, allow: NoGradient) -> None:
    """An :class:`~mmtk.pipeline.InputImputer`: fitted on a training split, it leaves observed
    inputs exactly as they are, marks what it fills in, fills only absent cells with finite
    values, and its fit travels in the model's state dict."""
    import torch

    from ..data import TensorData
    from ..pipeline import InputImputer

    pipe, _ = build_pipeline(spec, workdir, system)
    imputer = pipe.reconstructor
    if not isinstance(imputer, InputImputer):
        raise ContractSkip("not an input imputer")
    truth, present = make_batch(spec, n=24)
    imputer.fit(TensorData(dict(truth.inputs), truth.labels, list(truth.ids), lengths=dict(truth.lengths)))
    masked = truth.masked(present)
    out = imputer.impute(masked)
    assert out.present.shape == present.shape and out.present.dtype == torch.bool, \
        "impute must return a batch whose present is a (B, M) bool mask"
    assert bool((out.present | ~present).all()), "impute marked an observed modality absent"
    for i, m in enumerate(MODALITIES):
        seen = present[:, i]
        assert torch.equal(out.inputs[m][seen], masked.inputs[m][seen]), f"impute changed observed {m} inputs"
        assert torch.isfinite(out.inputs[m]).all(), f"impute produced NaN/inf {m} inputs"
    rebuilt, _ = build_pipeline(spec, workdir, system)
    rebuilt.load_state_dict(pipe.state_dict())
    again = rebuilt.reconstructor.impute(masked)
    for m in MODALITIES:
        assert torch.equal(again.inputs[m], out.inputs[m]), \
            f"the fit is not in the state dict: a reloaded model imputes {m} differently (keep it in buffers)"
