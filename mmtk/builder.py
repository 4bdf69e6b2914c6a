"""Turns a validated recipe tree into objects, looking every name up in the registry."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from .errors import MmtkError
from .metrics import Metric, as_metric
from .pipeline import Pipeline
from .recipe import DATA_KEYS, component_params
from .registry import Registry
from .schema import build


class Builder:
    def __init__(self, registry: Registry, base_dir: str | Path | None = None):
        self.registry = registry
        self.base_dir = Path(base_dir) if base_dir else None

    def component(self, kind: str, block: Any, context: dict | None = None,
                  reserved: dict | None = None) -> Any:
        name, params = component_params(block, reserved)
        spec = self.registry.get(kind, name)
        return build(spec.obj, params, context or {}, self.base_dir)

    def dataset(self, data_block: dict, seed: int = 0) -> Any:
        return self.component("dataset", data_block, {"seed": seed}, reserved=DATA_KEYS)

    def model(self, model: dict, in_dims: dict[str, int], num_classes: int, seed: int = 0,
              out_dim: int | None = None) -> Pipeline:
        """``out_dim``: the head's output size (default ``num_classes``; 1 for regression)."""
        modalities = tuple(sorted(in_dims))
        missing = [m for m in modalities if not (model.get("encoders") or {}).get(m)]
        if missing:
            raise MmtkError(f"model.encoders: the data has modalities {', '.join(missing)} "
                            "but no encoder is given for them")
        latent = model.get("latent_dim", 128)
        shared = {"modalities": modalities, "num_classes": num_classes, "latent_dim": latent,
                  "in_dims": dict(in_dims), "seed": seed}
        def build_encoder(m: str) -> nn.Module:
            return self.component("encoder", model["encoders"][m],
                                  {**shared, "in_dim": in_dims[m], "modality": m})

        encoders = {m: build_encoder(m) for m in modalities}
        shared["build_encoder"] = build_encoder  # slots that need encoder copies (teachers)
        slots = {s: self.component(s, model[s], shared) if model.get(s) else None
                 for s in ("aligner", "reconstructor", "refiner")}
        fuser = self.component("fuser", model["fuser"], shared)
        head = self.component("head", model["head"], {**shared, "in_dim": fuser.out_dim,
                                                      "out_dim": out_dim or num_classes})
        return Pipeline(encoders, fuser, head, **slots)

    def metrics(self, names: list[str]) -> dict[str, Metric]:
        """The named metric components, each as a :class:`Metric`."""
        return {n: as_metric(self.component("metric", n)) for n in names}

    def optimizer(self, block: Any, params: list[nn.Parameter]) -> Any:
        return self.component("optimizer", block, {"params": params})

    def scheduler(self, block: Any, optimizer: Any, epochs: int) -> Any:
        if not block:
            return None
        return self.component("scheduler", block, {"optimizer": optimizer, "epochs": epochs})
