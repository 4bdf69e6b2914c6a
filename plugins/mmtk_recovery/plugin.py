"""Registers the generative recovery methods and their recipes.

Components are registered by import path with their summary (the first line of their
docstring), so listing them imports no model code.
"""
from __future__ import annotations

from pathlib import Path

import mmtk
from mmtk.plugin_kit import register_by_path, register_recipe_folder

# kind, name, "module:attribute" in this package, summary (= the docstring's first line)
COMPONENTS: list[tuple[str, str, str, str]] = []


@mmtk.hookimpl
def mmtk_register_components(register):
    register_by_path(register, __package__, COMPONENTS)


@mmtk.hookimpl
def mmtk_register_recipes(register):
    register_recipe_folder(register, Path(__file__).parent / "recipes")
