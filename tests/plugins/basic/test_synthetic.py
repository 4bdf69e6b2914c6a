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
