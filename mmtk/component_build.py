"""Building one component from its recipe block: the registry lookup, the context values its
kind is given, and an error that names the recipe path, the component and the plugin. No
torch here: the recipe checks build dataset objects through it (see :mod:`mmtk.dataset`)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import MmtkError
from .recipe.sections import Component
from .registry import Registry
from .schema import build


class ComponentBuildError(MmtkError):
    """A component's constructor raised: names where in the recipe, which component, which plugin."""


def as_component(block: Component | dict | str) -> Component:
    """A component from a recipe-style block (``{type: NAME, ...}`` or ``NAME``)."""
    if isinstance(block, Component):
        return block
    if isinstance(block, str):
        return Component(block)
    return Component(block["type"], {k: v for k, v in block.items() if k != "type"})


def build_component(registry: Registry, kind: str, comp: Component | dict | str, context: dict | None = None,
                    where: str | None = None, base_dir: Path | None = None) -> Any:
    comp = as_component(comp)
    spec = registry.get(kind, comp.qualified)
    try:
        return build(spec.obj, comp.params, context or {}, base_dir, kind=kind)
    except ComponentBuildError:
        raise
    except Exception as exc:  # a plugin's constructor rejected its input
        why = str(exc) if isinstance(exc, MmtkError) else f"{type(exc).__name__}: {exc}"
        raise ComponentBuildError(
            f"{where or kind} ({kind} '{comp.type}', plugin '{spec.provider.plugin}') could not "
            f"be built: {why}") from exc
