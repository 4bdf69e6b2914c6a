"""The one generic model: encoders → aligner → reconstructor → refiner → fuser → head.

Every slot between the encoders and the head is an ``nn.Module`` subclassing :class:`Slot`:
``forward(state) -> (state, {loss_name: scalar})``. The pipeline hands a slot the labels or
the ground truth of dropped modalities only while training, and only if the slot declares it
needs them (``needs_labels`` / ``needs_targets``). At evaluation neither exists.

Unlabelled samples: ``state.labels`` holds -1 for a training sample without a label
(``state.labeled`` is the mask of those with one). A slot declares which of its losses read
labels (``label_losses``, by default all of them when it ``needs_labels``); those must be
computed on labelled rows only (and be 0 when the batch has none), the others should use
every row. The contract test (:mod:`mmtk.testing`) checks both for every registered slot.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from .batch import ModalityBatch
from .errors import MmtkError

SLOTS: tuple[str, ...] = ("aligner", "reconstructor", "refiner", "fuser")


class Targets:
    """Ground truth of every modality of a training batch, for training losses only.

    ``inputs`` are the unmasked features; ``available`` (B, M) says which ones the data
    really has. :meth:`state_after` runs the model's own prefix on the complete inputs under
    ``no_grad`` (e.g. the true aligned representation a reconstructor should match).
    """

    def __init__(self, batch: ModalityBatch, pipeline: "Pipeline"):
        self.inputs = batch.inputs
        self.lengths = batch.lengths
        self.available = batch.present
        self._batch = batch
        self._pipeline = pipeline
        self._cache: dict[str, State] = {}

    def state_after(self, after: str = "encoders") -> "State":
        """The state of the complete inputs after ``after`` (encoders or a slot), no grad."""
        if after not in self._cache:
            with torch.no_grad():
                self._cache[after] = self._pipeline.run_prefix(self._batch, upto=after)
        return self._cache[after]

    def reps(self, after: str = "encoders") -> dict[str, Tensor]:
        """Detached per-modality representations of the complete inputs after ``after``."""
        return {m: r.detach() for m, r in self.state_after(after).reps.items()}


@dataclass
class State:
    """The running state passed from slot to slot.

    What slots tell each other is a typed field, so that slots of different plugins cannot
    miss each other's notes. ``represented`` says which modalities have a representation
    worth reading: ``present`` at first; a reconstructor that fills in an absent modality's
    representation marks it, and a fuser or refiner that leaves out unusable modalities reads
    it, never ``present`` (otherwise the reconstruction would be silently thrown away).
    ``extras`` holds notes private to one plugin, whose slots write and read them and which
    documents each key (e.g. the baselines' ``mmin_latents``); nothing in it is part of the
    contract between plugins.
    """

    reps: dict[str, Tensor]                 # per modality, (B, latent_dim)
    present: Tensor                         # (B, M) bool, sorted modality order: the inputs
    modalities: tuple[str, ...]
    training: bool
    labels: Tensor | None = None            # only for slots with needs_labels, in training; -1 = unlabelled
    targets: Targets | None = None          # set only for slots with needs_targets, in training
    gaussians: dict[str, tuple[Tensor, Tensor]] = field(default_factory=dict)  # (mu, logvar)
    fused: Tensor | None = None             # set by the fuser
    extras: dict[str, Any] = field(default_factory=dict)  # notes private to one plugin
    represented: Tensor | None = None       # (B, M) bool; None means ``present``

    def __post_init__(self) -> None:
        if self.represented is None:
            self.represented = self.present

    def column(self, modality: str) -> Tensor:
        return self.present[:, self.modalities.index(modality)]

    @property
    def labeled(self) -> Tensor | None:
        """(B,) bool: rows with a label (label >= 0), the only rows a label loss may read;
        None when the slot gets no labels."""
        return None if self.labels is None else self.labels >= 0

    @property
    def batch_size(self) -> int:
        return int(self.present.shape[0])


class Slot(nn.Module):
    """Base class for aligner, reconstructor, refiner and fuser components.

    ``label_losses`` names the auxiliary losses that read labels (a subset of ``aux_losses``;
    None: all of them when ``needs_labels``, else none). They may read labelled rows only
    (``state.labeled``); every other loss is label-free and should use unlabelled rows too.
    """

    aux_losses: ClassVar[tuple[str, ...]] = ()   # names of the losses forward may emit
    needs_labels: ClassVar[bool] = False
    label_losses: ClassVar[tuple[str, ...] | None] = None
    needs_targets: ClassVar[bool] = False


def label_losses(slot: Slot) -> tuple[str, ...]:
    """The losses of ``slot`` that read labels (none when it gets no labels)."""
    if not getattr(slot, "needs_labels", False):
        return ()
    declared = getattr(slot, "label_losses", None)
    return tuple(slot.aux_losses) if declared is None else tuple(declared)


def check_label_losses(name: str, slot: Slot) -> None:
    """``label_losses`` must name declared losses (a typo would leave a loss unchecked)."""
    declared = getattr(slot, "label_losses", None)
    unknown = sorted(set(declared or ()) - set(slot.aux_losses))
    if unknown:
        raise MmtkError(f"{name} '{type(slot).__name__}' lists {unknown} in label_losses, but its "
                        f"aux_losses are {tuple(slot.aux_losses)}; label_losses names the "
                        "auxiliary losses that read labels, a subset of aux_losses")

    def forward(self, state: State) -> tuple[State, dict[str, Tensor]]:  # pragma: no cover
        raise NotImplementedError


class InputImputer(Slot):
    """A reconstructor that fills in absent modalities' *input features*, before the encoders.

    ``fit(train)`` is called once on a stage's new model, before it trains, with the whole
    (normalised) training split, unlabelled samples included: a closed-form imputer (e.g. a
    regression between modalities) keeps what it learns there in persistent buffers, saved
    with the model. ``impute(batch)`` then runs on every batch, in training and evaluation,
    after the absent modalities were zeroed: it returns the batch with the absent inputs it
    could fill in and ``present`` marking them (present inputs must stay as they are). The
    encoders see the imputed inputs; ``state.present`` keeps saying what was really observed
    and ``state.represented`` what the imputer filled in. Its fitted buffers do not make the
    unlabelled samples part of the training batches (``train.unlabeled: auto``): the fit
    has seen them all already. As a slot it passes the state on unchanged.
    """

    def fit(self, train: Any) -> None:   # pragma: no cover - every imputer defines it
        raise NotImplementedError

    def impute(self, batch: ModalityBatch) -> ModalityBatch:   # pragma: no cover
        raise NotImplementedError

    def forward(self, state: State) -> tuple[State, dict[str, Tensor]]:
        return state, {}


class Fuser(Slot):
    """A fuser sets ``state.fused`` to a (B, out_dim) tensor and declares ``out_dim``."""

    out_dim: int


@dataclass
class Output:
    logits: Tensor
    aux: dict[str, Tensor]   # "slot/name" -> scalar
    state: State


class Pipeline(nn.Module):
    def __init__(self, encoders: dict[str, nn.Module], fuser: Fuser, head: nn.Module,
                 aligner: Slot | None = None, reconstructor: Slot | None = None,
                 refiner: Slot | None = None):
        super().__init__()
        self.modalities = tuple(sorted(encoders))
        self.encoders = nn.ModuleDict({m: encoders[m] for m in self.modalities})
        self.aligner, self.reconstructor, self.refiner = aligner, reconstructor, refiner
        self.fuser, self.head = fuser, head
        for name in SLOTS:
            if getattr(self, name) is not None:
                check_label_losses(name, getattr(self, name))
        self.frozen: tuple[str, ...] = ()
        self.latent_dim: int | None = None  # set by the builder: encoders must return this width

    # -- freezing ---------------------------------------------------------------------------
    def freeze(self, prefixes: list[str]) -> None:
        """Stop gradients and keep eval mode for every submodule under the given prefixes."""
        names = dict(self.named_modules())
        for p in prefixes:
            if p not in names:
                raise MmtkError(f"cannot freeze '{p}': no such part of the model; parts are "
                                + ", ".join(n for n in names if n and n.count(".") < 2))
            for param in names[p].parameters():
                param.requires_grad_(False)
        self.frozen = tuple(prefixes)
        self.train(self.training)

    def train(self, mode: bool = True) -> "Pipeline":
        super().train(mode)
        if self.frozen:  # frozen parts stay in eval mode (no dropout, fixed norm statistics)
            names = dict(self.named_modules())
            for p in self.frozen:
                names[p].eval()
        return self

    # -- forward ----------------------------------------------------------------------------
    @property
    def input_imputer(self) -> InputImputer | None:
        return self.reconstructor if isinstance(self.reconstructor, InputImputer) else None

    def fit_training_data(self, train: Any) -> None:
        """Fit what is fitted in closed form on the training split before a stage trains (an
        :class:`InputImputer`); nothing for any other model."""
        if self.input_imputer is not None:
            self.input_imputer.fit(train)

    def encode(self, batch: ModalityBatch) -> State:
        observed = batch.present
        if self.input_imputer is not None:
            batch = self.input_imputer.impute(batch)
        reps = {m: self._encode(m, batch) for m in self.modalities}
        widths = {m: r.shape[1] for m, r in reps.items()}
        if len(set(widths.values())) > 1:
            raise MmtkError("encoders return representations of different widths "
                            f"({', '.join(f'{m}: {w}' for m, w in widths.items())}); each must "
                            "return (batch, latent_dim), sized with the latent_dim context value")
        return State(reps=reps, present=observed, modalities=self.modalities,
                     training=self.training, represented=batch.present | observed)

    def _encode(self, m: str, batch: ModalityBatch) -> Tensor:
        """One encoder's output; an error inside it, or a shape other than (B, latent_dim),
        is reported naming the encoder and the modality."""
        encoder = self.encoders[m]
        what = f"encoder {type(encoder).__module__}.{type(encoder).__qualname__} of modality '{m}'"
        try:
            out = encoder(batch.inputs[m], batch.lengths.get(m))
        except MmtkError:
            raise
        except Exception as exc:
            raise MmtkError(f"{what} failed in forward: {type(exc).__name__}: {exc}") from exc
        width = getattr(self, "latent_dim", None)  # set by whoever knows it (the builder)
        if not isinstance(out, Tensor) or out.dim() != 2 or out.shape[0] != batch.size \
                or (width is not None and out.shape[1] != width):
            got = f"shape {tuple(out.shape)}" if isinstance(out, Tensor) else type(out).__name__
            raise MmtkError(f"{what} returned {got}; an encoder must return (batch, latent_dim) = "
                            f"({batch.size}, {width or 'latent_dim'})")
        return out

    def _run_slot(self, name: str, slot: Slot, state: State, labels: Tensor | None,
                  targets: Targets | None) -> tuple[State, dict[str, Tensor]]:
        given = replace(state,
                        labels=labels if (slot.needs_labels and state.training) else None,
                        targets=targets if (slot.needs_targets and state.training) else None)
        new_state, losses = slot(given)
        unknown = set(losses) - set(slot.aux_losses)
        if unknown:
            raise MmtkError(f"{name} '{type(slot).__name__}' emitted loss(es) {sorted(unknown)} "
                            f"it does not declare in aux_losses {slot.aux_losses}")
        rep = new_state.represented
        if not isinstance(rep, Tensor) or rep.dtype != torch.bool or rep.shape != new_state.present.shape:
            raise MmtkError(f"{name} '{type(slot).__name__}' left state.represented as "
                            f"{getattr(rep, 'dtype', type(rep).__name__)} "
                            f"{tuple(getattr(rep, 'shape', ()))}; it must be a (B, M) bool tensor "
                            "like state.present (True where a modality has a representation)")
        return replace(new_state, labels=None, targets=None), \
            {f"{name}/{k}": v for k, v in losses.items()}

    def run_prefix(self, batch: ModalityBatch, upto: str) -> State:
        """Encoders and slots up to ``upto`` on a batch, without labels or targets."""
        state = self.encode(batch)
        if upto == "encoders":
            return state
        for name in SLOTS:
            slot = getattr(self, name)
            if slot is not None:
                state, _ = self._run_slot(name, slot, state, None, None)
            if name == upto:
                return state
        raise MmtkError(f"unknown slot '{upto}'; slots are encoders, {', '.join(SLOTS)}")

    def forward(self, batch: ModalityBatch, truth: ModalityBatch | None = None) -> Output:
        """``truth`` is the unmasked batch; it exists only in training. Its labels reach the
        slots that need them as they are: -1 marks an unlabelled sample."""
        if not self.training:
            truth = None
        targets = Targets(truth, self) if truth is not None else None
        labels = truth.labels if truth is not None else None
        state = self.encode(batch)
        aux: dict[str, Tensor] = {}
        for name in SLOTS:
            slot = getattr(self, name)
            if slot is None:
                continue
            state, losses = self._run_slot(name, slot, state, labels, targets)
            aux.update(losses)
        if state.fused is None:
            raise MmtkError(f"fuser '{type(self.fuser).__name__}' did not set state.fused")
        return Output(logits=self.head(state.fused), aux=aux, state=state)

    def declared_losses(self) -> set[str]:
        return {f"{n}/{k}" for n in SLOTS if getattr(self, n) is not None
                for k in getattr(self, n).aux_losses}

    def supervised_losses(self) -> set[str]:
        """The ``slot/name`` losses that read labels (labelled rows only)."""
        return {f"{n}/{k}" for n in SLOTS if getattr(self, n) is not None
                for k in label_losses(getattr(self, n))}

    def unlabeled_users(self, weights: dict[str, float]) -> list[str]:
        """What in this model can learn from a training sample without a label: its label-free
        losses with a nonzero weight (an unlisted loss weighs 1), and every part holding
        persistent buffers (running statistics, like BatchNorm's or mean imputation's, move in
        training forward passes). Empty: an unlabelled sample cannot change this model."""
        free = sorted(k for k in self.declared_losses() - self.supervised_losses()
                      if weights.get(k, 1.0) != 0)
        parameters = {name for name, _ in self.named_parameters()}
        depth = {"encoders": 2}   # name an encoder by its modality, any other part by its slot
        holders = {".".join(key.split(".")[:depth.get(key.split(".")[0], 1)])
                   for key in self.state_dict() if key not in parameters}
        if self.input_imputer is not None:   # fitted on the whole split before training
            holders.discard("reconstructor")
        return free + [f"{h} buffers" for h in sorted(holders)]
