"""The plugin contract: hook specifications for the `mmtk` pluggy project.

A plugin is a module (or object) with functions decorated by `mmtk.hookimpl`, made known
through the entry-point group ``mmtk``. Each hook receives one object and never a global.
"""
from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("mmtk")
hookimpl = pluggy.HookimplMarker("mmtk")


@hookspec
def mmtk_register_components(register):
    """Register components: ``register(kind, name, obj, summary=None)``.

    ``kind`` is one of :data:`mmtk.registry.KINDS`. ``obj`` is a class or factory whose
    constructor signature (with type hints) is the component's parameter schema.
    """


@hookspec
def mmtk_register_recipes(register):
    """Register named recipes: ``register(name, path, summary=None)``."""


@hookspec
def mmtk_register_commands(register):
    """Add CLI subcommands: ``register(name, help, configure, run)``.

    ``configure(parser)`` adds arguments to an ``argparse`` sub-parser; ``run(args)`` executes
    and returns an exit status. Import heavy libraries inside ``run`` only, so that
    ``mmtk --help`` stays fast.
    """


@hookspec
def mmtk_run_start(run):
    """Called when a run starts (``run`` has ``.recipe``, ``.directory``)."""


@hookspec
def mmtk_run_end(run, results):
    """Called when a run ends with its aggregated results dict."""
