"""One stage of training: epoch -> step (AMP, clipping) -> selection -> snapshot.

Selection and early stopping read the validation split only. The task loss of a step is the
mean over the batch's labelled samples that were shown a modality (unlabelled ones train the
label-free losses only; a batch without any gives a task loss of 0). A snapshot of everything the
loop needs is taken every ``checkpoint_every`` epochs once ``checkpoint_seconds`` have passed
(and when the stage ends), so a killed run loses at most that much work and resumes exactly.
"""
from __future__ import annotations

import copy
import math
import random
import time
from dataclasses import dataclass, replace
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from . import distributed as dist
from . import thread_probe, threads
from .checkpoint import Snapshot, StageState, write_snapshot
from .data import DataSplits
from .data_loading import EpochPlan, bucketing, resolve_unlabeled
from .devices import autocast
from .errors import MmtkError, NonFiniteLossError
from .evaluate import Evaluator
from .pipeline import Pipeline
from .protocols import EvalPlan, MissingProtocol, training_masks
from .recipe import Stage
from .rundir import BackgroundWriter
from .task import SCORES, check_output, output_width, supervised, task_loss_on

STEP_EVENT_SECONDS = 0.2   # progress inside an epoch, throttled so it costs nothing


class NonFiniteWatch:
    """Remembers, on the device and without syncing, the first step with a non-finite loss."""

    def __init__(self, where: str, trial_key: str, directory: Any, weights: dict[str, float]):
        self.where, self.trial_key, self.directory, self.weights = where, trial_key, directory, weights
        self.flags: list[tuple[int, Tensor, dict[str, Tensor]]] = []
        self.has_checkpoint = False

    def observe(self, step: int, total: Tensor, losses: dict[str, Tensor]) -> None:
        self.flags.append((step, ~torch.isfinite(total.detach()),
                           {k: v.detach() for k, v in losses.items()}))

    def raise_if_bad(self, epoch: int) -> None:
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
        cause = next((f" The loss weight of {k} is {w}." for k, w in self.weights.items()
                      if not math.isfinite(w)), "")
        kept = (f"The last good checkpoint is kept in {self.directory}" if self.has_checkpoint
                else "No checkpoint of this stage exists yet (it failed before its first snapshot)")
        raise NonFiniteLossError(
            f"non-finite loss in {self.where}, epoch {epoch}, step {step + 1} of trial "
            f"{self.trial_key}: {detail}.{cause} {kept}; lower the learning rate or check the data.")


@dataclass
class StageParts:
    """What a stage trains with, built once per stage."""

    model: Pipeline
    forward: Callable
    optimizer: Any
    scheduler: Any
    task_loss: Callable
    weights: dict[str, float]
    train_missing: MissingProtocol
    val_plan: EvalPlan
    scaler: Any


class StageLoop:
    """Runs one stage of one trial to its end (or early stop) and returns its state."""

    def __init__(self, stage: Stage, index: int, parts: StageParts, splits: DataSplits,
                 evaluator: Evaluator, trial: Any, device: torch.device, target: str,
                 writer: BackgroundWriter, progress: Callable[..., None]):
        self.stage, self.index, self.p, self.splits = stage, index, parts, splits
        self.evaluator, self.trial, self.device, self.target = evaluator, trial, device, target
        self.writer, self.progress = writer, progress
        self.cfg = stage.train
        self.sign = 1.0 if evaluator.metrics[self.cfg.monitor].higher_is_better else -1.0
        self.shuffle_gen = torch.Generator().manual_seed(trial.seed * 7919 + index)
        self.mask_gen = torch.Generator().manual_seed(trial.seed * 104729 + index)
        self.watch = NonFiniteWatch(f"stage '{stage.name}'", trial.key, trial.directory, parts.weights)
        self.params = [q for q in parts.model.parameters() if q.requires_grad]
        self.last_snapshot = time.perf_counter()
        self.width = output_width(target, splits.num_classes)

    # -- resume ---------------------------------------------------------------------------
    def restore(self, snap: Snapshot) -> StageState:
        self.p.model.load_state_dict(snap.model)
        self.p.optimizer.load_state_dict(snap.optimizer)
        if self.p.scheduler is not None and snap.scheduler:
            self.p.scheduler.load_state_dict(snap.scheduler)
        self.shuffle_gen.set_state(snap.shuffle_gen)
        self.mask_gen.set_state(snap.mask_gen)
        torch.set_rng_state(snap.torch_rng)
        self.watch.has_checkpoint = True
        return snap.state

    # -- the stage ------------------------------------------------------------------------
    def run(self, snap: Snapshot | None) -> StageState:
        st = self.restore(snap) if snap is not None else StageState()
        train = self.splits.train
        self.present_cpu = train.present.cpu()  # masks are drawn on the host: no device sync
        self.masks_of = training_masks(self.p.train_missing, len(train), train.modalities, self.present_cpu)
        self.supervised_cpu = supervised(train.labels, train.scores, self.target).cpu()
        labelled = int(self.supervised_cpu.sum())
        fitted = "the reconstructor (an input imputer)" if self.p.model.input_imputer is not None else None
        mode, note = resolve_unlabeled(self.cfg.unlabeled, self.p.model.unlabeled_users(self.p.weights),
                                       len(train) - labelled, labelled, fitted)
        self.plan = EpochPlan.of(self.supervised_cpu, mode, self.cfg.epoch_steps)
        self.bucket, hint, bucket_note = bucketing(self.cfg.bucket_by_length, train)
        threads_note = self.settle_threads(st)
        epochs = self.cfg.epochs
        first_epoch = epochs if snap is not None and snap.stopped else st.epoch
        self.progress("stage_start", stage=self.stage.name, epochs=epochs, trial=self.trial.key,
                      start=st.epoch, patience=self.cfg.patience, steps=self.plan.steps(self.cfg.batch_size),
                      hint=hint, notes=[n for n in (note, bucket_note, threads_note) if n])
        for epoch in range(first_epoch, epochs):
            record = self.epoch(epoch)
            stop = self.select(st, epoch, record)
            self.maybe_snapshot(st, stop)
            dist.barrier()
            self.progress("epoch_end", stage=self.stage.name, trial=self.trial.key, **record)
            if stop:
                break
        if st.best_state is None:
            raise MmtkError(f"stage '{self.stage.name}' ran no epoch (train.epochs = {epochs})")
        self.progress("stage_end", stage=self.stage.name, trial=self.trial.key, epoch=st.epoch,
                      epochs=epochs, selected=st.best_epoch, monitor=self.cfg.monitor,
                      value=st.best_score * self.sign)
        return st

    def epoch(self, epoch: int) -> dict:
        """One pass over the training samples of the epoch plan; returns the epoch's record
        (losses, val metric)."""
        model, train, bs = self.p.model, self.splits.train, self.cfg.batch_size
        model.train()
        started = time.perf_counter()
        sums: dict[str, Tensor] = {}
        # On CPU checking every step is free; on a GPU it would sync, so check every 50 steps
        # (and at the end of every epoch) and still name the first bad step.
        every = 1 if self.device.type == "cpu" else 50
        bucket = self.bucket
        # One global order and one global mask per batch, identical on every rank; under
        # DDP each rank takes its shard, so N ranks see exactly one process's batches.
        batches = self.plan.batches(bs, train, bucket, self.shuffle_gen)
        shown = started  # step events at most every STEP_EVENT_SECONDS: a clock read per step
        for step, global_idx in enumerate(batches):
            global_keep = self.masks_of(global_idx, self.present_cpu[global_idx], self.mask_gen)
            if len(global_idx) < dist.world_size():
                continue  # too small to give every rank a sample
            losses = self.step(step, global_idx, global_keep, bucket)
            if step % every == every - 1:
                self.watch.raise_if_bad(epoch + 1)
            for k, v in losses.items():
                sums[k] = sums.get(k, 0) + v.detach()
            if time.perf_counter() - shown >= STEP_EVENT_SECONDS:
                shown = time.perf_counter()
                self.progress("step", stage=self.stage.name, trial=self.trial.key, epoch=epoch + 1,
                              step=step + 1)
        self.watch.raise_if_bad(epoch + 1)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)  # once per epoch, for an honest train time
        train_seconds = time.perf_counter() - started
        if self.p.scheduler is not None:
            self.p.scheduler.step()
        val = self.evaluator.evaluate(model, self.splits.val, self.p.val_plan)
        score = val["mean" if "mean" in val else next(iter(val))][self.cfg.monitor]
        shown_samples = sum(len(b) for b in batches)
        record = {"epoch": epoch + 1, **{f"loss/{k}": float(v) / len(batches) for k, v in sums.items()},
                  f"val/{self.cfg.monitor}": score, "train_seconds": round(train_seconds, 4),
                  "train_samples": shown_samples, "threads": torch.get_num_threads()}
        if len(self.plan.unlabelled):   # a pool: how many of the epoch's samples had a label
            labelled = sum(int(self.supervised_cpu[b].sum()) for b in batches)
            record["train_labeled"] = labelled
            record["train_unlabeled"] = shown_samples - labelled
        return record

    # -- threads ----------------------------------------------------------------------------
    def settle_threads(self, st: StageState) -> str | None:
        """Under ``threads: auto`` with more than one core to give, the count for this stage's
        model (:mod:`mmtk.thread_probe`); a resumed stage keeps the count its epochs ran with.
        Returns the line the stage prints about it."""
        choice = threads.applied()
        if (choice is None or choice.setting != "auto" or choice.count <= 1 or self.device.type != "cpu"
                or dist.active() or self.cfg.compile):
            return None
        ran = [r["threads"] for r in st.history if "threads" in r]
        if ran:
            count = min(ran[-1], choice.count)
            torch.set_num_threads(count)
            return f"threads: {count}, as this stage's earlier epochs ran"
        key = (sum(q.numel() for q in self.params), len(self.params), self.cfg.batch_size,
               tuple(sorted(self.splits.in_dims.items())), self.bucket, str(self.evaluator.amp_dtype))
        states = random.getstate(), np.random.get_state()
        try:
            with torch.random.fork_rng(devices=[]):   # the probe draws no number the run would see
                result = thread_probe.settle(key, choice.count, self.probe_step)
        except (TypeError, RuntimeError, copy.Error) as exc:  # a model that cannot be copied
            return f"threads: {choice.count} (not probed: the model could not be copied: {exc})"
        finally:
            random.setstate(states[0])
            np.random.set_state(states[1])
        return result.note(choice.count)

    def probe_step(self) -> Callable[[], None]:
        """One training step on a throwaway copy of the model and optimizer, on a batch drawn
        from the probe's own generator: the real model, its optimizer and every random stream
        of the loop stay as they were."""
        model, optimizer = copy.deepcopy((self.p.model, self.p.optimizer))
        twin = copy.copy(self)
        twin.p = replace(self.p, model=model, forward=model, optimizer=optimizer)
        twin.params = [q for q in model.parameters() if q.requires_grad]
        twin.watch = NonFiniteWatch(self.watch.where, self.trial.key, None, self.p.weights)
        gen = torch.Generator().manual_seed(0)
        train = self.splits.train
        idx = torch.randperm(len(train), generator=gen)[:self.cfg.batch_size]
        keep = self.masks_of(idx, self.present_cpu[idx], gen)

        def step() -> None:
            twin.step(1, idx, keep, self.bucket)
            twin.watch.flags.clear()
        return step

    def task_rows(self, idx: Tensor, keep: Tensor) -> tuple[Tensor | None, int]:
        """(positions in this rank's batch that get a task loss, how many): the labelled
        samples shown some modality; None when that is every row. Worked out on the host
        from the host-side index and mask, so it costs no device sync."""
        rows = self.supervised_cpu[idx] & keep.any(1)
        if bool(rows.all()):
            return None, len(idx)
        positions = rows.nonzero().flatten()
        return positions.to(self.device), len(positions)

    def step(self, step: int, global_idx: Tensor, global_keep: Tensor, trim: bool) -> dict[str, Tensor]:
        """Forward, losses, backward (scaled under fp16), clipping, optimizer step."""
        p, train = self.p, self.splits.train
        idx_cpu, keep_cpu = dist.shard(global_idx), dist.shard(global_keep)
        rows, count = self.task_rows(idx_cpu, keep_cpu)
        idx = idx_cpu.to(train.labels.device)
        batch = train.batch(idx, trim=trim)
        if batch.labels.device != self.device:  # features left on the host (lazy / too big)
            batch = batch.to(self.device)
        keep = keep_cpu.to(self.device)
        # nothing to hide (a full-modality stage): the batch is its own masked copy
        nothing_hidden = bool(keep_cpu.all()) and bool(self.present_cpu[idx_cpu].all())
        shown = replace(batch, present=keep) if nothing_hidden else batch.masked(keep)
        with autocast(self.device, self.evaluator.amp_dtype):
            out = p.forward(shown, truth=batch)
            if step == 0:
                check_output(out.logits, self.width, self.target)
            wanted = batch.scores if self.target == SCORES else batch.labels
            losses = {"task": task_loss_on(p.task_loss, out.logits, wanted, rows, count), **out.aux}
            total = losses["task"] + sum(p.weights.get(k, 1.0) * v for k, v in out.aux.items())
        self.watch.observe(step, total, losses)
        p.optimizer.zero_grad(set_to_none=True)
        if p.scaler is not None:
            p.scaler.scale(total).backward()
            p.scaler.unscale_(p.optimizer)
        else:
            total.backward()
        if self.cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.params, self.cfg.grad_clip)
        if p.scaler is not None:
            p.scaler.step(p.optimizer)
            p.scaler.update()
        else:
            p.optimizer.step()
        return losses

    def select(self, st: StageState, epoch: int, record: dict) -> bool:
        """Keep the best validation state; True when patience says the stage is over."""
        score = record[f"val/{self.cfg.monitor}"]
        st.history.append(record)
        st.epoch = epoch + 1
        if self.sign * score > st.best_score:
            st.best_score, st.best_epoch, st.bad_epochs = self.sign * score, epoch + 1, 0
            st.best_state = {k: v.detach().clone() for k, v in self.p.model.state_dict().items()}
        else:
            st.bad_epochs += 1
        patience = self.cfg.patience
        return patience is not None and st.bad_epochs >= patience and st.epoch >= self.cfg.min_epochs

    def maybe_snapshot(self, st: StageState, stop: bool) -> None:
        due = (st.epoch % self.cfg.checkpoint_every == 0 and
               time.perf_counter() - self.last_snapshot >= self.cfg.checkpoint_seconds)
        if not dist.is_main() or not (due or stop or st.epoch == self.cfg.epochs):
            return
        self.last_snapshot = time.perf_counter()
        p = self.p
        write_snapshot(self.writer, self.trial.directory, Snapshot(
            self.index, st, p.model.state_dict(), p.optimizer.state_dict(),
            p.scheduler.state_dict() if p.scheduler is not None else None,
            self.shuffle_gen.get_state(), self.mask_gen.get_state(), torch.get_rng_state(), stop))
        self.watch.has_checkpoint = True
