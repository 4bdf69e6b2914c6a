"""Registers the baselines: MMIN, GCNet's AE/CRA imputation and mean imputation.

Zero imputation and modality dropout need no component of their own (the core zero-fills
absent modalities); they are recipes (recipes/zero-impute.yaml, recipes/modality-dropout.yaml).
"""
from __future__ import annotations

import mmtk

from . import impute, mmin


@mmtk.hookimpl
def mmtk_register_components(register):
    register("reconstructor", "mmin_imagination", mmin.MMINImagination)
    register("fuser", "mmin_latents", mmin.MMINLatents)
    register("reconstructor", "ae_impute", impute.AEImpute)
    register("reconstructor", "cra_impute", impute.CRAImpute)
    register("reconstructor", "mean_impute", impute.MeanImpute)
