"""Registers CM-ARR's components (alignment, reconstruction, refinement, fusion)."""
from __future__ import annotations

import mmtk

from . import alignment, fusion, reconstruction, refinement


@mmtk.hookimpl
def mmtk_register_components(register):
    register("aligner", "gaussian_w2", alignment.GaussianW2Aligner)
    register("reconstructor", "flow", reconstruction.FlowReconstructor)
    register("refiner", "supcon", refinement.SupConRefiner)
    register("fuser", "cross_attention", fusion.CrossAttentionFuser)
