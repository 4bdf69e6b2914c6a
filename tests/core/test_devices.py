"""Mixed precision per device, and what deterministic CPU training switches on."""
from __future__ import annotations

import pytest
import torch

from conftest import RECIPES
from mmtk import MmtkError, devices

CPU = torch.device("cpu")


@pytest.mark.parametrize("amp", ["auto", True, False, "fp16"])
def test_cpu_trains_in_fp32_unless_bf16_is_asked_for(amp):
    assert devices.autocast_dtype(amp, CPU) is None


def test_cpu_bf16_when_asked_and_the_cpu_has_it(monkeypatch):
    monkeypatch.setattr(devices, "cpu_has_bf16", lambda: True)
    assert devices.autocast_dtype("bf16", CPU) is torch.bfloat16


def test_cpu_bf16_without_native_support_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(devices, "cpu_has_bf16", lambda: False)
    with pytest.raises(MmtkError, match="this CPU has no native bf16"):
        devices.autocast_dtype("bf16", CPU)


def test_deterministic_training_does_not_fill_new_tensors(run_tiny, monkeypatch):
    """torch's deterministic mode NaN-fills every new tensor by default (~20 % of an LSTM
    step); mmtk keeps the deterministic kernels and switches the filling off."""
    monkeypatch.setattr(torch.utils.deterministic, "fill_uninitialized_memory", True)
    run_tiny(RECIPES / "baseline.yaml", ["train.epochs=1"])
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.utils.deterministic.fill_uninitialized_memory is False
