"""Where a trial runs: device choice, mixed precision, seeding."""
from __future__ import annotations

import contextlib
import random
from typing import Any

import numpy as np
import torch

from .errors import MmtkError


def pick_device(requested: str = "auto") -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise MmtkError(f"device '{requested}' was requested but CUDA is not available here; "
                        "use --device cpu or auto")
    if requested == "mps" and not torch.backends.mps.is_available():
        raise MmtkError("device 'mps' was requested but it is not available here; use --device cpu or auto")
    try:
        return torch.device(requested)
    except RuntimeError as exc:
        raise MmtkError(f"device '{requested}' is not a device torch knows ({exc}); use cpu, "
                        "cuda, cuda:N or auto") from None


def cpu_has_bf16() -> bool:
    """Does this CPU compute bf16 natively (AVX-512 BF16 / AMX), so autocast pays off?"""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def autocast_dtype(amp: Any, device: torch.device) -> torch.dtype | None:
    """Mixed precision on CUDA by default (bf16 where supported, else fp16). On a CPU only
    when asked for (``amp: bf16``) and the CPU has native bf16: there it speeds the LSTMs up
    about 1.5x but rounds more than fp32, so it is a choice, not a default."""
    if device.type == "cpu" and amp == "bf16":
        if not cpu_has_bf16():
            raise MmtkError("train.amp is bf16, but this CPU has no native bf16 (AVX-512 BF16 or "
                            "AMX), where bf16 autocast would only be slower; use amp: auto (fp32 on a CPU)")
        return torch.bfloat16
    if device.type != "cuda" or amp is False:
        return None
    if amp == "fp16":
        return torch.float16
    if amp == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def autocast(device: torch.device, dtype: torch.dtype | None) -> Any:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def fits_on_device(nbytes: int, device: torch.device, share: float = 0.5) -> bool:
    """Does data of ``nbytes`` take at most ``share`` of the GPU's free memory?"""
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes <= share * free


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
