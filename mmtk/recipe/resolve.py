"""``resolve``: a recipe file (or mapping) -> one checked, typed :class:`Recipe`.

The one path every command takes, ``--resume`` included (it resolves the run's saved
``recipe.yaml``): read, extend, override, interpolate, fill the defaults plugins supply,
make paths absolute, check everything, then build the dataclasses.
"""
from __future__ import annotations

import copy
import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import MmtkError, Problem, RecipeError
from ..schema import path_params
from .checks import check_tree, section_params, stage_blocks
from .loading import apply_overrides, attribute_to_overrides, deep_merge, find_recipe, interpolate_env, read_recipe_tree
from .sections import STAGE_SECTION_TYPES, STAGE_SECTIONS, Component, Data, Eval, InitFrom, Output, Recipe, Stage, Tune


@dataclass
class Report:
    """What checking a recipe found; ``skipped_imports`` were not executed (so the components
    they may define, listed in ``unchecked``, were not checked)."""

    problems: list[Problem]
    tree: dict
    source: Path | None
    skipped_imports: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)
    from_overrides: bool = False   # every problem came from --set / --seeds / --folds

    def where(self) -> str | None:
        """Where the problems are, for the error's first line."""
        source = str(self.source) if self.source else None
        if self.from_overrides:
            return "the command-line overrides" + (f" of {source}" if source else "")
        return source


def plugin_defaults(system: Any) -> dict:
    """The recipe defaults the installed plugins supply (``mmtk_recipe_defaults`` hook), merged
    in plugin order; the core itself names no component."""
    hook = getattr(system.pm.hook, "mmtk_recipe_defaults", None)
    merged: dict = {}
    for part in reversed(hook() if hook is not None else []):  # pluggy calls the last first
        merged = deep_merge(merged, part or {})
    return merged


def check(source: str | Path | dict, system: Any, overrides: list[str] | tuple[str, ...] = (), *,
          base_dir: str | Path | None = None, allow_imports: bool = True) -> Report:
    """Every problem of a recipe; a file's own shape problems raise at once."""
    named = {name: entry.path for name, entry in system.recipes.items()}
    if isinstance(source, dict):
        tree, path = copy.deepcopy(source), None
        base = Path(base_dir or ".").resolve()
    else:
        path = find_recipe(source, named)
        tree = read_recipe_tree(path, named)
        base = path.parent
    file_tree, tree = tree, apply_overrides(tree, list(overrides))
    tree, problems = interpolate_env(tree)
    defaults = plugin_defaults(system)
    given = {section: node for section, node in tree.items() if isinstance(node, dict)}
    defaulted = {f"{section}.{key}" for section, node in defaults.items() if isinstance(node, dict)
                 for key in node if key not in given.get(section, {})}
    tree = deep_merge(defaults, tree)
    tree.setdefault("name", path.stem if path else "run")
    imports = tree.get("imports") or []
    report = Report(problems, tree, path)
    if isinstance(imports, list):
        tree["imports"] = [str(base / i) if isinstance(i, str) and not Path(i).is_absolute() else i
                           for i in imports]
        for i, item in enumerate(tree["imports"]):
            if not isinstance(item, str):
                continue
            if not allow_imports:
                report.skipped_imports.append(item)
                continue
            status = system.load_file(item)
            if status.status != "ok":
                problems.append(Problem(f"imports[{i}]", f"plugin file '{item}' failed: {status.error}"))
    absolutize_paths(tree, system.registry, base)
    checker = check_tree(tree, system.registry, _dataset_of(system, problems),
                         imports_skipped=bool(report.skipped_imports), defaulted=defaulted)
    report.problems, report.from_overrides = attribute_to_overrides(problems + checker.problems,
                                                                    list(overrides), file_tree)
    report.unchecked = checker.unchecked
    return report


def resolve(source: str | Path | dict, system: Any, overrides: list[str] | tuple[str, ...] = (), *,
            base_dir: str | Path | None = None) -> Recipe:
    """The typed recipe, or a :class:`RecipeError` listing every problem. ``imports:`` run."""
    report = check(source, system, overrides, base_dir=base_dir)
    if report.problems:
        raise RecipeError(report.problems, report.where())
    return typed_recipe(report.tree, system.registry, report.source)


def _dataset_of(system: Any, problems: list[Problem]) -> Any:
    """Builds the dataset object (not its data) for the modality and fold checks."""
    from ..component_build import build_component  # not the Builder: it imports torch

    def dataset(block: dict) -> Any:
        try:
            comp = Component(block["type"], {k: v for k, v in block.items() if k != "type"})
            ds = build_component(system.registry, "dataset", comp, {"seed": 0}, "data")
            ds.modalities  # noqa: B018 - reading them is the check
            return ds
        except MmtkError as exc:
            problems.append(Problem("data", str(exc)))
        except Exception as exc:  # the constructor rejected its parameters
            problems.append(Problem("data", f"dataset '{block.get('type')}' could not be set up: "
                                    f"{type(exc).__name__}: {exc}"))
        return None
    return dataset


# ---------------------------------------------------------------------- paths ---
def _component_blocks(tree: dict) -> list[tuple[str, dict, dict | None]]:
    """(kind, block, block of the same part after stage merging) for every component block."""
    found: list[tuple[str, dict, dict | None]] = []
    data = tree.get("data")
    if isinstance(data, dict):
        found.append(("dataset", data, data))
    sections = [(tree, tree)]
    for _, merged, stage in (stage_blocks(tree) if isinstance(tree.get("stages"), list) else []):
        sections.append((stage, merged))
    for node, merged in sections:
        for kind, keys in (("missing", ("missing", "train")), ("missing", ("missing", "eval")),
                           ("loss", ("losses", "task")), ("optimizer", ("train", "optimizer")),
                           ("scheduler", ("train", "scheduler"))):
            found.append((kind, _get(node, keys), _get(merged, keys)))
        for slot in ("aligner", "reconstructor", "refiner", "fuser", "head"):
            found.append((slot, _get(node, ("model", slot)), _get(merged, ("model", slot))))
        encoders = _get(node, ("model", "encoders"))
        for m, block in (encoders.items() if isinstance(encoders, dict) else []):
            found.append(("encoder", block, _get(merged, ("model", "encoders", m))))
    return [(k, b, m) for k, b, m in found if isinstance(b, dict)]


def _get(node: Any, keys: tuple[str, ...]) -> Any:
    for k in keys:
        node = node.get(k) if isinstance(node, dict) else None
    return node


def absolutize_paths(tree: dict, registry: Any, base: Path) -> None:
    """Path-typed parameters become absolute, relative to the recipe's folder, so a saved
    recipe means the same thing wherever it is read from."""
    for kind, block, merged in _component_blocks(tree):
        name = (merged or block).get("type")
        try:
            wanted = path_params(registry.get(kind, str(name)).inspectable)
        except MmtkError:
            continue
        for key in wanted:
            value = block.get(key)
            if isinstance(value, str) and value:
                p = Path(value).expanduser()
                block[key] = str(p if p.is_absolute() else base / p)


# ---------------------------------------------------------------------- typing ---
def typed_recipe(tree: dict, registry: Any, source: Path | None) -> Recipe:
    """Dataclasses from a checked tree; ``tree`` is kept with the core defaults written out."""
    data_keys = {p.name for p in section_params(Data)[0]}
    data = tree["data"]
    stages = []
    for name, merged, block in stage_blocks(tree):
        init = block.get("init_from")
        if isinstance(init, str):
            init = {"stage": init}
        stages.append(Stage(
            name=name, init_from=InitFrom(**init) if init else None,
            freeze=list(block.get("freeze") or []),
            **{k: section_from_mapping(STAGE_SECTION_TYPES[k], merged[k], registry) for k in STAGE_SECTIONS}))
    top = {p.name: copy.deepcopy(tree[p.name]) for p in section_params(Recipe)[0] if p.name in tree}
    recipe = Recipe(
        **top,
        data=Data(**{k: data[k] for k in data_keys if k in data},
                  dataset=_component("dataset", {k: v for k, v in data.items() if k not in data_keys},
                                     registry)),
        stages=stages, eval=section_from_mapping(Eval, tree.get("eval") or {}, registry),
        output=section_from_mapping(Output, tree.get("output") or {}, registry), source=source,
        tune=section_from_mapping(Tune, tree["tune"], registry) if tree.get("tune") is not None else None)
    recipe.tree = saved_tree(tree, recipe)
    return recipe


def _component(kind: str, block: Any, registry: Any) -> Component:
    if isinstance(block, str):
        block = {"type": block}
    spec = registry.get(kind, block["type"])
    return Component(spec.name, {k: v for k, v in block.items() if k != "type"}, spec.provider.plugin)


def section_from_mapping(cls: type, node: dict, registry: Any) -> Any:
    """A section dataclass from a checked mapping; absent keys take the field defaults."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in node:
            continue
        value, kind = node[f.name], f.metadata.get("kind")
        if kind and typing.get_origin(hints[f.name]) is dict:
            value = {m: _component(kind, b, registry) for m, b in sorted(value.items()) if b is not None}
        elif kind and value is not None:
            value = _component(kind, value, registry)
        values[f.name] = copy.deepcopy(value)
    return cls(**values)


def saved_tree(tree: dict, recipe: Recipe) -> dict:
    """The recipe as ``recipe.yaml`` holds it: as written (after extends, overrides and
    plugin defaults), with every core default written out."""
    out = copy.deepcopy(tree)
    out["mmtk"], out["name"], out["seed"] = recipe.mmtk, recipe.name, recipe.seed
    out["description"], out["imports"] = recipe.description, recipe.imports
    for key, obj in (("data", recipe.data), ("eval", recipe.eval), ("output", recipe.output)):
        node = out.setdefault(key, {})
        for f in dataclasses.fields(obj):
            if "kind" not in f.metadata:
                node.setdefault(f.name, copy.deepcopy(getattr(obj, f.name)))
    for key, cls in STAGE_SECTION_TYPES.items():
        node = out.setdefault(key, {})
        for p in section_params(cls)[0]:
            if not p.required:
                node.setdefault(p.name, copy.deepcopy(p.default))
    ordered = ("mmtk", "name", "description", "imports", "seed", "data", "missing", "model",
               "losses", "train", "stages", "eval", "output")
    return {k: out[k] for k in ordered if k in out} | {k: v for k, v in out.items() if k not in ordered}
