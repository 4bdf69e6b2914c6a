"""Recipes: YAML load (YAML 1.2 numbers and booleans), ``extends``, ``--set``, validation.

A recipe names registry entries only. :func:`validate` collects every problem with its
dotted path; :func:`load_recipe` raises one :class:`RecipeError` listing them all.
"""
from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any, Callable, Literal

import yaml

from .errors import MmtkError, Problem, RecipeError, accepted, did_you_mean
from .schema import check_type, type_name, validate_params

SCHEMA_VERSION = 1


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema scalars: ``1e-4`` is a float, ``on``/``no`` are strings."""


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag not in ("tag:yaml.org,2002:float", "tag:yaml.org,2002:bool")]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_FLOAT = re.compile(r"""^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?
                     |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""", re.X)
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))


def _construct_float(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    text = loader.construct_scalar(node)
    if re.fullmatch(r"[-+]?[0-9]+", text):
        return int(text)
    return float(text.replace(".inf", "inf").replace(".Inf", "inf").replace(".INF", "inf")
                 .replace(".nan", "nan").replace(".NaN", "nan").replace(".NAN", "nan"))


_Loader.add_constructor("tag:yaml.org,2002:float", _construct_float)


def parse_yaml(text: str, source: str = "<string>") -> Any:
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise RecipeError([Problem("", f"invalid YAML{where}: {problem}")], source) from None


def parse_value(text: str) -> Any:
    """A ``--set`` value, read as a YAML scalar or flow collection."""
    value = parse_yaml(text, "--set")
    return "" if value is None and text.strip() not in ("null", "~", "") else value


_ENV = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def interpolate_env(tree: dict) -> tuple[dict, list[Problem]]:
    """Resolve ``${env:NAME}`` everywhere; unset variables are problems."""
    problems: list[Problem] = []
    return _interpolate(tree, "", problems), problems


def _interpolate(node: Any, path: str, problems: list[Problem]) -> Any:
    """Replace ``${env:NAME}`` (or ``${env:NAME:-default}``) inside strings."""
    if isinstance(node, dict):
        return {k: _interpolate(v, f"{path}.{k}" if path else str(k), problems) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate(v, f"{path}[{i}]", problems) for i, v in enumerate(node)]
    if isinstance(node, str) and "${env:" in node:
        def sub(match: re.Match) -> str:
            name, default = match.group(1), match.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            problems.append(Problem(path, f"environment variable {name} is not set "
                                    f"(the recipe uses ${{env:{name}}})"))
            return match.group(0)
        return _ENV.sub(sub, node)
    return node


def deep_merge(base: Any, override: Any) -> Any:
    """Dicts merge key by key; anything else (lists, scalars, null) replaces. A component
    block whose ``type`` changes is replaced whole: the old type's parameters do not leak."""
    if isinstance(base, dict) and isinstance(override, dict):
        if "type" in base and "type" in override and base["type"] != override["type"]:
            return copy.deepcopy(override)
        out = dict(base)
        for k, v in override.items():
            out[k] = deep_merge(base.get(k), v) if k in base else copy.deepcopy(v)
        return out
    return copy.deepcopy(override)


def set_path(tree: dict, dotted: str, value: Any) -> None:
    """Set ``a.b.c`` (a numeric part indexes a list: ``stages.1.train.epochs``)."""
    keys = dotted.split(".")
    node: Any = tree
    for i, k in enumerate(keys):
        last = i == len(keys) - 1
        if isinstance(node, list):
            if not k.isdigit() or int(k) >= len(node):
                raise RecipeError([Problem(dotted, f"'{k}' is not an index of a list of "
                                           f"{len(node)} item(s)")], "--set")
            if last:
                node[int(k)] = value
            else:
                node = node[int(k)]
            continue
        if last:
            node[k] = value
        else:
            if not isinstance(node.get(k), (dict, list)):
                node[k] = {}
            node = node[k]


def apply_overrides(tree: dict, overrides: list[str]) -> dict:
    tree = copy.deepcopy(tree)
    for item in overrides:
        if "=" not in item:
            raise RecipeError([Problem(item, "--set expects KEY.PATH=VALUE")], "--set")
        key, value = item.split("=", 1)
        set_path(tree, key.strip(), parse_value(value))
    return tree


def read_recipe_tree(path: str | Path, named: dict[str, Path] | None = None,
                     _chain: tuple[Path, ...] = ()) -> dict:
    """Read a recipe file and resolve its ``extends`` chain (relative to the file)."""
    path = Path(path)
    if not path.is_file():
        if named and str(path) in named:
            path = named[str(path)]
        else:
            hint = did_you_mean(str(path), named or {})
            raise MmtkError(f"recipe '{path}' not found (looked for the file {path.resolve()} "
                            f"and for a registered recipe of that name{hint})")
    path = path.resolve()
    if path in _chain:
        raise RecipeError([Problem("extends", "circular extends: " +
                                   " -> ".join(str(p) for p in _chain + (path,)))], str(path))
    tree = parse_yaml(path.read_text(), str(path))
    if tree is None:
        tree = {}
    if not isinstance(tree, dict):
        raise RecipeError([Problem("", f"a recipe must be a mapping, got {type(tree).__name__}")],
                          str(path))
    parent = tree.pop("extends", None)
    tree.setdefault("_base_dir", str(path.parent))
    if parent:
        parent_path = Path(parent)
        if not parent_path.is_absolute() and (path.parent / parent_path).is_file():
            parent_path = path.parent / parent_path
        base = read_recipe_tree(parent_path, named, _chain + (path,))
        base.pop("_base_dir", None)
        imports = list(base.get("imports", [])) + list(tree.get("imports", []))
        tree = deep_merge(base, tree)
        if imports:
            tree["imports"] = imports
    tree["_base_dir"] = str(path.parent)
    tree["_source"] = str(path)
    return tree


# ------------------------------------------------------------------------- core schema ---
# Core-level sections: key -> (type, default). Component blocks are checked separately.
DATA_KEYS = {"normalize": (bool | list[str], True), "val_fraction": (float, 0.1),
             "folds": (list[int] | Literal["all"] | None, None)}
TRAIN_KEYS = {
    "epochs": (int, 30), "batch_size": (int, 128), "grad_clip": (float | None, 5.0),
    "patience": (int | None, 8), "monitor": (str, "uar"),
    "device": (str, "auto"), "amp": (bool | Literal["auto", "bf16", "fp16"], "auto"),
    "compile": (bool, False), "deterministic": (bool, True), "min_epochs": (int, 1),
    "bucket_by_length": (bool, False), "checkpoint_every": (int, 1),
    "checkpoint_seconds": (float, 30.0),
}
TRAIN_BLOCKS = {"optimizer": {"type": "adam"}, "scheduler": None}
EVAL_KEYS = {"metrics": (list[str], ["war", "uar", "f1_macro", "f1_weighted"]),
             "batch_size": (int, 1024)}
OUTPUT_KEYS = {"dir": (str, "runs")}
MODEL_BLOCKS = ("aligner", "reconstructor", "refiner", "fuser", "head")
STAGE_KEYS = {"name", "init_from", "freeze", "train", "missing", "losses", "model"}
TOP_KEYS = {"mmtk", "name", "description", "imports", "seed", "data", "missing", "model",
            "losses", "train", "stages", "eval", "output"}


def with_defaults(tree: dict) -> dict:
    """Fill in core defaults so the saved, resolved recipe shows every setting."""
    tree = copy.deepcopy(tree)
    tree.setdefault("mmtk", SCHEMA_VERSION)
    tree.setdefault("seed", 0)
    data = tree.setdefault("data", {})
    if isinstance(data, dict):
        for k, (_, d) in DATA_KEYS.items():
            data.setdefault(k, d)
    tree.setdefault("missing", {"train": {"type": "none"}, "eval": {"type": "none"}})
    losses = tree.setdefault("losses", {})
    if isinstance(losses, dict):
        losses.setdefault("task", {"type": "cross_entropy"})
        losses.setdefault("weights", {})
    for section, keys in (("train", TRAIN_KEYS), ("eval", EVAL_KEYS), ("output", OUTPUT_KEYS)):
        node = tree.setdefault(section, {})
        if isinstance(node, dict):
            for k, (_, d) in keys.items():
                node.setdefault(k, copy.deepcopy(d))
    train = tree["train"]
    if isinstance(train, dict):
        for k, d in TRAIN_BLOCKS.items():
            train.setdefault(k, copy.deepcopy(d))
    model = tree.setdefault("model", {})
    if isinstance(model, dict):
        model.setdefault("latent_dim", 128)
        for slot in ("aligner", "reconstructor", "refiner"):
            model.setdefault(slot, None)
    return tree


def seeds_of(tree: dict) -> list[int]:
    seed = tree.get("seed", 0)
    return list(seed) if isinstance(seed, list) else [seed]


def stage_trees(tree: dict) -> list[tuple[str, dict, dict]]:
    """(name, merged recipe for the stage, stage block) for every stage (one if none)."""
    stages = tree.get("stages") or [{"name": "main"}]
    out = []
    for i, stage in enumerate(stages):
        merged = copy.deepcopy(tree)
        for key in ("train", "missing", "losses", "model"):
            if key in stage:
                merged[key] = deep_merge(merged.get(key, {}), stage[key])
        out.append((stage.get("name", f"stage{i}"), merged, stage))
    return out


class _Checker:
    """Collects problems while walking a recipe tree against the registry."""

    def __init__(self, registry: Any):
        self.registry = registry
        self.problems: list[Problem] = []

    def add(self, path: str, msg: str) -> None:
        p = Problem(path, msg)
        if p not in self.problems:
            self.problems.append(p)

    def keys(self, node: Any, path: str, allowed: set[str] | dict) -> bool:
        if not isinstance(node, dict):
            self.add(path, f"expected a mapping, got {type(node).__name__} {node!r}")
            return False
        for k in node:
            if k not in allowed:
                self.add(f"{path}.{k}" if path else str(k),
                         f"unknown key '{k}'{did_you_mean(k, allowed)}; {accepted(allowed)}")
        return True

    def typed(self, node: dict, path: str, spec: dict) -> None:
        for k, (tp, _) in spec.items():
            if k in node and not check_type(node[k], tp):
                self.add(f"{path}.{k}", f"expected {type_name(tp)}, got "
                                        f"{type(node[k]).__name__} {node[k]!r}")

    def component(self, kind: str, block: Any, path: str, reserved: dict | None = None,
                  optional: bool = False) -> Any:
        """Check ``{type: NAME, ...params}``; return the component's object or None."""
        if block is None:
            if not optional:
                self.add(path, f"a {kind} is required here: write {{type: NAME}}; "
                         f"{accepted(self.registry.names(kind))}")
            return None
        if isinstance(block, str):
            block = {"type": block}
        if not isinstance(block, dict):
            self.add(path, f"expected a {kind} block {{type: NAME, ...}}, got {block!r}")
            return None
        if "type" not in block:
            self.add(f"{path}.type", f"missing 'type' naming a {kind}; "
                                     f"{accepted(self.registry.names(kind))}")
            return None
        try:
            spec = self.registry.get(kind, str(block["type"]))
        except MmtkError as exc:
            self.add(f"{path}.type", str(exc))
            return None
        params = {k: v for k, v in block.items() if k != "type" and k not in (reserved or {})}
        for p in validate_params(spec.obj, params, path):
            self.add(p.path, p.message)
        return spec.obj


def _slot_losses(obj: Any) -> tuple[str, ...]:
    return tuple(getattr(obj, "aux_losses", ()) or ())


def validate(tree: dict, registry: Any, dataset_modalities: Any = None) -> list[Problem]:
    """Every problem in a resolved recipe tree (after extends/overrides, before defaults)."""
    c = _Checker(registry)
    if not c.keys(tree, "", TOP_KEYS | {"_base_dir", "_source"}):
        return c.problems
    version = tree.get("mmtk", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        c.add("mmtk", f"schema version {version!r} is not supported; this mmtk reads version "
                      f"{SCHEMA_VERSION}")
    if "name" in tree and not isinstance(tree["name"], str):
        c.add("name", f"expected a string, got {tree['name']!r}")
    seed = tree.get("seed", 0)
    if not check_type(seed, int | list[int]):
        c.add("seed", f"expected an int or a list of ints, got {seed!r}")
    if "imports" in tree and not check_type(tree["imports"], list[str]):
        c.add("imports", "expected a list of plugin file paths")

    # data
    data = tree.get("data")
    modalities = None
    if data is None:
        c.add("data", "missing section 'data' (e.g. {type: synthetic})")
    elif isinstance(data, dict):
        c.typed(data, "data", DATA_KEYS)
        obj = c.component("dataset", data, "data", reserved=DATA_KEYS)
        if obj is not None and dataset_modalities is not None:
            modalities = dataset_modalities(data)

    stages = tree.get("stages")
    if stages is not None and not isinstance(stages, list):
        c.add("stages", "expected a list of stage blocks")
        stages = None
    stage_names: list[str] = []
    for i, stage in enumerate(stages or []):
        p = f"stages[{i}]"
        if c.keys(stage, p, STAGE_KEYS):
            name = stage.get("name", f"stage{i}")
            init = stage.get("init_from")
            if init is not None:
                src = init.get("stage") if isinstance(init, dict) else init
                if isinstance(init, dict):
                    c.keys(init, f"{p}.init_from", {"stage", "map"})
                if src not in stage_names:
                    c.add(f"{p}.init_from", f"'{src}' is not an earlier stage"
                          f"{did_you_mean(str(src), stage_names)}; earlier stages: "
                          f"{', '.join(stage_names) or 'none'}")
            if "freeze" in stage and not check_type(stage["freeze"], list[str]):
                c.add(f"{p}.freeze", "expected a list of model part names, e.g. [encoders]")
            stage_names.append(name)

    for s_name, merged, _ in stage_trees(tree):
        where = f" (stage '{s_name}')" if stages else ""
        _validate_stage(c, merged, modalities, where)
    return c.problems


def _validate_stage(c: _Checker, tree: dict, modalities: Any, where: str) -> None:
    def path(p: str) -> str:
        return p + where

    missing = tree.get("missing")
    if missing is not None and c.keys(missing, path("missing"), {"train", "eval"}):
        for k in ("train", "eval"):
            if k in missing:
                c.component("missing", missing[k], path(f"missing.{k}"))

    model = tree.get("model")
    emitted: set[str] = set()
    if model is None:
        c.add(path("model"), "missing section 'model'")
    elif c.keys(model, path("model"), {"latent_dim", "encoders", *MODEL_BLOCKS}):
        if "latent_dim" in model and not check_type(model["latent_dim"], int):
            c.add(path("model.latent_dim"), f"expected int, got {model['latent_dim']!r}")
        encoders = model.get("encoders")
        if isinstance(encoders, dict):  # `modality: null` removes an inherited encoder
            encoders = {m: b for m, b in encoders.items() if b is not None}
        if not isinstance(encoders, dict) or not encoders:
            c.add(path("model.encoders"), "expected a mapping modality -> {type: ENCODER}")
        else:
            for m, block in encoders.items():
                c.component("encoder", block, path(f"model.encoders.{m}"))
            if modalities is not None:
                for m in sorted(set(modalities) - set(encoders)):
                    c.add(path("model.encoders"), f"the data has modality '{m}' but no encoder "
                          f"is given for it; data modalities: {', '.join(sorted(modalities))}")
                for m in sorted(set(encoders) - set(modalities)):
                    c.add(path(f"model.encoders.{m}"), f"the data has no modality '{m}'"
                          f"{did_you_mean(m, modalities)}; data modalities: "
                          f"{', '.join(sorted(modalities))}")
        for slot in MODEL_BLOCKS:
            kind = "fuser" if slot == "fuser" else "head" if slot == "head" else slot
            obj = c.component(kind, model.get(slot), path(f"model.{slot}"),
                              optional=slot in ("aligner", "reconstructor", "refiner"))
            if obj is not None:
                emitted |= {f"{slot}/{n}" for n in _slot_losses(obj)}

    losses = tree.get("losses")
    task_loss = None
    if losses is not None and c.keys(losses, path("losses"), {"task", "weights"}):
        if "task" in losses:
            task_loss = c.component("loss", losses["task"], path("losses.task"))
        weights = losses.get("weights") or {}
        if not isinstance(weights, dict):
            c.add(path("losses.weights"), "expected a mapping 'slot/loss' -> weight")
        elif model is not None:
            for k, w in weights.items():
                if w is None:
                    continue  # null = no weight: lets an ablation drop a slot and its weight
                if not check_type(w, float):
                    c.add(path(f"losses.weights.{k}"), f"expected a number, got {w!r}")
                if k not in emitted:
                    c.add(path(f"losses.weights.{k}"),
                          f"no slot emits a loss named '{k}'{did_you_mean(k, emitted)}; "
                          f"{accepted(emitted) if emitted else 'the model emits no auxiliary loss'}")

    train = tree.get("train")
    if train is not None and c.keys(train, path("train"), set(TRAIN_KEYS) | set(TRAIN_BLOCKS)):
        c.typed(train, path("train"), TRAIN_KEYS)
        if "optimizer" in train:
            c.component("optimizer", train["optimizer"], path("train.optimizer"))
        if train.get("scheduler") is not None:
            c.component("scheduler", train["scheduler"], path("train.scheduler"))
    ev = tree.get("eval")
    if ev is not None and c.keys(ev, path("eval"), EVAL_KEYS):
        c.typed(ev, path("eval"), EVAL_KEYS)
    _validate_metrics(c, tree, task_loss, path)
    out = tree.get("output")
    if out is not None and c.keys(out, path("output"), OUTPUT_KEYS):
        c.typed(out, path("output"), OUTPUT_KEYS)


def _validate_metrics(c: _Checker, tree: dict, task_loss: Any, path: Callable[[str], str]) -> None:
    """Metrics exist, read what the task loss trains (classes or scores), and include the
    monitored one."""
    from .metrics import as_metric
    from .task import LABELS, fitting_metrics, metric_reads, trains

    ev = tree.get("eval") if isinstance(tree.get("eval"), dict) else {}
    names = ev.get("metrics", EVAL_KEYS["metrics"][1])
    if not isinstance(names, list):
        return
    target = getattr(task_loss, "target", LABELS)
    loss = (tree.get("losses") or {}).get("task")
    loss = loss.get("type") if isinstance(loss, dict) else loss or "cross_entropy"
    for i, name in enumerate(names):
        if not isinstance(name, str):
            continue
        try:
            spec = c.registry.get("metric", name)
        except MmtkError as exc:
            c.add(path(f"eval.metrics[{i}]"), str(exc))
            continue
        try:
            reads = as_metric(spec.obj()).reads
        except Exception as exc:  # a broken metric factory is reported, not raised
            c.add(path(f"eval.metrics[{i}]"), f"metric '{name}' failed to build: {exc}")
            continue
        if reads != metric_reads(target):
            c.add(path(f"eval.metrics[{i}]"),
                  f"'{name}' reads {'a regression score' if reads == 'regression' else 'class predictions'} "
                  f"but losses.task '{loss}' trains {trains(target)}; use {fitting_metrics(target)}"
                  + ("" if "metrics" in ev else " (set eval.metrics)"))
    train = tree.get("train") if isinstance(tree.get("train"), dict) else {}
    monitor = train.get("monitor", TRAIN_KEYS["monitor"][1])
    if isinstance(monitor, str) and monitor not in names:
        c.add(path("train.monitor"), f"'{monitor}' is not among eval.metrics "
              f"({', '.join(map(str, names))}); model selection needs a metric that is evaluated")


def component_params(block: dict | str | None, reserved: dict | None = None) -> tuple[str, dict]:
    if isinstance(block, str):
        return block, {}
    return block["type"], {k: v for k, v in block.items() if k != "type" and k not in (reserved or {})}
