"""The checks of one stage's sections (merged over the top level): missing protocols, the
model's parts, the losses and their weights, the loop, and the metrics against the task."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import MmtkError, accepted, did_you_mean
from ..metrics import as_metric
from ..task import LABELS, fitting_metrics, metric_reads, trains
from .sections import STAGE_SECTION_TYPES

if TYPE_CHECKING:
    from .checks import Checker

MODEL_SLOTS = ("aligner", "reconstructor", "refiner", "fuser", "head")


def check_stage(c: Checker, tree: dict, ev: dict, modalities: Any, where: str) -> None:
    """One stage's sections; every problem's path ends with ``where`` (" (stage 'x')")."""
    c.where = where
    try:
        _check_stage(c, tree, ev, modalities)
    finally:
        c.where = ""


def _check_stage(c: Checker, tree: dict, ev: dict, modalities: Any) -> None:
    missing = tree.get("missing")
    if missing is None:
        c.add("missing", "missing section 'missing' (no installed plugin supplies a default)")
    elif c.section(STAGE_SECTION_TYPES["missing"], missing, "missing"):
        for k in ("train", "eval"):
            c.component("missing", missing.get(k), f"missing.{k}")
    emitted = _check_model(c, tree.get("model"), modalities)
    task_loss = _check_losses(c, tree.get("losses"), emitted, tree.get("model") is not None)
    train = tree.get("train")
    if train is None:
        c.add("train", "missing section 'train'")
    elif c.section(STAGE_SECTION_TYPES["train"], train, "train"):
        c.component("optimizer", train.get("optimizer"), "train.optimizer")
        if train.get("scheduler") is not None:
            c.component("scheduler", train["scheduler"], "train.scheduler")
    _check_metrics(c, ev, train if isinstance(train, dict) else {}, task_loss, tree)


def _check_model(c: Checker, model: Any, modalities: Any) -> set[str]:
    """The model's parts; returns the ``slot/loss`` names its slots emit."""
    emitted: set[str] = set()
    if model is None:
        c.add("model", "missing section 'model'")
        return emitted
    if not c.section(STAGE_SECTION_TYPES["model"], model, "model"):
        return emitted
    encoders = model.get("encoders")
    if isinstance(encoders, dict):  # `modality: null` removes an inherited encoder
        encoders = {m: b for m, b in encoders.items() if b is not None}
    if not isinstance(encoders, dict) or not encoders:
        c.add("model.encoders", "expected a mapping modality -> {type: ENCODER}")
    else:
        for m, block in encoders.items():
            c.component("encoder", block, f"model.encoders.{m}")
        if modalities is not None:
            for m in sorted(set(modalities) - set(encoders)):
                c.add("model.encoders", f"the data has modality '{m}' but no encoder is "
                      f"given for it; data modalities: {', '.join(sorted(modalities))}")
            for m in sorted(set(encoders) - set(modalities)):
                c.add(f"model.encoders.{m}", f"the data has no modality '{m}'"
                      f"{did_you_mean(m, modalities)}; data modalities: {', '.join(sorted(modalities))}")
    for slot in MODEL_SLOTS:
        obj = c.component(slot, model.get(slot), f"model.{slot}",
                          optional=slot in ("aligner", "reconstructor", "refiner"))
        if obj is not None:
            emitted |= {f"{slot}/{n}" for n in getattr(obj, "aux_losses", ()) or ()}
    return emitted


def _check_losses(c: Checker, losses: Any, emitted: set[str], has_model: bool) -> Any:
    if losses is None:
        c.add("losses", "missing section 'losses'")
        return None
    if not c.section(STAGE_SECTION_TYPES["losses"], losses, "losses"):
        return None
    task_loss = c.component("loss", losses.get("task"), "losses.task")
    weights = losses.get("weights") or {}
    if isinstance(weights, dict) and has_model:
        for k, w in weights.items():
            if w is not None and k not in emitted:  # null = no weight (an ablation drops a slot)
                c.add(f"losses.weights.{k}",
                      f"no slot emits a loss named '{k}'{did_you_mean(k, emitted)}; "
                      f"{accepted(emitted) if emitted else 'the model emits no auxiliary loss'}")
    return task_loss


def _check_metrics(c: Checker, ev: dict, train: dict, task_loss: Any, tree: dict) -> None:
    """Metrics exist, read what the task loss trains (classes or scores), and include the
    monitored one."""
    names = ev.get("metrics") if isinstance(ev, dict) else None
    if not isinstance(names, list):
        return
    target = getattr(task_loss, "target", LABELS)
    loss = (tree.get("losses") or {}).get("task") if isinstance(tree.get("losses"), dict) else None
    loss = loss.get("type") if isinstance(loss, dict) else loss
    for i, name in enumerate(names):
        if not isinstance(name, str):
            continue
        try:
            spec = c.registry.get("metric", name)
        except MmtkError as exc:
            c.add(f"eval.metrics[{i}]", str(exc))
            continue
        try:
            reads = as_metric(spec.obj()).reads
        except Exception as exc:  # a broken metric factory is reported, not raised
            c.add(f"eval.metrics[{i}]", f"metric '{name}' failed to build: {exc}")
            continue
        if reads not in metric_reads(target):
            c.add(f"eval.metrics[{i}]",
                  f"'{name}' reads {'a regression score' if reads == 'regression' else 'class predictions'} "
                  f"but losses.task '{loss}' trains {trains(target)}; use {fitting_metrics(target)}"
                  + (" (set eval.metrics)" if "eval.metrics" in c.defaulted else ""))
    monitor = train.get("monitor")
    if isinstance(monitor, str) and monitor not in names:
        c.add("train.monitor", f"'{monitor}' is not among eval.metrics "
              f"({', '.join(map(str, names))}); model selection needs a metric that is evaluated")
