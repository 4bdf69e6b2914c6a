"""One trial (a fold and a seed): data, stages, selection on validation, final evaluation.

The trial loads its data (normalised on train only), runs the recipe's stages one after the
other (:class:`~mmtk.stage_loop.StageLoop`), then evaluates the selected model once on
validation and test under every evaluation condition. A finished stage is never retrained on
``--resume``; an interrupted one continues from its snapshot.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from . import distributed as dist
from .builder import Builder
from .checkpoint import apply_init_from, read_snapshot, snapshot_path, stage_path
from .data import DataSplits
from .data_loading import load_data
from .devices import autocast_dtype, fits_on_device, pick_device, seed_everything
from .errors import MmtkError
from .evaluate import Evaluator, eval_plans
from .pipeline import Pipeline
from .predictions import FILE as PREDICTIONS
from .predictions import TrialPredictions, save_predictions
from .recipe import Recipe, Stage
from .registry import Registry
from .rundir import BackgroundWriter, load_torch, read_json, save_torch, write_json
from .stage_loop import StageLoop, StageParts
from .task import (
    SCORES,
    check_metrics,
    check_scores,
    check_supervision,
    loss_target,
    output_width,
    recipe_target,
    supervised,
)

Progress = Callable[..., None]


def quiet(*_: Any, **__: Any) -> None:
    pass


@dataclass
class TrialSpec:
    fold: int | None
    seed: int
    directory: Path

    @property
    def key(self) -> str:
        return (f"fold{self.fold}-" if self.fold is not None else "") + f"seed{self.seed}"


class Trainer:
    """Runs one trial of a resolved recipe."""

    # the splits of the final evaluation; a tuning trial sets ("val",) so test is never read
    final_splits: tuple[str, ...] = ("val", "test")

    def __init__(self, recipe: Recipe, registry: Registry, device: str | None = None,
                 progress: Progress = quiet):
        self.recipe = recipe
        self.builder = Builder(registry)
        self.device = pick_device(device or recipe.first_stage.train.device)
        dist.init(self.device.type)
        self.device = dist.local_device(self.device)
        self.progress = progress if dist.is_main() else quiet
        self.target, self.loss_name = recipe_target(self.builder, recipe)
        self.metrics = self.builder.metrics(recipe.eval.metrics)
        check_metrics(self.target, self.metrics, self.loss_name)

    def run(self, trial: TrialSpec) -> dict:
        self.writer = BackgroundWriter()
        try:
            return self._run(trial)
        finally:
            self.writer.wait()  # every checkpoint submitted is on disk, even after an error

    def _run(self, trial: TrialSpec) -> dict:
        trial.directory.mkdir(parents=True, exist_ok=True)
        done = trial.directory / "metrics.json"
        if done.is_file():  # finished earlier (resume): nothing to redo
            return read_json(done, "trial results file")
        seed_everything(trial.seed)
        if self.recipe.first_stage.train.deterministic and self.device.type == "cpu":
            torch.use_deterministic_algorithms(True, warn_only=True)
            # Deterministic mode also fills every new tensor with NaN (against kernels that read
            # memory they never wrote); that made LSTM steps ~20 % slower and changes no result.
            torch.utils.deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]
        splits = self.load(trial)
        evaluator = Evaluator(self.metrics, splits.num_classes, self.recipe.eval.batch_size,
                              autocast_dtype(self.recipe.first_stage.train.amp, self.device), self.target)
        evaluator.split_names = {id(part): name for name, part in splits.items()}
        model = self.run_stages(trial, splits, evaluator)
        evaluator.phase = "final"
        plans = eval_plans(lambda: self.missing(self.recipe.last_stage, "eval", trial.seed), splits,
                           self.final_splits)
        kept: dict[str, dict] = {split: {} for split in plans}
        self.progress("final_eval", trial=trial.key, splits=list(self.final_splits),
                      monitor=self.recipe.last_stage.train.monitor)
        results = {split: evaluator.evaluate(model, getattr(splits, split), plans[split], kept[split])
                   for split in self.final_splits}
        if dist.is_main():
            self.writer.wait()
            save_torch(trial.directory / "model.pt", model.state_dict())
            save_predictions(trial.directory / PREDICTIONS, TrialPredictions(
                list(splits.modalities), self.target, splits.num_classes, list(splits.class_names or []),
                {split: k["split"] for split, k in kept.items()}))
            write_json(trial.directory / "evaluation.json", {
                "excluded": {split: k["excluded"] for split, k in kept.items()},
                "unlabeled": {split: k["unlabeled"] for split, k in kept.items()},
                "reads": evaluator.reads, "selected": self.selected,
                "note": "excluded: labelled samples shown no modality under a condition are not "
                        "scored; unlabeled: samples without a label, never scored; reads: "
                        "evaluations of each split while training and at the end"})
            write_json(done, results)  # last: a trial with metrics.json has its predictions too
            snapshot_path(trial.directory).unlink(missing_ok=True)
        dist.barrier()
        excluded = {f"{split} {c}": n for split, k in kept.items() for c, n in k["excluded"].items()}
        unlabeled = {split: k["unlabeled"] for split, k in kept.items() if k["unlabeled"]}
        self.progress("trial_end", trial=trial.key, results=results, excluded=excluded,
                      unlabeled=unlabeled)
        return results

    def load(self, trial: TrialSpec) -> DataSplits:
        """The trial's splits (recorded in data.json), moved to the GPU when they fit."""
        splits = load_data(self.builder, self.recipe.data, trial.fold, trial.seed)
        if self.target == SCORES:
            check_scores(splits, self.recipe.data.dataset.type, self.loss_name)
        check_supervision(splits, self.recipe.data.dataset.type, self.target)
        if dist.is_main():
            write_json(trial.directory / "data.json", {
                **splits.info, "fold": trial.fold, "seed": trial.seed, "modalities": list(splits.modalities),
                "in_dims": splits.in_dims, "num_classes": splits.num_classes,
                "class_names": splits.class_names,
                "sizes": {name: len(part) for name, part in splits.items()},
                "labeled": {name: int(supervised(part.labels, part.scores, self.target).sum())
                            for name, part in splits.items()}})
        if self.device.type == "cuda" and fits_on_device(sum(p.nbytes() for _, p in splits.items()), self.device):
            # the whole dataset lives on the GPU; batches are sliced there
            splits.train, splits.val, splits.test = (splits.train.to(self.device),
                                                     splits.val.to(self.device), splits.test.to(self.device))
        return splits

    def run_stages(self, trial: TrialSpec, splits: DataSplits, evaluator: Evaluator) -> Pipeline:
        """Every stage in order; returns the model selected by the last one."""
        snap = read_snapshot(trial.directory)
        finished: dict[str, dict] = {}
        self.selected: dict[str, dict] = {}
        model: Pipeline | None = None
        for index, stage in enumerate(self.recipe.stages):
            ckpt = stage_path(trial.directory, stage.name)
            if snap is not None and index < snap.stage_index and ckpt.is_file():
                model = self.stage_model(stage, splits, trial.seed + index, finished)
                model.load_state_dict(load_torch(ckpt))
                finished[stage.name] = model.state_dict()
                self.selected[stage.name] = selected_from_history(
                    trial.directory, stage, self.metrics[stage.train.monitor].higher_is_better)
                continue
            seed_everything(trial.seed + 1000 * index)
            model = self.stage_model(stage, splits, trial.seed + index, finished)
            loop = StageLoop(stage, index, self.stage_parts(stage, model, splits, trial.seed),
                             splits, evaluator, trial, self.device, self.target, self.writer,
                             self.progress)
            state = loop.run(snap if snap is not None and snap.stage_index == index else None)
            self.selected[stage.name] = {"epoch": state.best_epoch, "epochs_run": state.epoch,
                                         "monitor": stage.train.monitor, "split": "val",
                                         "value": state.best_score * loop.sign}
            if dist.is_main():
                write_json(trial.directory / f"history-{stage.name}.json", state.history)
            model.load_state_dict(state.best_state)
            if dist.is_main():
                self.writer.wait()  # the stage's last resume.pt lands before its checkpoint
                save_torch(ckpt, model.state_dict())
            finished[stage.name] = {k: v.detach().clone() for k, v in model.state_dict().items()}
            snap = None
        assert model is not None
        return model

    def missing(self, stage: Stage, which: str, seed: int) -> Any:
        return self.builder.component("missing", getattr(stage.missing, which), {"seed": seed},
                                      f"missing.{which}")

    def stage_model(self, stage: Stage, splits: DataSplits, seed: int,
                    earlier: dict[str, dict]) -> Pipeline:
        model = self.builder.model(stage.model, splits.in_dims, splits.num_classes, seed,
                                   out_dim=output_width(self.target, splits.num_classes))
        if stage.init_from is not None:
            apply_init_from(model, stage.init_from, earlier)
        model.fit_training_data(splits.train)   # closed-form parts (an input imputer), if any
        if stage.freeze:
            model.freeze(stage.freeze)
        return model.to(self.device)

    def stage_parts(self, stage: Stage, model: Pipeline, splits: DataSplits, seed: int) -> StageParts:
        cfg = stage.train
        if cfg.monitor not in self.metrics:
            raise MmtkError(f"train.monitor '{cfg.monitor}' is not among eval.metrics {list(self.metrics)}")
        task_loss = self.builder.component("loss", stage.losses.task, where="losses.task")
        if loss_target(task_loss) != self.target:
            raise MmtkError("every stage must train the same task: the first stage's losses.task "
                            f"reads {self.target}, but '{stage.losses.task.type}' reads {loss_target(task_loss)}")
        optimizer = self.builder.optimizer(cfg.optimizer, [p for p in model.parameters() if p.requires_grad])
        forward: Any = model
        if dist.active():
            from torch.nn.parallel import DistributedDataParallel
            forward = DistributedDataParallel(model, find_unused_parameters=True)
        if cfg.compile:
            forward = torch.compile(forward)
        amp = autocast_dtype(self.recipe.first_stage.train.amp, self.device)
        return StageParts(
            model=model, forward=forward, optimizer=optimizer,
            scheduler=self.builder.scheduler(cfg.scheduler, optimizer, cfg.epochs),
            task_loss=task_loss,
            weights={k: float(v) for k, v in stage.losses.weights.items() if v is not None},
            train_missing=self.missing(stage, "train", seed),
            val_plan=eval_plans(lambda: self.missing(stage, "eval", seed), splits, ("val",))["val"],
            scaler=torch.amp.GradScaler("cuda") if amp == torch.float16 else None)


def selected_from_history(directory: Path, stage: Stage, higher_is_better: bool) -> dict:
    """The selection record of a stage finished before a resume, from its history file."""
    key = f"val/{stage.train.monitor}"
    history = read_json(directory / f"history-{stage.name}.json", "stage history")
    values = [(r["epoch"], r[key]) for r in history if key in r]
    best = max if higher_is_better else min   # the first best, as the stage loop keeps it
    epoch, value = best(values, key=lambda ev: ev[1]) if values else (None, None)
    return {"epoch": epoch, "epochs_run": len(history), "monitor": stage.train.monitor,
            "split": "val", "value": value}
