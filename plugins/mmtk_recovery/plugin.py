"""Registers the generative recovery methods and their recipes.

Components are registered by import path with their summary (the first line of their
docstring), so listing them imports no model code. ``dicmor_flow`` needs normflows (a default
dependency of mmtk) and says so when it is built without it; ``imder_diffusion`` needs torch
only, so the plugin loads either way.
"""
from __future__ import annotations

from pathlib import Path

import mmtk
from mmtk.plugin_kit import register_by_path, register_recipe_folder

# kind, name, "module:attribute" in this package, summary (= the docstring's first line)
COMPONENTS: list[tuple[str, str, str, str]] = [
    ("reconstructor", "dicmor_flow", "dicmor:DiCMoRFlow",
     "DiCMoR-style recovery: per-modality flows into class-conditional Gaussian latents."),
    ("reconstructor", "imder_diffusion", "imder:IMDerDiffusion",
     "IMDer-style recovery: a conditional score network per modality for a VE SDE."),
]


@mmtk.hookimpl
def mmtk_register_components(register):
    register_by_path(register, __package__, COMPONENTS)


@mmtk.hookimpl
def mmtk_register_recipes(register):
    register_recipe_folder(register, Path(__file__).parent / "recipes")
