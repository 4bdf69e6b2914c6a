"""Helpers a plugin's ``plugin.py`` uses to register without importing its model code.

Registering by import path keeps ``mmtk --help`` and ``mmtk list components`` fast (the
module is imported when the component is first built or inspected); checking a package with
``importlib.util.find_spec`` imports nothing, so a missing optional dependency fails only
that plugin, with a message naming the pip extra.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Callable, Iterable

from .errors import PluginError


def require_packages(plugin: str, needs: dict[str, str]) -> None:
    """Refuse to load ``plugin`` when a package it needs is missing; ``needs`` maps each
    package to the mmtk extra that installs it."""
    for package, extra in needs.items():
        if importlib.util.find_spec(package) is None:
            raise PluginError(f"the {plugin} plugin needs the package '{package}', which is not "
                              f"installed; install it with: pip install 'mmtk[{extra}]' (or "
                              f"pip install {package})")


def register_by_path(register: Callable, package: str,
                     components: Iterable[tuple[str, str, str, str]]) -> None:
    """``register`` each (kind, name, "module:attribute" inside ``package``, summary)."""
    for kind, name, target, summary in components:
        register(kind, name, f"{package}.{target}", summary=summary)


def register_recipe_folder(register: Callable, folder: Path) -> None:
    """Every ``*.yaml`` in ``folder`` as a named recipe (its file stem)."""
    for path in sorted(Path(folder).glob("*.yaml")):
        register(path.stem, path)
