"""Plugin discovery and loading with pluggy; every plugin loads inside its own guard.

Sources, in order: the entry-point group ``mmtk`` (built-in plugins use it too), then local
modules (``--plugins-dir``, recipe ``imports:``) and objects passed in by tests.
``MMTK_LOAD_PLUGINS`` / ``MMTK_DISABLE_PLUGINS`` (comma-separated entry-point names) restrict
which entry points are loaded; a name there that no installed plugin has is reported.

Hygiene follows pluggy's own rules: hook implementations are checked against the specs
(``check_pending``: a misspelled ``mmtk_*`` hook is an error naming the plugin), each gets
only the arguments it declares, and a plugin is registered all or nothing. Whatever a plugin
raises while it loads, ``SystemExit`` and ``KeyboardInterrupt`` included, marks that plugin
failed and skips it; the run-lifecycle hooks are called plugin by plugin, each guarded.
"""
from __future__ import annotations

import argparse
import importlib.metadata as md
import importlib.util
import inspect
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pluggy

from . import hookspecs
from .errors import MmtkError, PluginError, did_you_mean
from .plugin_entries import CommandEntry, PluginStatus, RecipeEntry, describe_exception
from .registry import ComponentSpec, Provider, Registry, first_doc_line

ENTRY_POINT_GROUP = "mmtk"
ENV_ONLY, ENV_DISABLED = "MMTK_LOAD_PLUGINS", "MMTK_DISABLE_PLUGINS"


@dataclass
class PluginSystem:
    """The loaded plugins: a pluggy manager, the component registry and named recipes."""

    pm: pluggy.PluginManager
    registry: Registry = field(default_factory=Registry)
    recipes: dict[str, RecipeEntry] = field(default_factory=dict)
    statuses: dict[str, PluginStatus] = field(default_factory=dict)
    commands: dict[str, CommandEntry] = field(default_factory=dict)
    strict: bool = False
    warnings: list[str] = field(default_factory=list)  # load-time problems, see notices()
    hook_failures: list[str] = field(default_factory=list)  # run hooks that raised (printed then)

    # -- loading ----------------------------------------------------------------------------
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
            self._check_undecorated(plugin)
            try:
                self.pm.register(plugin, name=name)
            except pluggy.PluginValidationError as exc:  # e.g. an argument the spec lacks
                raise PluginError("a hook implementation does not match mmtk's hook specs: "
                                  + describe_exception(exc)) from exc
            self._check_pending(plugin)
            self._call_own("mmtk_register_components", plugin, register=register)
            self._call_own("mmtk_register_recipes", plugin, register=register_recipe)
            self._call_own("mmtk_register_commands", plugin, register=register_command)
            for c in commands:  # a broken configure() would otherwise break every command
                self._guarded(f"configure() of command '{c.name}'",
                              c.configure, argparse.ArgumentParser(prog=f"mmtk {c.name}"))
            for spec in pending:
                self.registry.add(spec)
        except BaseException as exc:  # a broken plugin must not take the toolkit down
            self._fail(status, describe_exception(exc), exc)
            return status
        for r in recipes:
            self.recipes.setdefault(r.name, r)
        for c in commands:
            self.commands.setdefault(c.name, c)
        status.components = len(pending)
        return status

    def _check_undecorated(self, plugin: Any) -> None:
        """A function named like a hook but lacking ``@mmtk.hookimpl`` would be silently ignored."""
        for attr in dir(plugin):
            if not attr.startswith("mmtk_") or not (attr in hookspecs.HOOK_NAMES
                                                    or did_you_mean(attr, hookspecs.HOOK_NAMES)):
                continue
            if inspect.isroutine(getattr(plugin, attr, None)) and \
                    self.pm.parse_hookimpl_opts(plugin, attr) is None:
                raise PluginError(f"'{attr}' is not decorated with @mmtk.hookimpl, so mmtk would "
                                  f"ignore it{did_you_mean(attr, hookspecs.HOOK_NAMES)}; decorate "
                                  "it (import mmtk; @mmtk.hookimpl)")

    def _check_pending(self, plugin: Any) -> None:
        """pluggy's check_pending: every implementation must match a spec (or be optional).
        Plugins are registered one at a time, so anything pending belongs to ``plugin``."""
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            unknown = [h.name for h in self.pm.get_hookcallers(plugin) or () if not h.has_spec()]
            if not unknown:
                raise
            name = unknown[0]
            raise PluginError(f"unknown hook '{name}'{did_you_mean(name, hookspecs.HOOK_NAMES)}; "
                              f"mmtk's hooks are {', '.join(hookspecs.HOOK_NAMES)}") from exc

    def _call_own(self, hook_name: str, plugin: Any, **kwargs: Any) -> None:
        """Call one plugin's implementations of a hook the way pluggy calls them (each gets only
        the arguments it declares), leaving the other plugins out."""
        others = [p for p in self.pm.get_plugins() if p is not plugin]
        try:
            self.pm.subset_hook_caller(hook_name, others)(**kwargs)
        except BaseException as exc:
            raise PluginError(f"{hook_name} raised {describe_exception(exc)}") from exc

    @staticmethod
    def _guarded(what: str, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except BaseException as exc:
            raise PluginError(f"{what} raised {describe_exception(exc)}") from exc

    def _fail(self, status: PluginStatus, reason: str, cause: BaseException | None = None) -> None:
        status.status, status.error = "failed", reason
        self.registry.remove_provider(status.name)
        self.registry.failed_plugins[status.name] = reason
        if self.pm.has_plugin(status.name):
            self.pm.unregister(name=status.name)
        if self.strict:
            raise PluginError(f"plugin '{status.name}' ({status.source}) failed: {reason}. "
                              f"Fix or uninstall it, or run without --strict-plugins to skip it.") from cause

    def _warn(self, message: str) -> None:
        """A plugin problem that does not stop loading (fatal under --strict-plugins)."""
        if self.strict:
            raise PluginError(f"{message} (--strict-plugins makes this fatal)")
        self.warnings.append(message)

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
        except BaseException as exc:
            self.statuses[name] = status
            self._fail(status, describe_exception(exc), exc)
            return status
        return self.add_plugin(module, name, f"file {path}")

    def load_dir(self, directory: str | os.PathLike) -> list[PluginStatus]:
        if not Path(directory).is_dir():
            raise MmtkError(f"--plugins-dir '{directory}' is not a directory; give the folder "
                            "that holds your plugin .py files")
        return [self.load_file(p) for p in sorted(Path(directory).glob("*.py"))]

    # -- run-lifecycle hooks ------------------------------------------------------------------
    def call_run_start(self, run: Any) -> None:
        self._call_guarded("mmtk_run_start", run=run)

    def call_run_end(self, run: Any, results: Any) -> None:
        self._call_guarded("mmtk_run_end", run=run, results=results)

    def _call_guarded(self, hook_name: str, **kwargs: Any) -> None:
        """Each plugin's implementation on its own, in pluggy's order: one that raises is
        reported (naming plugin and hook) and the others still run; Ctrl-C still stops."""
        impls = getattr(self.pm.hook, hook_name).get_hookimpls()
        plugins = list(dict.fromkeys(i.plugin for i in reversed(impls)))
        for plugin in plugins:
            others = [p for p in self.pm.get_plugins() if p is not plugin]
            try:
                self.pm.subset_hook_caller(hook_name, others)(**kwargs)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:
                message = (f"plugin '{self.pm.get_name(plugin)}' failed in {hook_name}: "
                           f"{describe_exception(exc)}")
                if self.strict:
                    raise PluginError(f"{message} (--strict-plugins makes this fatal)") from exc
                self.hook_failures.append(message)
                print(f"warning: {message}; the run goes on", file=sys.stderr)

    # -- what a user should hear about on every command ------------------------------------
    def notices(self, failed: bool = True) -> list[str]:
        """One line per problem: failed plugins (unless ``failed=False``), misspelled names in
        the environment variables, and names several plugins register."""
        lines = []
        if failed:
            lines += [f"plugin '{s.name}' failed to load and is skipped: {s.error} "
                      f"(mmtk list plugins; --strict-plugins makes this fatal)"
                      for s in self.statuses.values() if s.status == "failed"]
        lines += self.warnings
        for specs in self.registry.clashes():
            first, others = specs[0], specs[1:]
            names = " and ".join(f"'{s.qualified_name}'" for s in specs)
            if first.provider.builtin and not any(s.provider.builtin for s in others):
                lines.append(f"{first.kind} '{first.name}' is registered by {names}: '{first.name}' "
                             f"means the built-in '{first.qualified_name}'; write "
                             + " or ".join(f"'{s.qualified_name}'" for s in others)
                             + " for the plugin's")
            else:
                lines.append(f"{first.kind} '{first.name}' is registered by {names}: a recipe must "
                             "write one of these 'provider:name' forms")
        return lines


def _env_names(var: str) -> set[str] | None:
    value = os.environ.get(var)
    if value is None:
        return None
    return {v.strip() for v in value.split(",") if v.strip()}


def _check_env_names(system: PluginSystem, known: set[str], only: set[str] | None,
                     disabled: set[str]) -> None:
    for var, names in ((ENV_ONLY, only or set()), (ENV_DISABLED, disabled)):
        for n in sorted(names - known):
            system._warn(f"{var} names '{n}', which is not an installed plugin"
                         f"{did_you_mean(n, known)}; installed plugins are "
                         f"{', '.join(sorted(known)) or 'none'}")


def load_plugins(strict: bool = False, extra: Iterable[tuple[str, Any]] = (),
                 plugins_dir: str | os.PathLike | None = None,
                 entry_points: bool = True) -> PluginSystem:
    """Build a fresh plugin system: entry points, then a local directory, then extra objects."""
    pm = pluggy.PluginManager("mmtk")
    pm.add_hookspecs(hookspecs)
    system = PluginSystem(pm=pm, strict=strict)
    only, disabled = _env_names(ENV_ONLY), _env_names(ENV_DISABLED) or set()
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
            except BaseException as exc:  # sys.exit() or Ctrl-C in an import skips that plugin
                status = PluginStatus(ep.name, source, "ok", provider.distribution, provider.version)
                system.statuses[ep.name] = status
                system._fail(status, describe_exception(exc), exc)
                continue
            system.add_plugin(plugin, ep.name, source, provider)
        _check_env_names(system, seen, only, disabled)
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
