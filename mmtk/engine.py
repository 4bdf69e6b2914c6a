"""The one training loop shared by every method, and evaluation under missing conditions.

A *trial* is one (fold, seed). It loads the data, fits normalisation on train only, runs the
recipe's stages (early stopping and checkpoint selection on the validation split only), then
evaluates the selected model once on validation and test under every evaluation condition.
State is checkpointed atomically after every epoch so an interrupted trial resumes exactly.
"""
from __future__ import annotations

import contextlib
import json
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from . import distributed as dist
from .builder import Builder
from .data import DataSplits, Standardizer, TensorData, check_finite, ensure_validation
from .errors import MmtkError, NonFiniteLossError
from .metrics import as_metric, confusion_matrix
from .pipeline import Pipeline
from .protocols import EvalPlan, MissingProtocol, training_masks
from .recipe import stage_trees
from .registry import Registry
from .rundir import BackgroundWriter, load_torch, save_torch, write_json
from .task import (LABELS, SCORES, check_metrics, check_output, check_scores, loss_name,
                   loss_target, output_width, recipe_target, task_output)

Progress = Callable[..., None]


def _quiet(*_: Any, **__: Any) -> None:
    pass


def pick_device(requested: str = "auto") -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise MmtkError(f"device '{requested}' was requested but CUDA is not available here; "
                        "use --device cpu or auto")
    return torch.device(requested)


def autocast_dtype(amp: Any, device: torch.device) -> torch.dtype | None:
    """Mixed precision only on CUDA: bf16 where supported, else fp16."""
    if device.type != "cuda" or amp is False:
        return None
    if amp == "fp16":
        return torch.float16
    if amp == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def fits_on_device(splits: DataSplits, device: torch.device, share: float = 0.5) -> bool:
    """Does the in-memory data take at most ``share`` of the GPU's free memory?"""
    free, _ = torch.cuda.mem_get_info(device)
    return sum(part.nbytes() for _, part in splits.items()) <= share * free


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class TrialSpec:
    fold: int | None
    seed: int
    directory: Path

    @property
    def key(self) -> str:
        return (f"fold{self.fold}-" if self.fold is not None else "") + f"seed{self.seed}"


@dataclass
class StageState:
    """Everything needed to continue a stage after an interruption."""

    epoch: int = 0
    best_score: float = -math.inf
    best_epoch: int = -1
    bad_epochs: int = 0
    best_state: dict | None = None
    history: list = field(default_factory=list)


def load_data(builder: Builder, tree: dict, fold: int | None, seed: int) -> DataSplits:
    data_block = tree["data"]
    dataset = builder.dataset(data_block, seed)
    splits = dataset.load(fold)
    splits = ensure_validation(splits, data_block.get("val_fraction", 0.1), seed)
    normalize = data_block.get("normalize", True)
    if normalize:
        scaler = Standardizer.fit(splits.train, normalize if isinstance(normalize, list) else None)
        splits.train, splits.val, splits.test = (scaler.apply(splits.train),
                                                 scaler.apply(splits.val), scaler.apply(splits.test))
    for split, part in splits.items():
        check_finite(part, split, f"dataset '{data_block['type']}'")
    return splits


class NonFiniteWatch:
    """Remembers, on the device and without syncing, the first step with a non-finite loss."""

    def __init__(self) -> None:
        self.first: tuple[int, Tensor, dict[str, Tensor]] | None = None
        self.flags: list[tuple[int, Tensor, dict[str, Tensor]]] = []

    def observe(self, step: int, total: Tensor, losses: dict[str, Tensor]) -> None:
        self.flags.append((step, ~torch.isfinite(total.detach()),
                           {k: v.detach() for k, v in losses.items()}))

    def raise_if_bad(self, where: str, trial: "TrialSpec") -> None:
        flags, self.flags = self.flags, []
        if not flags:
            return
        if len(flags) == 1:  # the CPU case: one flag, no stacking
            if not bool(flags[0][1]):
                return
            step, _, losses = flags[0]
        else:
            bad = torch.stack([f[1] for f in flags])
            if not bool(bad.any()):
                return
            step, _, losses = flags[int(bad.nonzero()[0])]
        detail = ", ".join(f"{k}={float(v):.4g}" for k, v in losses.items())
        raise NonFiniteLossError(
            f"non-finite loss in {where}, step {step + 1} of trial {trial.key}: {detail}. "
            f"The last good checkpoint is kept in {trial.directory}; lower the learning rate "
            "or check the data.")


class Evaluator:
    """Metrics of a model on a split under every condition of an evaluation plan."""

    def __init__(self, metrics: dict[str, Any], num_classes: int, batch_size: int,
                 amp_dtype: torch.dtype | None, target: str = LABELS):
        self.metrics = {n: as_metric(m) for n, m in metrics.items()}
        self.num_classes, self.target = num_classes, target
        self.batch_size, self.amp_dtype = batch_size, amp_dtype

    @torch.no_grad()
    def predict(self, model: Pipeline, data: TensorData, mask: Tensor) -> Tensor:
        """Predicted class (or regression score) per sample; under DDP each rank predicts a
        shard and all ranks gather."""
        model.eval()
        device = data.labels.device
        mask = mask.to(device)
        mine = dist.shard(torch.arange(len(data), device=device))
        preds = []
        for start in range(0, len(mine), self.batch_size):
            idx = mine[start:start + self.batch_size]
            batch = data.batch(idx).to(device).masked(mask[idx])
            with _autocast(device, self.amp_dtype):
                logits = model(batch).logits
            preds.append(task_output(logits, self.target))
        dtype = torch.float32 if self.target == SCORES else torch.long
        local = torch.cat(preds) if preds else torch.empty(0, dtype=dtype, device=device)
        return dist.gather_by_index(mine, local, len(data))

    def score(self, pred: Tensor, data: TensorData) -> dict[str, float]:
        """Every metric on one set of predictions (the confusion matrix is built once)."""
        out, cm = {}, None
        for name, metric in self.metrics.items():
            if metric.reads == "regression":
                out[name] = metric(pred.detach().cpu().float(), data.scores.cpu())
            else:
                if cm is None:
                    cm = confusion_matrix(data.labels, pred, self.num_classes)
                out[name] = metric(cm)
        return out

    def evaluate(self, model: Pipeline, data: TensorData, plan: EvalPlan) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for cond in plan.conditions:
            out[cond.name] = self.score(self.predict(model, data, cond.mask), data)
        if plan.mean_over:
            out["mean"] = {name: float(np.mean([out[c][name] for c in plan.mean_over]))
                           for name in self.metrics}
        return out


def _autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def batch_indices(order: Tensor, batch_size: int, data: TensorData, bucket: bool,
                  generator: torch.Generator) -> list[Tensor]:
    """Global batches of ``order``. With ``bucket``, windows of 50 batches are sorted by
    sequence length (so batches hold similar lengths and little padding), then the batch
    order is shuffled; every sample still appears exactly once per epoch."""
    if not bucket:
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    longest = torch.stack([v.cpu() for v in data.lengths.values()], 1).amax(1)
    window = batch_size * 50
    batches = []
    for w in range(0, len(order), window):
        chunk = order[w:w + window]
        chunk = chunk[torch.argsort(longest[chunk], stable=True)]
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    perm = torch.randperm(len(batches), generator=generator)
    return [batches[i] for i in perm.tolist()]


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


class Trainer:
    """Runs one trial: stages of training, selection on validation, final evaluation."""

    def __init__(self, tree: dict, registry: Registry, device: str | None = None,
                 progress: Progress = _quiet):
        self.tree = tree
        self.registry = registry
        self.builder = Builder(registry, tree.get("_base_dir"))
        self.device = pick_device(device or tree["train"].get("device", "auto"))
        dist.init(self.device.type)
        self.device = dist.local_device(self.device)
        self.progress = progress if dist.is_main() else _quiet
        self.target, self.loss_name = recipe_target(self.builder, tree)
        self.metrics = self.builder.metrics(tree["eval"]["metrics"])
        check_metrics(self.target, self.metrics, self.loss_name)

    # -- pieces ---------------------------------------------------------------------------
    def _missing(self, tree: dict, which: str, seed: int) -> MissingProtocol:
        return self.builder.component("missing", tree["missing"][which], {"seed": seed})

    def _task_loss(self, tree: dict) -> Callable:
        loss = self.builder.component("loss", tree["losses"]["task"])
        if loss_target(loss) != self.target:
            raise MmtkError("every stage must train the same task: the first stage's losses.task "
                            f"reads {self.target}, but '{loss_name(tree)}' reads {loss_target(loss)}")
        return loss

    # -- the trial ------------------------------------------------------------------------
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
            return json.loads(done.read_text())
        seed_everything(trial.seed)
        if self.tree["train"].get("deterministic", True) and self.device.type == "cpu":
            torch.use_deterministic_algorithms(True, warn_only=True)
        splits = load_data(self.builder, self.tree, trial.fold, trial.seed)
        if self.target == SCORES:
            check_scores(splits, self.tree["data"]["type"], self.loss_name)
        if dist.is_main():
            write_json(trial.directory / "data.json", {
                **splits.info, "fold": trial.fold, "modalities": list(splits.modalities),
                "in_dims": splits.in_dims, "num_classes": splits.num_classes,
                "class_names": splits.class_names,
                "sizes": {name: len(part) for name, part in splits.items()}})
        if self.device.type == "cuda" and fits_on_device(splits, self.device):
            # the whole dataset lives on the GPU; batches are sliced there
            splits.train, splits.val, splits.test = (splits.train.to(self.device),
                                                     splits.val.to(self.device), splits.test.to(self.device))
        amp = autocast_dtype(self.tree["train"].get("amp", "auto"), self.device)
        evaluator = Evaluator(self.metrics, splits.num_classes,
                              self.tree["eval"]["batch_size"], amp, self.target)
        resume_path = trial.directory / "resume.pt"
        resume = load_torch(resume_path) if resume_path.is_file() else None
        stage_states: dict[str, dict] = {}
        model: Pipeline | None = None
        final_tree = self.tree
        for index, (name, tree, stage) in enumerate(stage_trees(self.tree)):
            ckpt = trial.directory / f"stage-{name}.pt"
            final_tree = tree
            if resume is not None and index < resume["stage_index"] and ckpt.is_file():
                model = self._build_stage_model(tree, stage, splits, trial.seed + index, stage_states)
                model.load_state_dict(load_torch(ckpt))
                stage_states[name] = model.state_dict()
                continue
            seed_everything(trial.seed + 1000 * index)
            model = self._build_stage_model(tree, stage, splits, trial.seed + index, stage_states)
            state = self._train_stage(model, tree, name, index, splits, evaluator, trial,
                                      resume if resume and resume["stage_index"] == index else None)
            model.load_state_dict(state.best_state)
            if dist.is_main():
                self.writer.wait()  # the stage's last resume.pt lands before its checkpoint
                save_torch(ckpt, model.state_dict())
            stage_states[name] = {k: v.detach().clone() for k, v in model.state_dict().items()}
            resume = None
        assert model is not None
        eval_plan_val = self._missing(final_tree, "eval", trial.seed).eval_conditions(splits.modalities, len(splits.val))
        eval_plan_test = self._missing(final_tree, "eval", trial.seed).eval_conditions(splits.modalities, len(splits.test))
        results = {"val": evaluator.evaluate(model, splits.val, eval_plan_val),
                   "test": evaluator.evaluate(model, splits.test, eval_plan_test)}
        if dist.is_main():
            self.writer.wait()
            save_torch(trial.directory / "model.pt", model.state_dict())
            write_json(trial.directory / "metrics.json", results)
            if resume_path.is_file():
                resume_path.unlink()
        dist.barrier()
        self.progress("trial_end", trial=trial.key, results=results)
        return results

    def _save_resume(self, trial: TrialSpec, state: dict) -> None:
        # atomic but not fsynced: a killed run resumes from it; an OS crash may lose one epoch
        self.writer.save_torch(trial.directory / "resume.pt", state, durable=False)

    def _build_stage_model(self, tree: dict, stage: dict, splits: DataSplits, seed: int,
                           earlier: dict[str, dict]) -> Pipeline:
        model = self.builder.model(tree["model"], splits.in_dims, splits.num_classes, seed,
                                   out_dim=output_width(self.target, splits.num_classes))
        init = stage.get("init_from")
        if init:
            src, mapping = (init["stage"], init.get("map")) if isinstance(init, dict) else (init, None)
            loaded = remap_state(earlier[src], mapping)
            own = model.state_dict()
            usable = {k: v for k, v in loaded.items() if k in own and own[k].shape == v.shape}
            if not usable:
                raise MmtkError(f"init_from '{src}': no parameter of that stage matches this "
                                "stage's model (check init_from.map)")
            model.load_state_dict(usable, strict=False)
        if stage.get("freeze"):
            model.freeze(stage["freeze"])
        return model.to(self.device)

    def _train_stage(self, model: Pipeline, tree: dict, name: str, index: int,
                     splits: DataSplits, evaluator: Evaluator, trial: TrialSpec,
                     resume: dict | None) -> StageState:
        train_cfg = tree["train"]
        epochs, patience = train_cfg["epochs"], train_cfg.get("patience")
        monitor = train_cfg.get("monitor", "uar")
        if monitor not in evaluator.metrics:
            raise MmtkError(f"train.monitor '{monitor}' is not among eval.metrics "
                            f"{list(evaluator.metrics)}")
        # selection keeps the best validation value; MAE-like metrics are better when lower
        sign = 1.0 if evaluator.metrics[monitor].higher_is_better else -1.0
        width = output_width(self.target, splits.num_classes)
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = self.builder.optimizer(train_cfg["optimizer"], params)
        scheduler = self.builder.scheduler(train_cfg.get("scheduler"), optimizer, epochs)
        task_loss = self._task_loss(tree)
        weights = {k: float(v) for k, v in (tree["losses"].get("weights") or {}).items() if v is not None}
        train_missing = self._missing(tree, "train", trial.seed)
        val_plan = self._missing(tree, "eval", trial.seed).eval_conditions(splits.modalities, len(splits.val))
        amp = evaluator.amp_dtype
        scaler = torch.amp.GradScaler("cuda") if amp == torch.float16 else None
        shuffle_gen = torch.Generator().manual_seed(trial.seed * 7919 + index)
        mask_gen = torch.Generator().manual_seed(trial.seed * 104729 + index)
        st = StageState()
        if resume is not None:
            model.load_state_dict(resume["model"])
            optimizer.load_state_dict(resume["optimizer"])
            if scheduler is not None and resume.get("scheduler"):
                scheduler.load_state_dict(resume["scheduler"])
            shuffle_gen.set_state(resume["shuffle_gen"])
            mask_gen.set_state(resume["mask_gen"])
            torch.set_rng_state(resume["torch_rng"])
            st = StageState(resume["epoch"], resume["best_score"], resume["best_epoch"],
                            resume["bad_epochs"], resume["best_state"], resume["history"])
        first_epoch = epochs if resume is not None and resume.get("stopped") else st.epoch
        steps_per_epoch = math.ceil(len(splits.train) / train_cfg["batch_size"])
        self.progress("stage_start", stage=name, epochs=epochs, trial=trial.key, start=st.epoch)
        clip = train_cfg.get("grad_clip")
        forward = model
        if dist.active():
            from torch.nn.parallel import DistributedDataParallel
            forward = DistributedDataParallel(model, find_unused_parameters=True)
        if train_cfg.get("compile"):
            forward = torch.compile(forward)
        train, bs = splits.train, train_cfg["batch_size"]
        last_snapshot = time.perf_counter()
        watch = NonFiniteWatch()
        present_cpu = train.present.cpu()  # masks are drawn on the host: no device sync
        masks_of = training_masks(train_missing, len(train), train.modalities)
        # On CPU checking every step is free; on a GPU it would sync, so check every 50 steps
        # (and at the end of every epoch) and still name the first bad step.
        check_now = (lambda step: True) if self.device.type == "cpu" else (lambda step: step % 50 == 49)
        bucket = bool(train_cfg.get("bucket_by_length")) and bool(train.lengths)
        for epoch in range(first_epoch, epochs):
            model.train()
            started = time.perf_counter()
            sums: dict[str, Tensor] = {}
            # One global order and one global mask per batch, identical on every rank; under
            # DDP each rank takes its shard, so N ranks see exactly one process's batches.
            order = torch.randperm(len(train), generator=shuffle_gen)
            for step, global_idx in enumerate(batch_indices(order, bs, train, bucket, shuffle_gen)):
                global_keep = masks_of(global_idx, present_cpu[global_idx], mask_gen)
                if len(global_idx) < dist.world_size():
                    continue  # too small to give every rank a sample
                idx = dist.shard(global_idx).to(train.labels.device)
                batch = train.batch(idx, trim=bucket)
                if batch.labels.device != self.device:  # features left on the host (lazy / too big)
                    batch = batch.to(self.device)
                keep = dist.shard(global_keep).to(self.device)
                with _autocast(self.device, amp):
                    out = forward(batch.masked(keep), truth=batch)
                    if step == 0:
                        check_output(out.logits, width, self.target)
                    wanted = batch.scores if self.target == SCORES else batch.labels
                    losses = {"task": task_loss(out.logits, wanted)}
                    losses.update(out.aux)
                    total = losses["task"] + sum(weights.get(k, 1.0) * v for k, v in out.aux.items())
                watch.observe(step, total, losses)
                if check_now(step):
                    watch.raise_if_bad(f"stage '{name}', epoch {epoch + 1}", trial)
                optimizer.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(total).backward()
                    scaler.unscale_(optimizer)
                else:
                    total.backward()
                if clip:
                    torch.nn.utils.clip_grad_norm_(params, clip)
                if scaler is not None:
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    optimizer.step()
                for k, v in losses.items():
                    sums[k] = sums.get(k, 0) + v.detach()
            watch.raise_if_bad(f"stage '{name}', epoch {epoch + 1}", trial)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)  # once per epoch, for an honest train time
            train_seconds = time.perf_counter() - started
            if scheduler is not None:
                scheduler.step()
            val = evaluator.evaluate(model, splits.val, val_plan)
            score = val["mean" if "mean" in val else next(iter(val))][monitor]
            record = {"epoch": epoch + 1, **{f"loss/{k}": float(v) / steps_per_epoch for k, v in sums.items()},
                      f"val/{monitor}": score, "train_seconds": round(train_seconds, 4),
                      "train_samples": len(train)}
            st.history.append(record)
            st.epoch = epoch + 1
            if sign * score > st.best_score:  # best_score is kept signed (higher = better)
                st.best_score, st.best_epoch, st.bad_epochs = sign * score, epoch + 1, 0
                st.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                st.bad_epochs += 1
            stop = patience is not None and st.bad_epochs >= patience and st.epoch >= train_cfg.get("min_epochs", 1)
            # Resume snapshot every `checkpoint_every` epochs once `checkpoint_seconds` have
            # passed since the last one (and always when the stage ends): short epochs are not
            # slowed by snapshots, and a killed run loses at most that much work. A resumed run
            # restarts from the last snapshot and ends exactly as an uninterrupted one.
            every = max(1, train_cfg.get("checkpoint_every", 1))
            due = (st.epoch % every == 0 and
                   time.perf_counter() - last_snapshot >= train_cfg.get("checkpoint_seconds", 30.0))
            if dist.is_main() and (due or stop or st.epoch == epochs):
                last_snapshot = time.perf_counter()
                self._save_resume(trial, {
                    "stage_index": index, "epoch": st.epoch, "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "shuffle_gen": shuffle_gen.get_state(), "mask_gen": mask_gen.get_state(),
                    "torch_rng": torch.get_rng_state(), "best_score": st.best_score,
                    "best_epoch": st.best_epoch, "bad_epochs": st.bad_epochs,
                    "best_state": st.best_state, "history": st.history, "stopped": stop})
            dist.barrier()
            self.progress("epoch_end", stage=name, trial=trial.key, **record)
            if stop:
                break
        if dist.is_main():
            write_json(trial.directory / f"history-{name}.json", st.history)
        if st.best_state is None:
            raise MmtkError(f"stage '{name}' ran no epoch (train.epochs = {epochs})")
        return st
