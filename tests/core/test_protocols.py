"""The missing-rate semantics (CPM-Nets: an exact fraction of missing cells, the data's own
included, one modality kept), protocols that predate ``present``, and never scoring a sample
that was shown no modality."""
from __future__ import annotations

import torch

from mmtk.data import TensorData
from mmtk.evaluate import Evaluator
from mmtk.metrics import accuracy
from mmtk.predictions import score_predictions
from mmtk.protocols import EvalCondition, EvalPlan, MissingProtocol, call_with_present, exact_rate_mask


def _present(n=1000, m=3, own=0.2, seed=0):
    g = torch.Generator().manual_seed(seed)
    present = torch.rand(n, m, generator=g) >= own
    present[~present.any(1), 0] = True
    return present


def test_exact_rate_counts_the_datas_own_missing_cells():
    present = _present()
    for rate in (0.3, 0.5, 0.6):
        keep = exact_rate_mask(present, rate, torch.Generator().manual_seed(1))
        assert (~keep).sum() == round(rate * keep.numel())          # exactly η of all cells
        assert not (keep & ~present).any()                          # never shows an absent cell
        assert keep.any(1).all()                                    # one modality kept per sample
    own = float((~present).float().mean())
    keep = exact_rate_mask(present, own / 2, torch.Generator().manual_seed(1))
    assert torch.equal(keep, present)                               # the data already misses more


def test_exact_rate_keeps_one_modality_even_when_that_caps_the_rate():
    present = torch.ones(10, 3, dtype=torch.bool)
    keep = exact_rate_mask(present, 0.9, torch.Generator().manual_seed(0))
    assert (keep.sum(1) == 1).all()                                 # 2/3 is the most it can drop


def test_protocols_without_present_still_work():
    class Old(MissingProtocol):
        def eval_conditions(self, modalities, n):
            return EvalPlan([EvalCondition("full", torch.ones(n, len(modalities), dtype=torch.bool))], ["full"])

    class New(MissingProtocol):
        def eval_conditions(self, modalities, n, present=None):
            return EvalPlan([EvalCondition("own", present)], ["own"])

    present = _present(n=8)
    assert call_with_present(Old().eval_conditions, present, ("a", "t", "v"), 8).conditions[0].name == "full"
    assert torch.equal(call_with_present(New().eval_conditions, present, ("a", "t", "v"), 8).conditions[0].mask,
                       present)


class _Echo(torch.nn.Module):
    """Predicts class 1 for every sample (enough to check which samples are scored)."""

    def forward(self, batch):
        logits = torch.zeros(batch.size, 2)
        logits[:, 1] = 1.0
        return type("Out", (), {"logits": logits})()


def test_a_sample_shown_no_modality_is_never_scored():
    n = 10
    data = TensorData({"a": torch.randn(n, 2), "t": torch.randn(n, 2)}, torch.tensor([1] * 6 + [0] * 4),
                      [f"s{i}" for i in range(n)])
    mask = torch.ones(n, 2, dtype=torch.bool)
    mask[6:] = False                    # the four class-0 samples are shown nothing
    evaluator = Evaluator({"war": accuracy}, 2, 4, None)
    keep: dict = {}
    out = evaluator.evaluate(_Echo().eval(), data, EvalPlan([EvalCondition("c", mask)], ["c"]), keep)
    assert out["c"]["war"] == 1.0        # scored on the six samples that were shown something
    assert keep["excluded"] == {"c": 4}
    again = score_predictions(keep["split"], {"war": evaluator.metrics["war"]}, 2)
    assert again["c"]["war"] == 1.0
