"""What a trial keeps on disk: stage checkpoints, the resume snapshot, and ``init_from``.

The resume snapshot's schema is written and read here only (:class:`Snapshot`): a killed
trial restarts from its last snapshot and ends exactly as an uninterrupted one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .errors import MmtkError
from .pipeline import Pipeline
from .recipe import InitFrom
from .rundir import BackgroundWriter, load_torch


@dataclass
class StageState:
    """Where a stage's selection stands: the epoch reached and the best validation so far."""

    epoch: int = 0
    best_score: float = -math.inf   # signed: higher is better, whatever the metric
    best_epoch: int = -1
    bad_epochs: int = 0
    best_state: dict | None = None
    history: list = field(default_factory=list)


@dataclass
class Snapshot:
    """Everything needed to continue stage ``stage_index`` after an interruption."""

    stage_index: int
    state: StageState
    model: dict
    optimizer: dict
    scheduler: dict | None
    shuffle_gen: torch.Tensor
    mask_gen: torch.Tensor
    torch_rng: torch.Tensor
    stopped: bool

    def to_dict(self) -> dict[str, Any]:
        # by hand, not dataclasses.asdict: that would deep-copy every tensor
        out = {k: v for k, v in vars(self).items() if k != "state"}
        return {**out, **vars(self.state)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Snapshot":
        state = StageState(d["epoch"], d["best_score"], d["best_epoch"], d["bad_epochs"],
                           d["best_state"], d["history"])
        return cls(d["stage_index"], state, d["model"], d["optimizer"], d.get("scheduler"),
                   d["shuffle_gen"], d["mask_gen"], d["torch_rng"], bool(d.get("stopped")))


def snapshot_path(directory: Path) -> Path:
    return directory / "resume.pt"


def stage_path(directory: Path, stage: str) -> Path:
    return directory / f"stage-{stage}.pt"


def read_snapshot(directory: Path) -> Snapshot | None:
    path = snapshot_path(directory)
    if not path.is_file():
        return None
    advice = ("delete it and resume again: finished stages are kept and the interrupted stage "
              "restarts from its first epoch (ending exactly as an uninterrupted run)")
    try:
        raw = load_torch(path)
        return Snapshot.from_dict(raw)
    except MmtkError as exc:
        raise MmtkError(f"the resume snapshot cannot be used: {exc} For this file: {advice}.") from None
    except (KeyError, TypeError, AttributeError) as exc:
        raise MmtkError(f"{path} is not a resume snapshot this mmtk wrote (missing {exc}); "
                        f"{advice}") from None


def write_snapshot(writer: BackgroundWriter, directory: Path, snap: Snapshot) -> None:
    # atomic but not fsynced: a killed run resumes from it; an OS crash may lose one epoch
    writer.save_torch(snapshot_path(directory), snap.to_dict(), durable=False)


def remap_state(state: dict, mapping: dict | list | None) -> dict:
    """Copy ``src_prefix`` keys to one or more ``dst_prefix`` keys (identity when no map)."""
    if not mapping:
        return dict(state)
    pairs = mapping.items() if isinstance(mapping, dict) else [tuple(p) for p in mapping]
    out = {}
    for src, dsts in pairs:
        for dst in ([dsts] if isinstance(dsts, str) else dsts):
            for k, v in state.items():
                if k.startswith(src):
                    out[dst + k[len(src):]] = v
    return out


def apply_init_from(model: Pipeline, init: InitFrom, earlier: dict[str, dict]) -> None:
    """Load the matching parameters of an earlier stage (through ``init.map``) into ``model``."""
    loaded = remap_state(earlier[init.stage], init.map)
    own = model.state_dict()
    usable = {k: v for k, v in loaded.items() if k in own and own[k].shape == v.shape}
    if not usable:
        raise MmtkError(f"init_from '{init.stage}': no parameter of that stage matches this "
                        "stage's model (check init_from.map)")
    model.load_state_dict(usable, strict=False)
