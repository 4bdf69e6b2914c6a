"""What every contract check shares: the test model's sizes, blocks and the builder."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ..registry import ComponentSpec

MODALITIES = ("audio", "text", "visual")
IN_DIMS = {"audio": 12, "text": 10, "visual": 8}
LATENT_DIM = 16
NUM_CLASSES = 3
MODEL_PARTS = ("encoder", "aligner", "reconstructor", "refiner", "fuser", "head")
SLOT_KINDS = ("aligner", "reconstructor", "refiner", "fuser")   # the parts that may get labels
DEFAULT_PARTS = {"encoder": "basic:mlp", "fuser": "basic:concat", "head": "basic:mlp"}

CHECKS: dict[str, tuple[str, ...]] = {
    "encoder": ("train_step", "absent_modality", "encoder_output", "padding"),
    **{k: ("train_step", "absent_modality") for k in MODEL_PARTS[1:]},
    **{k: ("train_step", "absent_modality", "unlabelled") for k in SLOT_KINDS},
    "reconstructor": ("train_step", "absent_modality", "unlabelled", "input_imputer"),
    "loss": ("loss",), "metric": ("metric",), "optimizer": ("optimizer",),
    "scheduler": ("scheduler",), "missing": ("protocol",), "dataset": ("dataset",),
}

NoGradient = Mapping[str, Mapping[str, str]]  # "kind/provider:name" -> {param prefix: reason}


class ContractSkip(Exception):
    """A check that does not apply to this component (reported as skipped, with the reason)."""


def example_block(kind: str, ref: Any, workdir: Path, system: Any) -> Any:
    """A recipe component block for ``ref`` (a spec, a name or a ``{type: ...}`` mapping)."""
    from ..recipe import Component

    if isinstance(ref, ComponentSpec):
        example = getattr(ref.obj, "example_params", None)
        return Component(ref.qualified_name, dict(example(workdir)) if example else {})
    if isinstance(ref, str):
        ref = {"type": ref}
    params = {k: v for k, v in ref.items() if k != "type"}
    spec = system.registry.get(kind, ref["type"])
    return Component(spec.qualified_name, params)


def make_builder(system: Any) -> Any:
    from ..builder import Builder
    return Builder(system.registry)
