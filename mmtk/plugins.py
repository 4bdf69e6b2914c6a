"""Plugin discovery and loading with pluggy; every plugin loads inside its own guard.

Sources, in order: the entry-point group ``mmtk`` (built-in plugins use it too), then local
modules (``--plugins-dir``, recipe ``imports:``) and objects passed in by tests.
``MMTK_LOAD_PLUGINS`` / ``MMTK_DISABLE_PLUGINS`` (comma-separated plugin names) restrict
which entry points are loaded.
"""
from __future__ import annotations

import importlib.metadata as md
import importlib.util
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pluggy

from . import hookspecs
from .errors import PluginError
from .registry import ComponentSpec, Provider, Registry, first_doc_line

ENTRY_POINT_GROUP = "mmtk"


@dataclass
class PluginStatus:
    name: str
    source: str  # "entry point <module>", "file <path>", "object"
    status: str  # "ok", "failed", "disabled"
    distribution: str | None = None
    version: str | None = None
    error: str | None = None
    components: int = 0


@dataclass(frozen=True)
class RecipeEntry:
    name: str
    path: Path
    provider: Provider
    summary: str = ""


@dataclass(frozen=True)
class CommandEntry:
    name: str
    help: str
    configure: Any
    run: Any
    provider: Provider


@dataclass
class PluginSystem:
    """The loaded plugins: a pluggy manager, the component registry and named recipes."""

    pm: pluggy.PluginManager
    registry: Registry = field(default_factory=Registry)
    recipes: dict[str, RecipeEntry] = field(default_factory=dict)
    statuses: dict[str, PluginStatus] = field(default_factory=dict)
    commands: dict[str, CommandEntry] = field(default_factory=dict)
    strict: bool = False

    def add_plugin(self, plugin: Any, name: str, source: str,
                   provider: Provider | None = None) -> PluginStatus:
        """Register one plugin object and run its registration hooks, all or nothing."""
        provider = provider or Provider(name)
        status = PluginStatus(name, source, "ok", provider.distribution, provider.version)
        self.statuses[name] = status
        pending: list[ComponentSpec] = []
        recipes: list[RecipeEntry] = []
        commands: list[CommandEntry] = []

        def register(kind: str, comp_name: str, obj: Any, summary: str | None = None) -> None:
            pending.append(ComponentSpec(kind, comp_name, obj, provider,
                                         summary if summary is not None else first_doc_line(obj)))

        def register_recipe(rec_name: str, path: str | os.PathLike, summary: str = "") -> None:
            recipes.append(RecipeEntry(rec_name, Path(path), provider, summary))

        def register_command(cmd: str, help: str, configure: Any, run: Any) -> None:
            commands.append(CommandEntry(cmd, help, configure, run, provider))

        try:
            self.pm.register(plugin, name=name)
            for impl in self.pm.hook.mmtk_register_components.get_hookimpls():
                if impl.plugin_name == name:
                    impl.function(register=register)
            for impl in self.pm.hook.mmtk_register_recipes.get_hookimpls():
                if impl.plugin_name == name:
                    impl.function(register=register_recipe)
            for impl in self.pm.hook.mmtk_register_commands.get_hookimpls():
                if impl.plugin_name == name:
                    impl.function(register=register_command)
            for spec in pending:
                self.registry.add(spec)
        except Exception as exc:  # a broken plugin must not take the toolkit down
            self._fail(status, f"{type(exc).__name__}: {exc}")
            return status
        for r in recipes:
            self.recipes.setdefault(r.name, r)
        for c in commands:
            self.commands.setdefault(c.name, c)
        status.components = len(pending)
        return status

    def _fail(self, status: PluginStatus, reason: str) -> None:
        status.status, status.error = "failed", reason
        self.registry.remove_provider(status.name)
        self.registry.failed_plugins[status.name] = reason
        if self.pm.has_plugin(status.name):
            self.pm.unregister(name=status.name)
        if self.strict:
            raise PluginError(f"plugin '{status.name}' ({status.source}) failed: {reason}. "
                              f"Fix or uninstall it, or run without --strict-plugins to skip it.")

    def load_file(self, path: str | os.PathLike) -> PluginStatus:
        """Load a local plugin module from a .py file (``--plugins-dir``, recipe ``imports:``)."""
        path = Path(path).resolve()
        name = f"local:{path.stem}"
        if name in self.statuses and self.statuses[name].status == "ok":
            return self.statuses[name]
        status = PluginStatus(name, f"file {path}", "ok")
        try:
            if not path.is_file():
                raise FileNotFoundError(f"no such file {path}")
            spec = importlib.util.spec_from_file_location(f"mmtk_local_{path.stem}", path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
        except Exception as exc:
            self.statuses[name] = status
            self._fail(status, f"{type(exc).__name__}: {exc}")
            return status
        return self.add_plugin(module, name, f"file {path}")

    def load_dir(self, directory: str | os.PathLike) -> list[PluginStatus]:
        return [self.load_file(p) for p in sorted(Path(directory).glob("*.py"))]

    def call_run_start(self, run: Any) -> None:
        self.pm.hook.mmtk_run_start(run=run)

    def call_run_end(self, run: Any, results: Any) -> None:
        self.pm.hook.mmtk_run_end(run=run, results=results)


def _env_names(var: str) -> set[str] | None:
    value = os.environ.get(var)
    if value is None:
        return None
    return {v.strip() for v in value.split(",") if v.strip()}


def load_plugins(strict: bool = False, extra: Iterable[tuple[str, Any]] = (),
                 plugins_dir: str | os.PathLike | None = None,
                 entry_points: bool = True) -> PluginSystem:
    """Build a fresh plugin system: entry points, then a local directory, then extra objects."""
    pm = pluggy.PluginManager("mmtk")
    pm.add_hookspecs(hookspecs)
    system = PluginSystem(pm=pm, strict=strict)
    only, disabled = _env_names("MMTK_LOAD_PLUGINS"), _env_names("MMTK_DISABLE_PLUGINS") or set()
    if entry_points:
        seen: set[str] = set()
        for ep in sorted(md.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if ep.name in seen:  # the same distribution visible twice on sys.path
                continue
            seen.add(ep.name)
            dist = getattr(ep, "dist", None)
            provider = Provider(ep.name, dist.name if dist else None, dist.version if dist else None)
            source = f"entry point {ep.value}"
            if (only is not None and ep.name not in only) or ep.name in disabled:
                system.statuses[ep.name] = PluginStatus(ep.name, source, "disabled",
                                                        provider.distribution, provider.version)
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                status = PluginStatus(ep.name, source, "ok", provider.distribution, provider.version)
                system.statuses[ep.name] = status
                system._fail(status, f"{type(exc).__name__}: {exc}")
                continue
            system.add_plugin(plugin, ep.name, source, provider)
    if plugins_dir:
        system.load_dir(plugins_dir)
    for name, obj in extra:
        system.add_plugin(obj, name, "object")
    return system


_default: PluginSystem | None = None
_default_key: tuple | None = None


def get_plugin_system(strict: bool = False, plugins_dir: str | None = None) -> PluginSystem:
    """The process-wide plugin system, loaded once on first use (never at import time)."""
    global _default, _default_key
    key = (strict, str(plugins_dir) if plugins_dir else None)
    if _default is None or key != _default_key:
        _default, _default_key = load_plugins(strict=strict, plugins_dir=plugins_dir), key
    return _default


def reset_plugin_system() -> None:
    global _default, _default_key
    _default, _default_key = None, None
