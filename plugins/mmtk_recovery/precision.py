"""Full precision for the parts of recovery that mixed precision would break.

A flow must stay invertible and its log-determinant exact, and a sampler adds up dozens of
steps whose scale grows to sigma²: under bf16/fp16 autocast (mmtk's default on CUDA) both
lose what they compute. They run in float32 with autocast off; the small refinement networks
around them may run in mixed precision.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def float32(like: Tensor) -> Any:
    """A context with autocast off on ``like``'s device (use with tensors cast to float32)."""
    return torch.autocast(device_type=like.device.type, enabled=False)


def full(x: Tensor) -> Tensor:
    """``x`` in float32 if it is a half-precision tensor (float64 stays float64)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
