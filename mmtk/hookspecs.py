"""The plugin contract: hook specifications for the `mmtk` pluggy project.

A plugin is a module (or object) with functions decorated by `mmtk.hookimpl`, made known
through the entry-point group ``mmtk``. Each hook receives one object and never a global.
An implementation may declare fewer arguments than its spec (pluggy passes only the ones it
names); a function named ``mmtk_*`` that matches no spec is an error naming the plugin.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol

import pluggy

if TYPE_CHECKING:  # only for type checkers: importing these at run time would pull in torch
    import argparse
    from pathlib import Path

hookspec = pluggy.HookspecMarker("mmtk")
hookimpl = pluggy.HookimplMarker("mmtk")


class RegisterComponent(Protocol):
    """The ``register`` callback of :func:`mmtk_register_components`."""

    def __call__(self, kind: str, name: str, obj: Callable[..., Any],
                 summary: str | None = None) -> None: ...


class RegisterRecipe(Protocol):
    """The ``register`` callback of :func:`mmtk_register_recipes`."""

    def __call__(self, name: str, path: str | os.PathLike[str], summary: str = "") -> None: ...


class RegisterCommand(Protocol):
    """The ``register`` callback of :func:`mmtk_register_commands`."""

    def __call__(self, name: str, help: str,
                 configure: Callable[["argparse.ArgumentParser"], None],
                 run: Callable[["argparse.Namespace"], int | None]) -> None: ...


class RunInfo(Protocol):
    """What the run-lifecycle hooks are given about a run."""

    @property
    def recipe(self) -> Any: ...        # the resolved recipe

    @property
    def directory(self) -> "Path | None": ...  # runs/<name>/<timestamp>/ (None off rank 0)


@hookspec
def mmtk_register_components(register: RegisterComponent) -> None:
    """Register components: ``register(kind, name, obj, summary=None)``.

    ``kind`` is one of :data:`mmtk.registry.KINDS`. ``obj`` is a class or factory whose
    constructor signature (with type hints) is the component's parameter schema; its
    docstring's ``Parameters:`` section says what each parameter means. ``summary`` defaults
    to the first line of ``obj``'s own docstring.
    """


@hookspec
def mmtk_register_recipes(register: RegisterRecipe) -> None:
    """Register named recipes: ``register(name, path, summary="")``."""


@hookspec
def mmtk_register_commands(register: RegisterCommand) -> None:
    """Add CLI subcommands: ``register(name, help, configure, run)``.

    ``configure(parser)`` adds arguments to an ``argparse`` sub-parser (it is called once while
    the plugin loads, so an error there marks the plugin broken); ``run(args)`` executes and
    returns an exit status. Import heavy libraries inside ``run`` only, so that
    ``mmtk --help`` stays fast. A core command's name cannot be taken.
    """


@hookspec
def mmtk_recipe_defaults() -> Mapping[str, Any]:
    """Return a partial recipe mapping (e.g. ``{"train": {"optimizer": {"type": "adam"}}}``)
    laid under every recipe before it is checked. The core names no component itself: the
    ``basic`` plugin supplies the task loss, optimizer, metrics, monitor and ``none``
    protocols a recipe gets when it does not say."""


@hookspec
def mmtk_run_start(run: RunInfo) -> None:
    """Called when a run starts (``run`` has ``.recipe``, ``.directory``).

    Each plugin's implementation is guarded: one that raises is reported on stderr, naming
    the plugin and the hook, and the run goes on (``--strict-plugins`` makes it fatal).
    """


@hookspec
def mmtk_run_end(run: RunInfo, results: Mapping[str, Any]) -> None:
    """Called when a run ends with its aggregated results dict (guarded like ``mmtk_run_start``)."""


HOOK_NAMES: tuple[str, ...] = tuple(n for n in dir() if n.startswith("mmtk_"))
