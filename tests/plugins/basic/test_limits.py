"""The basic plugin's parameters declare their limits: ``mmtk validate`` accepts a value at the
boundary and refuses the first one past it, naming the dotted path and the limit."""
from __future__ import annotations

from pathlib import Path

import pytest

# the synthetic control: the data limits below are the `synthetic` dataset's
RECIPE = Path(__file__).resolve().parents[3] / "benchmarks" / "recipes" / "control" / "baseline.yaml"
SGD = ("train.optimizer={type: sgd}",)
TEXTCNN = ("model.encoders.text={type: textcnn}",)
LSTM = ("model.encoders.audio={type: lstm}",)
RANDOM_RATE = ("missing.train={type: random_rate}",)

# (dotted path, a valid value at/next to the limit, the first invalid one, what the error says, setup)
CASES = [
    # optimizers
    ("train.optimizer.lr", "1e-9", "0", "must be > 0", ()),
    ("train.optimizer.lr", "1e-9", "-1", "must be > 0", ()),
    ("train.optimizer.lr", "1e3", ".inf", "must be a finite number", ()),
    ("train.optimizer.weight_decay", "0", "-1e-4", "must be >= 0", ()),
    ("train.optimizer.lr", "0.1", "0", "must be > 0", ("train.optimizer={type: adamw}",)),
    ("train.optimizer.weight_decay", "0", "-0.01", "must be >= 0", ("train.optimizer={type: adamw}",)),
    ("train.optimizer.lr", "0.1", "-0.1", "must be > 0", SGD),
    ("train.optimizer.momentum", "0", "-0.5", "must be >= 0", SGD),
    ("train.optimizer.momentum", "0.99", "1.0", "must be < 1", SGD),
    # schedulers
    ("train.scheduler.gamma", "1e-3", "0", "must be > 0", ("train.scheduler={type: step}",)),
    ("train.scheduler.step_size", "1", "0", "must be >= 1", ("train.scheduler={type: step}",)),
    ("train.scheduler.min_lr", "0", "-1e-5", "must be >= 0", ("train.scheduler={type: cosine}",)),
    ("train.scheduler.constant_epochs", "0", "-1", "must be >= 0", ("train.scheduler={type: linear_decay}",)),
    # encoders, head, loss
    ("model.encoders.audio.hidden", "1", "0", "must be >= 1", ()),
    ("model.encoders.audio.dropout", "0.0", "-0.1", "must be >= 0", ()),
    ("model.encoders.audio.dropout", "0.99", "1.0", "must be < 1", ()),
    ("model.encoders.audio.layers", "1", "0", "must be >= 1", LSTM),
    ("model.encoders.text.channels", "1", "0", "must be >= 1", TEXTCNN),
    ("model.encoders.text.kernel_sizes", "[1, 3]", "[3, 0]", "item 1: must be >= 1", TEXTCNN),
    ("model.encoders.text.kernel_sizes", "[3]", "[]", "must not be empty", TEXTCNN),
    ("model.encoders.text.dropout", "0.0", "1.0", "must be < 1", TEXTCNN),
    ("model.head.hidden", "[1]", "[0]", "item 0: must be > 0", ()),
    ("model.head.hidden", "[]", "[64, -2]", "item 1: must be > 0", ()),
    ("model.head.dropout", "0.0", "1.0", "must be < 1", ()),
    ("model.head.dropout", "0.0", "-0.5", "must be >= 0", ()),
    ("losses.task.label_smoothing", "1.0", "1.5", "must be <= 1", ()),
    ("losses.task.label_smoothing", "0.0", "-0.1", "must be >= 0", ()),
    # dataset and missing protocols
    ("data.n_samples", "1", "0", "must be >= 1", ()),
    ("data.test_fraction", "0.99", "1.0", "must be < 1", ()),
    ("data.test_fraction", "0.01", "0", "must be > 0", ()),
    ("data.noise", "0", "-1", "must be >= 0", ()),
    ("data.separation", "0", "-0.5", "must be >= 0", ()),
    ("data.data_seed", "0", "-1", "must be >= 0", ()),
    ("data.dims", "{audio: 1, text: 8, visual: 4}", "{audio: 0, text: 8, visual: 4}", "'audio': must be >= 1", ()),
    ("data.frames", "{audio: 0}", "{audio: -1}", "'audio': must be >= 0", ()),
    ("missing.train.rate", "0.0", "1.0", "must be < 1", RANDOM_RATE),
    ("missing.train.rate", "0.0", "-0.1", "must be >= 0", RANDOM_RATE),
    ("missing.train.eval_seed", "0", "-1", "must be >= 0", RANDOM_RATE),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}={c[2]}" for c in CASES])
def test_a_value_past_its_limit_is_refused_and_the_boundary_accepted(check_limit, case):
    path, good, bad, says, setup = case
    check_limit(RECIPE, path, good, bad, says, setup)


# the default benchmark's dataset (latent_views), on a shipped recipe as a user meets it
DEFAULT_RECIPE = RECIPE.parents[3] / "recipes" / "baseline.yaml"
LATENT_CASES = [
    ("data.labels", "1", "0", "must be >= 1"),
    ("data.unlabeled", "0", "-1", "must be >= 0"),
    ("data.complete_fraction", "1.0", "1.1", "must be <= 1"),
    ("data.shared_signal", "0.0", "-0.1", "must be >= 0"),
    ("data.separation", "0.1", "0", "must be > 0"),
    ("data.n_test", "1", "0", "must be >= 1"),
]


@pytest.mark.parametrize("case", LATENT_CASES, ids=[f"{c[0]}={c[2]}" for c in LATENT_CASES])
def test_a_latent_views_value_past_its_limit_is_refused(check_limit, case):
    check_limit(DEFAULT_RECIPE, *case)


def test_every_problem_is_reported_at_once(validate):
    code, err = validate(RECIPE, "train.optimizer.lr=0", "model.head.dropout=1.0", "data.n_samples=0")
    assert code == 2
    for path in ("train.optimizer.lr: must be > 0", "model.head.dropout: must be < 1",
                 "data.n_samples: must be >= 1"):
        assert path in err, err


def test_adam_betas_are_each_in_the_unit_interval(check_limit):
    check_limit(RECIPE, "train.optimizer.betas", "[0.0, 0.999]", "[1.0, 0.999]", "must be < 1")
