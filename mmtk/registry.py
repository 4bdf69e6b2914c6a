"""Component registries: one per kind, entries that remember who provided them.

Several plugins may register the same name. ``provider:name`` always picks one; a bare name
that a built-in plugin (one shipped in the ``mmtk`` distribution) also registers means the
built-in's, so installing a plugin never changes what a shipped recipe builds. A bare name
shared only by third-party plugins is ambiguous and must be qualified.
"""
from __future__ import annotations

import fnmatch
import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import MmtkError, accepted, did_you_mean

KINDS: tuple[str, ...] = (
    "encoder", "aligner", "reconstructor", "refiner", "fuser", "head", "loss",
    "dataset", "missing", "metric", "optimizer", "scheduler",
)

CORE_DISTRIBUTION = "mmtk"  # the distribution whose plugins are the built-in ones


@dataclass(frozen=True)
class Provider:
    """Who registered an entry: the plugin name, and its distribution and version if installed."""

    plugin: str
    distribution: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        dist = f" ({self.distribution} {self.version})" if self.distribution else ""
        return f"{self.plugin}{dist}"

    @property
    def builtin(self) -> bool:
        return self.distribution == CORE_DISTRIBUTION


@dataclass(frozen=True)
class ComponentSpec:
    kind: str
    name: str
    target: Callable[..., Any] | str   # the class or factory, or "module:attribute" (lazy)
    provider: Provider
    summary: str = ""

    @property
    def obj(self) -> Callable[..., Any]:
        """The class or factory; a "module:attribute" target is imported on first use, so
        registering and listing components imports no model code."""
        return import_target(self.target, self) if isinstance(self.target, str) else self.target

    @property
    def inspectable(self) -> Any:
        """What the recipe checks read a signature from: for a lazy target its source (see
        :mod:`mmtk.static_signature`, no import), else the class or factory itself."""
        if isinstance(self.target, str):
            from .static_signature import static_component
            found = static_component(self.target, lambda: self.obj)
            if found is not None:
                return found
        return self.obj

    @property
    def qualified_name(self) -> str:
        return f"{self.provider.plugin}:{self.name}"


def import_target(target: str, spec: ComponentSpec) -> Any:
    module, _, attr = target.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise MmtkError(f"{spec.kind} '{spec.name}' of plugin '{spec.provider.plugin}' cannot be "
                        f"loaded from '{target}': {type(exc).__name__}: {exc}; reinstall or fix "
                        "the plugin, or install what it needs") from exc


def own_doc(obj: Any) -> str:
    """``obj``'s own docstring, cleaned; unlike ``inspect.getdoc`` never a base class's (a
    component without a docstring must not be summarised as "Base class for all ... modules")."""
    doc = obj.__doc__ if isinstance(getattr(obj, "__doc__", None), str) else ""
    return inspect.cleandoc(doc) if doc else ""


def first_doc_line(obj: Any) -> str:
    if isinstance(obj, str):  # a lazy "module:attribute" target: its summary is given explicitly
        return ""
    doc = own_doc(obj).strip()
    return doc.splitlines()[0] if doc else ""


class UnknownComponentError(MmtkError):
    pass


@dataclass
class Registry:
    """All registered components, keyed by kind then name (several providers may share a name)."""

    entries: dict[str, dict[str, list[ComponentSpec]]] = field(
        default_factory=lambda: {k: {} for k in KINDS})
    # Plugins that failed to load, so "unknown component" errors can point at them.
    failed_plugins: dict[str, str] = field(default_factory=dict)

    def add(self, spec: ComponentSpec) -> None:
        if spec.kind not in KINDS:
            raise MmtkError(f"cannot register '{spec.name}': unknown kind '{spec.kind}'"
                            f"{did_you_mean(spec.kind, KINDS)}; {accepted(KINDS)}")
        same_name = self.entries[spec.kind].setdefault(spec.name, [])
        for other in same_name:
            if other.target == spec.target:
                return  # registering the same object twice is a no-op
            if other.provider.plugin == spec.provider.plugin:
                raise MmtkError(
                    f"plugin '{spec.provider.plugin}' registers two different objects as "
                    f"{spec.kind} '{spec.name}'")
        same_name.append(spec)

    def remove_provider(self, plugin: str) -> None:
        for by_name in self.entries.values():
            for name in list(by_name):
                by_name[name] = [s for s in by_name[name] if s.provider.plugin != plugin]
                if not by_name[name]:
                    del by_name[name]

    def clashes(self) -> list[list[ComponentSpec]]:
        """Every (kind, name) that more than one plugin registers, built-in provider first."""
        return [sorted(specs, key=lambda s: (not s.provider.builtin, s.provider.plugin))
                for kind in KINDS for _, specs in sorted(self.entries[kind].items()) if len(specs) > 1]

    def names(self, kind: str) -> list[str]:
        return sorted(self.entries[kind])

    def list(self, kind: str | None = None, pattern: str | None = None) -> list[ComponentSpec]:
        kinds = [kind] if kind else list(KINDS)
        out = []
        for k in kinds:
            for name in sorted(self.entries[k]):
                if pattern and not fnmatch.fnmatch(name, pattern) and pattern not in name:
                    continue
                out.extend(self.entries[k][name])
        return out

    def get(self, kind: str, name: str) -> ComponentSpec:
        """Look up ``name`` or ``provider:name``; ambiguity and absence are explained errors."""
        if kind not in KINDS:
            raise UnknownComponentError(f"unknown kind '{kind}'{did_you_mean(kind, KINDS)}; "
                                        f"{accepted(KINDS)}")
        provider, _, bare = name.rpartition(":")
        candidates = self.entries[kind].get(bare, [])
        if provider:
            candidates = [s for s in candidates if s.provider.plugin == provider]
        elif len(candidates) > 1:
            builtin = [s for s in candidates if s.provider.builtin]
            candidates = builtin or candidates
        if len(candidates) == 1:
            return candidates[0]
        if len(candidates) > 1:
            names = " and ".join(f"'{s.qualified_name}' from {s.provider}" for s in candidates)
            raise UnknownComponentError(
                f"{kind} '{name}' is provided by more than one plugin: {names}; "
                f"write 'provider:name' to choose one")
        msg = f"unknown {kind} '{name}'{did_you_mean(bare, self.entries[kind])}; " \
              f"{accepted(self.entries[kind])}"
        if self.failed_plugins:
            msg += "; note that these plugins failed to load and may provide it: " + ", ".join(
                f"{p} ({why})" for p, why in sorted(self.failed_plugins.items()))
        raise UnknownComponentError(msg)
