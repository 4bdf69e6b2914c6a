"""Registers CM-ARR's components (alignment, reconstruction, refinement, fusion) and recipes.

Components are registered by import path with their summary (the first line of their
docstring), so listing them imports neither model code nor torch; a module is imported when
one of its components is first built or inspected. The recipes ship inside the package.
"""
from __future__ import annotations

from pathlib import Path

import mmtk
from mmtk.plugin_kit import register_by_path, register_recipe_folder, require_packages

# kind, name, "module:attribute" in this package, summary (= the docstring's first line)
COMPONENTS = [
    ("aligner", "gaussian_w2", "alignment:GaussianW2Aligner",
     "Per-modality Gaussian blocks + InfoNCE over 2-Wasserstein distances (unsupervised)."),
    ("reconstructor", "flow", "reconstruction:FlowReconstructor",
     "Normalizing-flow reconstruction of absent modalities (CM-ARR phase 2)."),
    ("refiner", "supcon", "refinement:SupConRefiner",
     "Supervised contrastive loss on the completed per-modality representations."),
    ("fuser", "cross_attention", "fusion:CrossAttentionFuser",
     "Cross-modal attention over the modality representations, then pooling."),
]
NEEDS = {"normflows": "cmarr"}   # package -> the mmtk extra that installs it


@mmtk.hookimpl
def mmtk_register_components(register):
    require_packages("cmarr", NEEDS)
    register_by_path(register, __package__, COMPONENTS)


@mmtk.hookimpl
def mmtk_register_recipes(register):
    register_recipe_folder(register, Path(__file__).parent / "recipes")
