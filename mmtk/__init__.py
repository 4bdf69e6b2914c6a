"""mmtk: a plugin-based PyTorch toolkit for incomplete multimodal learning.

The public surface a plugin imports, built-in or not: ``import mmtk`` then ``mmtk.Slot``,
``mmtk.DataError``, ... or ``from mmtk import Slot, State``. Names are resolved on first use
(PEP 562), so ``import mmtk`` and ``mmtk --help`` stay fast and do not import torch.
"""
from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .hookspecs import RegisterCommand, RegisterComponent, RegisterRecipe, RunInfo, hookimpl, hookspec

__version__ = "0.1.0"

# public name -> the module that defines it
_LAZY: dict[str, str] = {
    # errors a plugin raises for bad input (printed without a traceback, exit status 2)
    **dict.fromkeys(["MmtkError", "RecipeError", "DataError", "PluginError", "NonFiniteLossError",
                     "Problem", "did_you_mean"], "mmtk.errors"),
    # model slots and the state they pass along
    **dict.fromkeys(["Slot", "Fuser", "InputImputer", "State", "Targets"], "mmtk.pipeline"),
    # the data contract and datasets
    **dict.fromkeys(["ModalityBatch", "condition_code", "parse_condition"], "mmtk.batch"),
    "Dataset": "mmtk.dataset",
    **dict.fromkeys(["DataSplits", "TensorData", "stratified_split"], "mmtk.data"),
    "LazyFeatures": "mmtk.lazy",
    # missing-modality protocols
    **dict.fromkeys(["MissingProtocol", "EvalCondition", "EvalPlan", "exact_rate_mask"], "mmtk.protocols"),
    # metrics
    **dict.fromkeys(["Metric", "confusion_matrix", "accuracy", "macro_recall", "macro_f1",
                     "weighted_f1", "mean_absolute_error", "pearson"], "mmtk.metrics"),
    # parameter limits declared next to a type: Annotated[int, Ge(1)]
    **dict.fromkeys(["Constraint", "Ge", "Gt", "Le", "Lt", "Finite", "NonEmpty", "Matches"],
                    "mmtk.constraints"),
    "KINDS": "mmtk.registry",
}

# Public modules, imported as ``from mmtk import ops``: shared tensor helpers, safe loading of
# data files, the generic arrays format, plugin.py helpers, the metric functions, the
# contract test. Plugins import from ``mmtk`` and these modules only (tests check it).
PUBLIC_MODULES = ("ops", "safeload", "arrays_format", "plugin_kit", "metrics", "testing")

__all__ = sorted(["hookimpl", "hookspec", "RegisterComponent", "RegisterRecipe", "RegisterCommand",
                  "RunInfo", "__version__", "PUBLIC_MODULES", *_LAZY, *PUBLIC_MODULES])


def __getattr__(name: str) -> Any:
    if name in PUBLIC_MODULES:
        return import_module(f"mmtk.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mmtk' has no attribute '{name}'")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(PUBLIC_MODULES))


if TYPE_CHECKING:  # what type checkers and IDEs see; nothing here runs
    from .batch import ModalityBatch, condition_code, parse_condition
    from .constraints import Constraint, Finite, Ge, Gt, Le, Lt, Matches, NonEmpty
    from .data import DataSplits, TensorData, stratified_split
    from .dataset import Dataset
    from .errors import DataError, MmtkError, NonFiniteLossError, PluginError, Problem, RecipeError, did_you_mean
    from .lazy import LazyFeatures
    from .metrics import (
        Metric,
        accuracy,
        confusion_matrix,
        macro_f1,
        macro_recall,
        mean_absolute_error,
        pearson,
        weighted_f1,
    )
    from .pipeline import Fuser, Slot, State, Targets
    from .protocols import EvalCondition, EvalPlan, MissingProtocol, exact_rate_mask
    from .registry import KINDS
