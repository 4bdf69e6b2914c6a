"""The embedded synthetic dataset: deterministic, imbalanced, optional frame sequences."""
from __future__ import annotations

import torch

from mmtk.builder import Builder
from mmtk.plugins import load_plugins

REG = load_plugins().registry


def test_synthetic_is_deterministic_and_informative():
    ds = Builder(REG).dataset({"type": "synthetic", "n_samples": 400})
    a, b = ds.load(), ds.load()
    assert torch.equal(a.train.inputs["text"], b.train.inputs["text"])
    assert a.in_dims == {"audio": 130, "text": 1024, "visual": 342}
    other = Builder(REG).dataset({"type": "synthetic", "n_samples": 400, "data_seed": 1}).load()
    assert not torch.equal(a.train.inputs["text"], other.train.inputs["text"])
    counts = torch.bincount(a.train.labels)
    assert counts.max() > counts.min() * 1.3            # imbalanced, so WAR != UAR
    seq = Builder(REG).dataset({"type": "synthetic", "n_samples": 40, "frames": {"audio": 6}}).load()
    assert seq.train.inputs["audio"].shape[1:] == (6, 130) and "audio" in seq.train.lengths


def _class_means_accuracy(train, test, m="text"):
    """Nearest class mean on one modality: a quick check of whether two draws share a task."""
    means = torch.stack([train.inputs[m][train.labels == k].mean(0) for k in range(4)])
    pred = torch.cdist(test.inputs[m], means).argmin(1)
    return (pred == test.labels).float().mean().item()


def test_sample_seed_redraws_samples_of_the_same_task():
    make = lambda **kw: Builder(REG).dataset({"type": "synthetic", "n_samples": 1200, **kw})  # noqa: E731
    a, b = make(sample_seed=1).load(), make(sample_seed=2).load()
    assert not torch.equal(a.test.inputs["text"], b.test.inputs["text"])     # other test samples ...
    same_task = _class_means_accuracy(a.train, b.test)
    other_task = _class_means_accuracy(a.train, make(data_seed=5, sample_seed=2).load().test)
    assert same_task > 0.6 and same_task > other_task + 0.2                  # ... of the same task
    # 'trial' ties the samples to the trial seed the toolkit passes
    t1 = Builder(REG).dataset({"type": "synthetic", "n_samples": 1200, "sample_seed": "trial"}, seed=1).load()
    assert torch.equal(t1.test.inputs["text"], a.test.inputs["text"])


def test_a_large_generated_test_set():
    splits = Builder(REG).dataset({"type": "synthetic", "n_samples": 400, "n_test": 10000}).load()
    assert len(splits.train) == 400 and len(splits.test) == 10000
    assert splits.info["test samples"] == 10000
    counts = torch.bincount(splits.test.labels, minlength=4).float() / 10000
    assert (counts - torch.tensor([0.31, 0.30, 0.20, 0.19])).abs().max() < 0.03
