"""Registers the baselines (MMIN, GCNet's AE/CRA imputation, mean and ridge imputation) and the
baseline recipes.

Zero imputation and modality dropout need no component of their own (the core zero-fills
absent modalities); they are recipes (recipes/zero-impute.yaml, recipes/modality-dropout.yaml),
shipped inside this package with the other baseline recipes. Components are registered by
import path with their summary (the first line of their docstring), so listing them imports
no model code.
"""
from __future__ import annotations

from pathlib import Path

import mmtk
from mmtk.plugin_kit import register_by_path, register_recipe_folder

# kind, name, "module:attribute" in this package, summary (= the docstring's first line)
COMPONENTS = [
    ("reconstructor", "mmin_imagination", "mmin:MMINImagination",
     "MMIN's imagination: forward and backward cascade residual AEs, frozen teacher."),
    ("fuser", "mmin_latents", "mmin:MMINLatents",
     "MMIN's classifier input: the imagination's block bottlenecks, concatenated."),
    ("reconstructor", "ae_impute", "impute:AEImpute",
     "GCNet's AE imputation baseline: one FC autoencoder on the fused embedding."),
    ("reconstructor", "cra_impute", "impute:CRAImpute",
     "GCNet's CRA imputation baseline: a cascade of residual AEs on the fused embedding."),
    ("reconstructor", "mean_impute", "impute:MeanImpute",
     "Mean imputation: absent representations become training-split mean representations."),
    ("reconstructor", "ridge_impute", "ridge_impute:RidgeImpute",
     "Regression imputation: absent input features predicted from the observed ones by ridge."),
    ("encoder", "linear", "late_fusion:LinearEncoder",
     "One linear map of the features (no non-linearity); frame sequences are mean-pooled first."),
    ("fuser", "late_fusion", "late_fusion:LateFusion",
     "Sum of per-modality log-probabilities over the modalities a sample has."),
    ("head", "identity", "late_fusion:IdentityHead",
     "Passes the fuser's output through as the logits (its width must be the class count)."),
    ("fuser", "if_mmin_invariant", "if_mmin:IFMMINInvariant",
     "IF-MMIN's pretraining fuser: [specific ; invariant] features, CMD between modalities."),
    ("reconstructor", "if_mmin_imagination", "if_mmin:IFMMINImagination",
     "IF-MMIN's imagination: invariant features added to every cascade block, frozen teacher."),
    ("fuser", "momke_experts", "momke:MoMKEExperts",
     "MoMKE's first stage: one expert and one classifier head per modality, trained unimodally."),
    ("fuser", "momke", "momke:MoMKEMixture",
     "MoMKE's second stage: a soft mixture of all modality experts for each available modality."),
]


@mmtk.hookimpl
def mmtk_register_components(register):
    register_by_path(register, __package__, COMPONENTS)


@mmtk.hookimpl
def mmtk_register_recipes(register):
    register_recipe_folder(register, Path(__file__).parent / "recipes")
