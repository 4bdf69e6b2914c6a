"""Turns the typed recipe's components into objects, looking each up in the registry.

A component is built from its recipe parameters plus the context values its kind is given
(:data:`mmtk.schema.CONTEXT_BY_KIND`). An error raised by a plugin's constructor is reported
naming the recipe path, the component and the plugin.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from .component_build import build_component
from .errors import MmtkError
from .metrics import Metric, as_metric
from .pipeline import Pipeline
from .recipe import Component, Model
from .registry import Registry


class Builder:
    """Builds components of a resolved recipe. ``base_dir`` resolves relative paths of blocks
    given directly as mappings (a resolved recipe's paths are already absolute)."""

    def __init__(self, registry: Registry, base_dir: str | Path | None = None):
        self.registry = registry
        self.base_dir = Path(base_dir) if base_dir else None

    def component(self, kind: str, comp: Component | dict | str, context: dict | None = None,
                  where: str | None = None) -> Any:
        return build_component(self.registry, kind, comp, context, where, self.base_dir)

    def dataset(self, comp: Component | dict, seed: int = 0) -> Any:
        return self.component("dataset", comp, {"seed": seed}, "data")

    def model(self, model: Model | dict, in_dims: dict[str, int], num_classes: int, seed: int = 0,
              out_dim: int | None = None) -> Pipeline:
        """``out_dim``: the head's output size (default ``num_classes``; 1 for regression)."""
        if isinstance(model, dict):
            model = model_from_mapping(model, self.registry)
        modalities = tuple(sorted(in_dims))
        missing = [m for m in modalities if m not in model.encoders]
        if missing:
            raise MmtkError(f"model.encoders: the data has modalities {', '.join(missing)} "
                            "but no encoder is given for them")
        shared = {"modalities": modalities, "num_classes": num_classes,
                  "latent_dim": model.latent_dim, "in_dims": dict(in_dims), "seed": seed}

        def build_encoder(m: str) -> nn.Module:
            return self.component("encoder", model.encoders[m],
                                  {**shared, "in_dim": in_dims[m], "modality": m}, f"model.encoders.{m}")

        encoders = {m: build_encoder(m) for m in modalities}
        shared["build_encoder"] = build_encoder  # slots that need encoder copies (teachers)
        slots = {s: self.component(s, getattr(model, s), shared, f"model.{s}")
                 if getattr(model, s) is not None else None
                 for s in ("aligner", "reconstructor", "refiner")}
        fuser = self.component("fuser", model.fuser, shared, "model.fuser")
        head = self.component("head", model.head, {**shared, "in_dim": fuser.out_dim,
                                                   "out_dim": out_dim or num_classes}, "model.head")
        pipeline = Pipeline(encoders, fuser, head, **slots)
        pipeline.latent_dim = model.latent_dim  # so an encoder of the wrong width is named
        return pipeline

    def metrics(self, names: list[str]) -> dict[str, Metric]:
        """The named metric components, each as a :class:`Metric`."""
        return {n: as_metric(self.component("metric", n, where=f"eval.metrics ({n})")) for n in names}

    def optimizer(self, comp: Component, params: list[nn.Parameter]) -> Any:
        return self.component("optimizer", comp, {"params": params}, "train.optimizer")

    def scheduler(self, comp: Component | None, optimizer: Any, epochs: int) -> Any:
        if comp is None:
            return None
        return self.component("scheduler", comp, {"optimizer": optimizer, "epochs": epochs},
                              "train.scheduler")


def model_from_mapping(node: dict, registry: Registry) -> Model:
    """A :class:`Model` from a ``model:`` mapping (for code that builds models directly); absent
    keys take the section's defaults."""
    from .recipe.resolve import section_from_mapping
    return section_from_mapping(Model, node, registry)
