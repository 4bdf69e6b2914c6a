"""Registers mmtk's basic components through the same hooks a third-party plugin uses.

Components are registered by import path with their summary (the first line of their
docstring), so that ``mmtk --help`` and ``mmtk list components`` import no model code and
not even torch; a module is imported when one of its components is first built or inspected.
"""
from __future__ import annotations

import mmtk
from mmtk.plugin_kit import register_by_path

# kind, name, "module:attribute" in this package, summary (= the docstring's first line)
COMPONENTS = [
    ("encoder", "mlp", "encoders:MLPEncoder",
     "Two-layer MLP; frame sequences are mean-pooled over real frames first."),
    ("encoder", "lstm", "encoders:LSTMEncoder",
     "Single-layer LSTM with max-pooling over time (MMIN's acoustic/visual encoder)."),
    ("encoder", "textcnn", "encoders:TextCNNEncoder",
     "TextCNN: convolutions of heights 3/4/5 over the full embedding width, max over time."),
    ("fuser", "concat", "fusion:ConcatFuser",
     "Concatenate the per-modality representations in sorted modality order."),
    ("head", "mlp", "fusion:MLPHead",
     "MLP head: hidden layers with ReLU and dropout, then class logits or one score."),
    ("loss", "cross_entropy", "training:CrossEntropy",
     "Cross-entropy on class logits, with optional label smoothing."),
    ("loss", "l1", "training:L1",
     "Mean absolute error between the predicted and the true score (MMSA's training loss)."),
    ("loss", "mse", "training:MSE", "Mean squared error between the predicted and the true score."),
    ("optimizer", "adam", "training:adam", "Adam."),
    ("optimizer", "adamw", "training:adamw", "AdamW (decoupled weight decay)."),
    ("optimizer", "sgd", "training:sgd", "SGD with momentum."),
    ("scheduler", "cosine", "training:cosine",
     "Cosine annealing over the stage's epochs (stepped once per epoch)."),
    ("scheduler", "step", "training:step", "Multiply the learning rate by gamma every step_size epochs."),
    ("scheduler", "linear_decay", "training:linear_decay",
     "Constant for constant_epochs, then linear decay to zero (MMIN's schedule)."),
    ("metric", "war", "metric_factories:war", "Weighted average recall = overall accuracy."),
    ("metric", "uar", "metric_factories:uar", "Unweighted average recall = macro-averaged recall."),
    ("metric", "f1_macro", "metric_factories:f1_macro", "Macro-averaged F1."),
    ("metric", "f1_weighted", "metric_factories:f1_weighted", "Support-weighted F1."),
    ("metric", "mae", "metric_factories:mae", "Mean absolute error of a regression score (lower is better)."),
    ("metric", "corr", "metric_factories:corr",
     "Pearson correlation between predicted and true scores (0 if either is constant)."),
    ("metric", "log_loss", "metric_factories:log_loss",
     "Mean negative log-likelihood of the true class (lower is better; smooth on small splits)."),
    ("metric", "brier", "metric_factories:brier",
     "Mean multi-class Brier score of the class probabilities (lower is better)."),
    ("missing", "none", "missing:NoMissing",
     "Every modality the data has is used (training) / one 'full' condition (evaluation)."),
    ("missing", "six_conditions", "missing:SixConditions",
     "MMIN's six conditions: a random one per sample in training, every one at evaluation."),
    ("missing", "random_rate", "missing:RandomRate",
     "CPM-Nets' missing rate η: exactly a fraction η of the (sample, modality) cells is missing."),
    ("missing", "fixed", "missing:Fixed",
     "One fixed condition, e.g. ``at`` = audio and text present, for training and evaluation."),
    ("dataset", "synthetic", "synthetic:Synthetic",
     "Synthetic tri-modal emotion-like data (audio, text, visual; 4 classes); deterministic by data_seed."),
    ("dataset", "latent_views", "latent_views:LatentViews",
     "Synthetic Gaussian class views: tunable headroom, exact Bayes bound."),
]


@mmtk.hookimpl
def mmtk_register_components(register):
    register_by_path(register, __package__, COMPONENTS)


@mmtk.hookimpl
def mmtk_recipe_defaults():
    # What a recipe gets when it does not say: the core itself names no component.
    return {"missing": {"train": {"type": "none"}, "eval": {"type": "none"}},
            "losses": {"task": {"type": "cross_entropy"}},
            "train": {"monitor": "uar", "optimizer": {"type": "adam"}},
            "eval": {"metrics": ["war", "uar", "f1_macro", "f1_weighted"]}}
