"""``mmtk run --dry-run``: everything short of training.

Resolves the recipe, picks the device, loads the first fold's data, and per stage builds the
model (``init_from`` and ``freeze`` applied), the optimizer and scheduler, and runs one
training batch forward through the model and the losses. What only building can find (a
constructor that raises, a ``freeze`` naming a missing part, an ``init_from`` map that
matches nothing, a head of the wrong width) is reported naming the stage and the component.
"""
from __future__ import annotations

from typing import Any

import torch

from .builder import Builder
from .checkpoint import apply_init_from
from .data_loading import load_data
from .devices import pick_device
from .errors import MmtkError
from .protocols import training_masks
from .recipe import Recipe
from .task import SCORES, check_output, output_width, recipe_target


def dry_run(recipe: Recipe, system: Any, device: str | None = None) -> dict:
    """A report of what a run would build: modalities, and parameters and losses per stage."""
    pick_device(device or recipe.first_stage.train.device)
    builder = Builder(system.registry)
    target, _ = recipe_target(builder, recipe)
    folds = recipe.data.folds
    if folds == "all":
        folds = builder.dataset(recipe.data.dataset).folds()
    seed = recipe.seeds[0]
    splits = load_data(builder, recipe.data, (folds or [None])[0], seed)
    report: dict = {"recipe": str(recipe.source), "modalities": list(splits.modalities), "stages": []}
    earlier: dict[str, dict] = {}
    for index, stage in enumerate(recipe.stages):
        where = f"stage '{stage.name}'"
        model = builder.model(stage.model, splits.in_dims, splits.num_classes, seed + index,
                              out_dim=output_width(target, splits.num_classes))
        for key, step in (("init_from", lambda: apply_init_from(model, stage.init_from, earlier)),
                          ("freeze", lambda: model.freeze(stage.freeze))):
            if getattr(stage, key):
                try:
                    step()
                except MmtkError as exc:
                    raise MmtkError(f"stages[{index}].{key} ({where}): {exc}") from None
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = builder.optimizer(stage.train.optimizer, trainable)
        builder.scheduler(stage.train.scheduler, optimizer, stage.train.epochs)
        _first_batch(builder, stage, model, splits, target, seed, where)
        earlier[stage.name] = model.state_dict()
        report["stages"].append({"name": stage.name, "parameters": sum(p.numel() for p in model.parameters()),
                                 "aux_losses": sorted(model.declared_losses())})
    return report


def _first_batch(builder: Builder, stage: Any, model: Any, splits: Any, target: str, seed: int,
                 where: str) -> None:
    """One training batch forward through the model and the task loss."""
    train = splits.train
    idx = torch.arange(min(stage.train.batch_size, len(train)))
    protocol = builder.component("missing", stage.missing.train, {"seed": seed}, "missing.train")
    keep = training_masks(protocol, len(train), train.modalities, train.present)(
        idx, train.present[idx], torch.Generator().manual_seed(seed))
    batch = train.batch(idx)
    task_loss = builder.component("loss", stage.losses.task, where="losses.task")
    model.train()
    try:
        out = model(batch.masked(keep), truth=batch)
        check_output(out.logits, output_width(target, splits.num_classes), target)
        task_loss(out.logits, batch.scores if target == SCORES else batch.labels)
    except MmtkError as exc:
        raise MmtkError(f"{where}, first training batch: {exc}") from None
    except Exception as exc:  # a component's forward failed on real data
        raise MmtkError(f"{where}, first training batch: the model failed: "
                        f"{type(exc).__name__}: {exc}") from None
