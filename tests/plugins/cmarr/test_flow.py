"""The normalizing flows of CM-ARR's reconstructor: invertibility and log-determinants."""
from __future__ import annotations

import pytest
import torch

from mmtk.errors import MmtkError
from mmtk_cmarr.reconstruction import make_flow


def _random_flow(dim, blocks, seed, scale_map="sigmoid", dtype=torch.float64, noise=0.3):
    torch.manual_seed(seed)
    flow = make_flow(dim, blocks=blocks, hidden=16, scale_map=scale_map).to(dtype)
    with torch.no_grad():   # coupling nets start at zero (identity); make the flow non-trivial
        for p in flow.parameters():
            p.add_(noise * torch.randn_like(p))
    return flow


@pytest.mark.parametrize("scale_map", ["sigmoid", "exp"])
def test_round_trip_x_to_z_to_x(scale_map):
    # float32, the precision models train in
    flow = _random_flow(8, 3, 0, scale_map, dtype=torch.float32, noise=0.1)
    x = torch.randn(32, 8)
    z = flow.inverse(x)
    assert (z - x).abs().max().item() > 1e-2, "the test flow should not be the identity"
    assert (flow.forward(z) - x).abs().max().item() < 1e-4


def _numeric_jacobian(fn, x, eps=1e-6):
    cols = []
    for k in range(x.shape[-1]):
        step = torch.zeros_like(x)
        step[k] = eps
        cols.append((fn(x + step) - fn(x - step)) / (2 * eps))
    return torch.stack(cols, -1)


def test_log_det_matches_numeric_jacobian():
    flow = _random_flow(4, 2, 1)
    x = torch.randn(3, 4, dtype=torch.float64)
    z, log_det_inv = flow.inverse_and_log_det(x)
    x_back, log_det_fwd = flow.forward_and_log_det(z)
    for i in range(3):
        jac_inv = _numeric_jacobian(lambda v: flow.inverse(v[None])[0], x[i])     # dz/dx
        sign, value = torch.linalg.slogdet(jac_inv)
        assert sign.item() != 0
        assert log_det_inv[i].item() == pytest.approx(value.item(), abs=1e-5)
        jac_fwd = _numeric_jacobian(lambda v: flow.forward(v[None])[0], z[i])     # dx/dz
        _, value_fwd = torch.linalg.slogdet(jac_fwd)
        assert log_det_fwd[i].item() == pytest.approx(value_fwd.item(), abs=1e-5)
        # the two directions are inverse maps: their log-determinants have opposite signs
        assert log_det_fwd[i].item() == pytest.approx(-log_det_inv[i].item(), abs=1e-6)
    assert abs(log_det_inv).max() > 1e-2, "the test flow should change volume"


def test_flow_rejects_odd_dimension():
    with pytest.raises(MmtkError, match="even"):
        make_flow(7)
