"""Under mixed precision (mmtk's default on CUDA; CPU bf16 autocast here, the same code path)
flows and samplers compute in float32 and every output stays finite."""
from __future__ import annotations

import pytest
import torch

BLOCKS = {"dicmor_flow": {"type": "dicmor_flow", "blocks": 2, "hidden": 16},
          "imder_diffusion": {"type": "imder_diffusion", "steps": 3, "hidden": 16}}


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_a_training_step_and_evaluation_under_bf16_autocast(name, pipeline, make_batch, rows):
    pipe = pipeline(BLOCKS[name])
    truth = make_batch(6)
    shown = rows("a", "t", "v", "at", "av", "tv")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = pipe.train()(truth.masked(shown), truth=truth)
        assert out.aux and all(torch.isfinite(v) for v in out.aux.values())
        (out.logits.float().mean() + sum(out.aux.values())).backward()
        with torch.no_grad():
            first = pipe.eval()(truth.masked(shown)).logits
            again = pipe(truth.masked(shown)).logits
    assert torch.isfinite(first).all() and torch.equal(first, again)


def test_the_flows_run_in_float32_under_autocast(pipeline):
    slot = pipeline(BLOCKS["dicmor_flow"]).reconstructor
    x = torch.randn(4, 8, dtype=torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert slot.translate("text", "audio", x).dtype == torch.float32
        assert slot.log_prob("text", x, torch.tensor([0, 1, 2, -1])).dtype == torch.float32
