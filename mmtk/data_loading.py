"""A trial's data: the splits of one fold, normalised on train, and the batches of an epoch."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .builder import Builder
from .data import DataSplits, Standardizer, TensorData, check_finite, ensure_validation
from .recipe import Data


def load_data(builder: Builder, data: Data, fold: int | None, seed: int) -> DataSplits:
    """The dataset's splits for ``fold``, with a validation split carved from train when the
    dataset has none, and standardisation statistics fitted on train only."""
    dataset = builder.dataset(data.dataset, seed)
    splits = dataset.load(fold)
    # before any fitted step: normalisation differs between seeds even on a shared test set
    splits.info["test_fingerprint"] = splits.test.fingerprint()
    splits = ensure_validation(splits, data.val_fraction, seed)
    if data.normalize:
        scaler = Standardizer.fit(splits.train, data.normalize if isinstance(data.normalize, list) else None)
        splits.train, splits.val, splits.test = (scaler.apply(splits.train),
                                                 scaler.apply(splits.val), scaler.apply(splits.test))
    for split, part in splits.items():
        check_finite(part, split, f"dataset '{data.dataset.type}'")
    return splits


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


UnlabeledMode = str | int   # "mixed", "skip", or unlabelled samples added to every step


def resolve_unlabeled(setting: str | int, users: list[str], pool: int,
                      labelled: int, fitted: str | None = None) -> tuple[UnlabeledMode, str | None]:
    """The stage's way of batching its ``pool`` unlabelled training samples (``train.unlabeled``)
    and a one-line note saying what happens to them (None without a pool). ``auto`` leaves them
    out when nothing in the model (``users``: see ``Pipeline.unlabeled_users``) learns from
    them, and mixes them in otherwise: mixing them into a label-only model's batches would
    only spread its labelled samples thinner (more, noisier steps), which is not learning
    from them. ``fitted`` names a part fitted on the whole split before training (an input
    imputer), which the note mentions: it learnt from them without any batch."""
    mode: UnlabeledMode = setting
    if setting == "auto":
        mode = "mixed" if users else "skip"
    if not pool:
        return mode, None
    nobody = "no training step learns from them" if fitted else "nothing in this model learns from them"
    used = f"used by {', '.join(users)}" if users else nobody
    if fitted:   # a closed-form part saw the whole split before training, batches or not
        used += f"; {fitted} was fitted on the whole training split, them included, before training"
    if mode == "skip":
        return mode, (f"{pool} unlabelled training samples left out of this stage's batches "
                      f"({used}; train.unlabeled: {setting})")
    if mode == "mixed":
        return mode, (f"{pool} unlabelled training samples shuffled in with the {labelled} labelled "
                      f"ones ({used}; train.unlabeled: {setting})")
    return mode, (f"every step adds {min(int(mode), pool)} of the {pool} unlabelled training samples "
                  f"to its labelled ones; an epoch is one pass over the {labelled} labelled samples ({used})")


@dataclass(frozen=True)
class EpochPlan:
    """Which training samples an epoch's batches hold: every sample shuffled together
    (``mixed``, and any split without unlabelled samples), the labelled ones only (``skip``),
    or batches of labelled samples each joined by ``mode`` unlabelled ones drawn from the pool
    in its own shuffled order, reshuffled when it runs out (an integer). Every draw comes from
    the stage's shuffle generator, so a resumed stage draws exactly the same batches.

    ``epoch_steps`` (``train.epoch_steps``) fixes an epoch's length in optimizer steps instead:
    passes over the samples run back to back, each reshuffled, until that many batches were
    drawn (a small label budget then still gets enough steps between validations)."""

    labelled: Tensor       # host indices of the training samples with a label
    unlabelled: Tensor     # and of those without
    mode: UnlabeledMode
    epoch_steps: int | None = None

    @staticmethod
    def of(supervised: Tensor, mode: UnlabeledMode, epoch_steps: int | None = None) -> "EpochPlan":
        return EpochPlan(supervised.nonzero().flatten(), (~supervised).nonzero().flatten(), mode,
                         epoch_steps)

    @property
    def everything(self) -> bool:
        return self.mode == "mixed" or not len(self.unlabelled)

    def anchor(self) -> int:
        """How many samples the epoch's batches are cut from."""
        return len(self.labelled) + len(self.unlabelled) if self.everything else len(self.labelled)

    def steps(self, batch_size: int) -> int:
        return self.epoch_steps or math.ceil(self.anchor() / batch_size)

    def per_step(self) -> int:
        """Unlabelled samples joined to every batch (0 unless the mode is an integer)."""
        if self.everything or isinstance(self.mode, str):
            return 0
        return min(int(self.mode), len(self.unlabelled))

    def batches(self, batch_size: int, data: TensorData, bucket: bool,
                generator: torch.Generator) -> list[Tensor]:
        if self.epoch_steps is None:
            return self.one_pass(batch_size, data, bucket, generator)
        batches: list[Tensor] = []
        while len(batches) < self.epoch_steps:
            batches += self.one_pass(batch_size, data, bucket, generator)
        return batches[:self.epoch_steps]

    def one_pass(self, batch_size: int, data: TensorData, bucket: bool,
                 generator: torch.Generator) -> list[Tensor]:
        """One pass over the anchor samples (all, or the labelled ones)."""
        if self.everything:   # exactly the draws of a split without a pool
            order = torch.randperm(len(self.labelled) + len(self.unlabelled), generator=generator)
            return batch_indices(order, batch_size, data, bucket, generator)
        order = self.labelled[torch.randperm(len(self.labelled), generator=generator)]
        batches = batch_indices(order, batch_size, data, bucket, generator)
        extra = self.per_step()
        if not extra:
            return batches
        need = len(batches) * extra
        pool = torch.cat([self.unlabelled[torch.randperm(len(self.unlabelled), generator=generator)]
                          for _ in range(math.ceil(need / len(self.unlabelled)))])
        return [torch.cat([b, pool[i * extra:(i + 1) * extra]]) for i, b in enumerate(batches)]


PADDING_HINT_SHARE = 0.3   # padding share of a random batch from which bucketing pays


def padding_share(data: TensorData) -> tuple[str, float] | None:
    """(the sequence modality with the most padding, its share of padded frames) when every
    batch is padded to the split's longest sequence; None without sequences."""
    shares = {}
    for m, lengths in data.lengths.items():
        x = data.inputs[m]
        if x.dim() == 3 and len(lengths):
            shares[m] = 1.0 - float(lengths.float().mean()) / x.shape[1]
    if not shares:
        return None
    m = max(shares, key=lambda k: shares[k])
    return m, shares[m]


def bucketing(setting: bool | str, data: TensorData) -> tuple[bool, str | None, str | None]:
    """(whether the stage buckets its batches by length, a hint, a note): one line each or
    None (``train.bucket_by_length``). ``auto`` buckets when unbucketed batches would be at
    least PADDING_HINT_SHARE padding (sequences that vary a lot) and notes it; ``false`` with
    that much padding gets a hint."""
    share = padding_share(data)
    if setting is True or share is None:
        return bool(setting is True and data.lengths), None, None
    m, value = share
    if value < PADDING_HINT_SHARE:
        return False, None, None
    lengths = data.lengths[m]
    what = (f"'{m}' sequences are {int(lengths.min())}-{int(lengths.max())} frames, so "
            f"{100 * value:.0f} % of the frames each unbucketed batch runs are padding")
    if setting == "auto":
        return True, None, f"batches bucketed by length: {what} (train.bucket_by_length: auto)"
    return False, (f"{what}; train.bucket_by_length: true (or auto) groups similar lengths and "
                   "cuts it (faster epochs)"), None
