"""The typed, resolved recipe. The field defaults below ARE the defaults.

A section's fields are its schema, read by the same machinery as a component's constructor
(:func:`mmtk.schema.check_params`): type hints with limits (``Annotated[int, Ge(1)]``), and
defaults. Fields whose value is a component (``{type: NAME, ...params}``) carry the component
kind in their metadata; fields without a default are required, unless a plugin supplies a
default for them (the ``mmtk_recipe_defaults`` hook: the core names no component itself).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from ..constraints import AT_LEAST_ONE, DEVICE, FINITE, POSITIVE, RUN_NAME, Ge, Gt, Lt, NonEmpty

SCHEMA_VERSION = 1
Seed = Annotated[int, Ge(0), Lt(2**64)]


def component(kind: str, **kw: Any) -> Any:
    """A field holding a component block of ``kind``."""
    return field(metadata={"kind": kind}, **kw)


def section(cls: type) -> Any:
    """A field holding a nested section."""
    return field(metadata={"section": cls})


@dataclass(frozen=True)
class Component:
    """One component block: its registered ``type``, the recipe's parameters, and the plugin
    that provides it (fixed when the recipe is resolved)."""

    type: str
    params: dict[str, Any] = field(default_factory=dict)
    provider: str | None = None

    @property
    def qualified(self) -> str:
        return f"{self.provider}:{self.type}" if self.provider else self.type

    def tree(self) -> dict[str, Any]:
        return {"type": self.type, **self.params}


@dataclass(kw_only=True)
class Data:
    """``data:``: the dataset component plus how the core prepares its splits."""

    normalize: bool | list[str] = True
    val_fraction: Annotated[float, Gt(0), Lt(1)] = 0.1
    folds: Annotated[list[int], NonEmpty()] | Literal["all"] | None = None
    dataset: Component = component("dataset")


@dataclass(kw_only=True)
class Missing:
    """``missing:``: which modalities a model may see in training and in evaluation."""

    train: Component = component("missing")
    eval: Component = component("missing")


@dataclass(kw_only=True)
class Model:
    """``model:``: encoders -> aligner -> reconstructor -> refiner -> fuser -> head."""

    latent_dim: Annotated[int, AT_LEAST_ONE] = 128
    encoders: dict[str, Component] = component("encoder")
    aligner: Component | None = component("aligner", default=None)
    reconstructor: Component | None = component("reconstructor", default=None)
    refiner: Component | None = component("refiner", default=None)
    fuser: Component = component("fuser")
    head: Component = component("head")


@dataclass(kw_only=True)
class Losses:
    """``losses:``: the task loss and the weight of each auxiliary ``slot/name`` loss."""

    task: Component = component("loss")
    weights: dict[str, Annotated[float, FINITE] | None] = field(default_factory=dict)


@dataclass(kw_only=True)
class Train:
    """``train:``: the loop of one stage."""

    epochs: Annotated[int, AT_LEAST_ONE] = 30
    batch_size: Annotated[int, AT_LEAST_ONE] = 128
    grad_clip: Annotated[float, POSITIVE] | None = 5.0
    patience: Annotated[int, AT_LEAST_ONE] | None = 8
    monitor: str = field()
    device: Annotated[str, DEVICE] = "auto"
    amp: bool | Literal["auto", "bf16", "fp16"] = "auto"
    compile: bool = False
    deterministic: bool = True
    min_epochs: Annotated[int, AT_LEAST_ONE] = 1
    bucket_by_length: bool | Literal["auto"] = "auto"   # auto: when batches would be mostly padding
    # unlabelled training samples: auto | mixed | skip | N per step (mmtk.data_loading.EpochPlan)
    unlabeled: Annotated[int, AT_LEAST_ONE] | Literal["auto", "mixed", "skip"] = "auto"
    # optimizer steps per epoch (passes back to back); null: one pass over the samples
    epoch_steps: Annotated[int, AT_LEAST_ONE] | None = None
    threads: Annotated[int, AT_LEAST_ONE] | Literal["auto"] = "auto"   # torch threads: mmtk.threads
    checkpoint_every: Annotated[int, AT_LEAST_ONE] = 1
    checkpoint_seconds: Annotated[float, Ge(0)] = 30.0
    optimizer: Component = component("optimizer")
    scheduler: Component | None = component("scheduler", default=None)


@dataclass(kw_only=True)
class Eval:
    """``eval:``: what is measured after selection (and on validation while training)."""

    metrics: Annotated[list[str], NonEmpty()] = field()
    batch_size: Annotated[int, AT_LEAST_ONE] = 1024
    # the missing rates of `mmtk compare`'s robustness curves (the --missing-rates default)
    missing_rates: list[Annotated[float, Ge(0), Lt(1)]] | None = None


@dataclass(kw_only=True)
class Output:
    """``output:``: where run folders are created."""

    dir: str = "runs"


@dataclass(kw_only=True)
class Tune:
    """``tune:``: the search ``mmtk tune RECIPE`` runs when the command line does not say
    (``--space`` / ``--trials`` / ``--sampler`` / ``--pruner`` / ``--prune-after`` win)."""

    space: Annotated[dict[str, dict], NonEmpty()] | None = None   # the space file's mapping
    trials: Annotated[int, AT_LEAST_ONE] | None = None
    sampler: Literal["tpe", "random"] | None = None
    pruner: Literal["median", "none"] | None = None
    prune_after: Annotated[int, Ge(0)] | None = None


@dataclass(kw_only=True)
class InitFrom:
    """``init_from:``: start a stage from an earlier stage's weights (``map``: prefixes)."""

    stage: str
    map: dict[str, str | list[str]] | list[Annotated[list[str], NonEmpty()]] | None = None


@dataclass(kw_only=True)
class Stage:
    """One stage, already merged with the recipe's top-level sections."""

    name: str
    init_from: InitFrom | None = None
    freeze: list[str] = field(default_factory=list)
    train: Train
    missing: Missing
    losses: Losses
    model: Model


# The keys a recipe file may hold at its top level and in a stage block.
STAGE_SECTIONS = ("train", "missing", "losses", "model")
STAGE_KEYS = ("name", "init_from", "freeze", *STAGE_SECTIONS)


@dataclass(kw_only=True)
class Recipe:
    """A resolved recipe: every default filled in, every component looked up, every path
    absolute. ``tree`` is the same recipe as a plain mapping (what ``recipe.yaml`` holds).
    The top-level ``train``/``missing``/``losses``/``model`` sections exist only merged into
    each stage (a recipe without ``stages`` has one stage, ``main``)."""

    mmtk: Literal[1] = 1  # SCHEMA_VERSION
    name: Annotated[str, RUN_NAME] = field()
    description: str = ""
    imports: list[str] = field(default_factory=list)
    seed: Seed | Annotated[list[Seed], NonEmpty()] = 0
    data: Data = section(Data)
    stages: list[Stage] = field(metadata={"derived": True})  # merged; see STAGE_SECTIONS
    eval: Eval = section(Eval)
    output: Output = section(Output)
    tune: Tune | None = field(default=None, metadata={"section": Tune})  # read by mmtk tune only
    source: Path | None = field(default=None, metadata={"derived": True})
    tree: dict = field(default_factory=dict, metadata={"derived": True}, repr=False)

    @property
    def seeds(self) -> list[int]:
        return list(self.seed) if isinstance(self.seed, list) else [self.seed]

    @property
    def first_stage(self) -> Stage:
        return self.stages[0]

    @property
    def last_stage(self) -> Stage:
        return self.stages[-1]



STAGE_SECTION_TYPES: dict[str, type] = {"train": Train, "missing": Missing, "losses": Losses,
                                        "model": Model}
