"""Registers CM-ARR's components (alignment, reconstruction, refinement, fusion) and recipes.

Components are registered by import path with their summary (the first line of their
docstring), so listing them imports neither model code nor torch; a module is imported when
one of its components is first built or inspected. The recipes ship inside the package.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import mmtk
from mmtk.errors import PluginError

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


def check_dependencies() -> None:
    """Refuse to load, naming the package and the extra, when a dependency is missing (looked
    up without importing it)."""
    for package, extra in NEEDS.items():
        if importlib.util.find_spec(package) is None:
            raise PluginError(f"the cmarr plugin needs the package '{package}', which is not "
                              f"installed; install it with: pip install 'mmtk[{extra}]' (or "
                              f"pip install {package})")


@mmtk.hookimpl
def mmtk_register_components(register):
    check_dependencies()
    for kind, name, target, summary in COMPONENTS:
        register(kind, name, f"{__package__}.{target}", summary=summary)


@mmtk.hookimpl
def mmtk_register_recipes(register):
    for path in sorted((Path(__file__).parent / "recipes").glob("*.yaml")):
        register(path.stem, path)
