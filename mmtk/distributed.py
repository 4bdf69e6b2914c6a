"""torch.distributed glue for runs launched by torchrun (DDP); a no-op in a single process.

``torchrun --nproc_per_node=N -m mmtk run RECIPE`` sets RANK/WORLD_SIZE/LOCAL_RANK; the loop
then shards every epoch's global batches across ranks, averages gradients with
DistributedDataParallel, gathers evaluation predictions, and lets only rank 0 write files.
"""
from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init(device_type: str) -> None:
    """Join the process group once (gloo on CPU, nccl on CUDA)."""
    if launched_by_torchrun() and not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    return rank() == 0


def local_device(device: torch.device) -> torch.device:
    if device.type == "cuda" and launched_by_torchrun():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def broadcast_object(obj: Any) -> Any:
    """Rank 0's value on every rank."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def shard(index: torch.Tensor) -> torch.Tensor:
    """This rank's share of a global index: every world_size-th element."""
    return index[rank()::world_size()] if active() else index


def gather_by_index(local_index: torch.Tensor, local_values: torch.Tensor, n: int) -> torch.Tensor:
    """Reassemble values computed on index shards into one (n, ...) tensor on every rank."""
    if not active():
        return local_values
    parts: list[Any] = [None] * world_size()
    dist.all_gather_object(parts, (local_index.cpu(), local_values.cpu()))
    out = torch.empty((n, *local_values.shape[1:]), dtype=local_values.dtype)
    for idx, vals in parts:
        out[idx] = vals
    return out.to(local_values.device)


def barrier() -> None:
    if active():
        dist.barrier()
