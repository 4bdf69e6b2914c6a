"""Contract check of slots with unlabelled samples: a loss that reads labels never sees an
unlabelled row, and a label-free loss uses unlabelled rows too.

The batch has labelled and unlabelled rows (label -1) of every missing pattern. The slot's
supervised losses (``label_losses``) must not change when the unlabelled rows' labels
become other negative values and their features change; each label-free loss that depends
on the batch at all must change when only the unlabelled rows' features change; and a batch
without any labelled row must give finite losses, its supervised ones 0 (or absent). A
training forward must not change a non-persistent buffer (learnt state that would be lost on
saving, and that ``train.unlabeled: auto`` could not see).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from ..registry import ComponentSpec
from .common import NoGradient
from .model_checks import build_pipeline, make_batch

ROWS = 12


def unlabelled_rows() -> Any:
    """(ROWS,) bool: the unlabelled rows of :func:`make_batch`'s 12: shown t, av, tv and atv,
    of classes 1, 1, 0, 2 (the labelled rows keep every class and pattern)."""
    import torch

    return torch.isin(torch.arange(ROWS), torch.tensor([1, 4, 6, 11]))


def _own_losses(pipe: Any, kind: str, truth: Any, present: Any) -> dict[str, Any]:
    """The auxiliary losses of the part under test on one training forward, seeded."""
    import torch

    torch.manual_seed(0)
    with torch.no_grad():
        out = pipe(truth.masked(present), truth=truth)
    return {k: v for k, v in out.aux.items() if k.startswith(f"{kind}/")}


def _new_features(truth: Any, rows: Any, seed: int) -> Any:
    """``truth`` with the features of ``rows`` replaced by other random values."""
    import torch

    g = torch.Generator().manual_seed(seed)
    inputs = {}
    for m, x in truth.inputs.items():
        other = (torch.randint_like(x, 0, 5) if not x.is_floating_point()
                 else 3 * torch.randn(x.shape, generator=g, dtype=x.dtype))
        inputs[m] = torch.where(rows.view(-1, *([1] * (x.dim() - 1))), other, x)
    return replace(truth, inputs=inputs)


def _same(a: Any, b: Any) -> bool:
    import torch

    return bool(torch.allclose(a.float(), b.float(), rtol=1e-5, atol=1e-6))


def check_unlabelled(spec: ComponentSpec, workdir: Path, system: Any, allow: NoGradient) -> None:
    import torch

    from ..pipeline import label_losses

    pipe, _ = build_pipeline(spec, workdir, system)
    pipe.train(True)
    part = getattr(pipe, spec.kind)
    supervised = {f"{spec.kind}/{k}" for k in label_losses(part)}
    truth, present = make_batch(spec, n=ROWS)
    unl = unlabelled_rows()
    base = replace(truth, labels=torch.where(unl, torch.full_like(truth.labels, -1), truth.labels))
    _own_losses(pipe, spec.kind, base, present)  # a warm-up (lazy or data-dependent set-up)
    hidden = _non_persistent_buffers(part)
    ref = _own_losses(pipe, spec.kind, base, present)
    garbage = replace(_new_features(base, unl, 1),
                      labels=torch.where(unl, -2 - torch.arange(ROWS), base.labels))
    changed = _own_losses(pipe, spec.kind, garbage, present)
    after = _non_persistent_buffers(part)
    for name, before in hidden.items():
        assert before.shape == after[name].shape and torch.equal(before, after[name]), (
            f"a training forward changed its non-persistent buffer '{name}': state learnt from the "
            "batches must live in a persistent buffer (register_buffer(..., persistent=True)), so "
            "that it is saved with the model and train.unlabeled: auto knows the slot learns from "
            "unlabelled samples (Pipeline.unlabeled_users)")
    for name in sorted(supervised & set(ref)):
        assert _same(ref[name], changed.get(name, ref[name])), (
            f"its supervised loss '{name}' changed ({float(ref[name]):.6g} -> "
            f"{float(changed[name]):.6g}) when only the unlabelled rows (label -1) changed their "
            "features and negative labels: compute it on state.labeled rows only, or, if it "
            "reads no label, leave it out of label_losses")
    _check_label_free(pipe, spec.kind, base, present, ref, unl, set(ref) - supervised)
    _check_none_labelled(pipe, spec.kind, base, present, supervised)


def _non_persistent_buffers(part: Any) -> dict[str, Any]:
    """Copies of the buffers of ``part`` that its state_dict leaves out."""
    saved = set(part.state_dict())
    return {name: b.detach().clone() for name, b in part.named_buffers() if name not in saved}


def _check_label_free(pipe: Any, kind: str, base: Any, present: Any, ref: dict, unl: Any,
                      label_free: set[str]) -> None:
    import torch

    everything = _own_losses(pipe, kind, _new_features(base, torch.ones_like(unl), 2), present)
    only_unlabelled = _own_losses(pipe, kind, _new_features(base, unl, 2), present)
    for name in sorted(label_free):
        if name not in everything or _same(ref[name], everything[name]):
            continue  # it does not depend on the batch's features at all (e.g. a weight penalty)
        assert name in only_unlabelled and not _same(ref[name], only_unlabelled[name]), (
            f"its label-free loss '{name}' ignores the unlabelled rows (it did not change when "
            "their features changed): a loss that reads no label should learn from unlabelled "
            "samples too; if it does read labels, list it in label_losses")


def _check_none_labelled(pipe: Any, kind: str, base: Any, present: Any, supervised: set[str]) -> None:
    import torch

    nobody = replace(base, labels=torch.full_like(base.labels, -1))
    losses = _own_losses(pipe, kind, nobody, present)
    for name, value in losses.items():
        assert torch.isfinite(value), f"loss '{name}' is not finite on a batch without any label"
        if name in supervised:
            assert float(value) == 0.0, (
                f"its supervised loss '{name}' is {float(value):.6g} on a batch without any "
                "labelled row; it must be 0 there (e.g. mmtk.ops.zero_loss)")
