"""Every problem of a recipe tree at once, each with its dotted path.

Core sections are checked against the fields of their dataclasses (:mod:`.sections`) and
components against their constructors, by the same functions (:mod:`mmtk.schema`).
"""
from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any, Callable

from ..errors import MmtkError, Problem, accepted, did_you_mean
from ..schema import Param, check_params, validate_params
from .loading import deep_merge
from .sections import SCHEMA_VERSION, STAGE_KEYS, STAGE_SECTIONS, Data, Eval, InitFrom, Output, Recipe, Tune
from .stage_checks import check_stage


def section_params(cls: type) -> tuple[list[Param], dict[str, dataclasses.Field]]:
    """(plain fields as schema parameters, component/section fields) of a section class."""
    hints = typing.get_type_hints(cls, include_extras=True)
    plain, special = [], {}
    for f in dataclasses.fields(cls):
        if f.metadata.get("derived"):
            continue
        if "kind" in f.metadata or "section" in f.metadata:
            special[f.name] = f
            continue
        if f.default is not dataclasses.MISSING:
            plain.append(Param(f.name, hints[f.name], f.default))
        elif f.default_factory is not dataclasses.MISSING:
            plain.append(Param(f.name, hints[f.name], f.default_factory()))
        else:
            plain.append(Param(f.name, hints[f.name]))
    return plain, special


def stage_blocks(tree: dict) -> list[tuple[str, dict, dict]]:
    """(name, the stage's sections merged over the top level, the stage block as written)."""
    stages = tree.get("stages") or [{"name": "main"}]
    out = []
    for i, stage in enumerate(stages):
        stage = stage if isinstance(stage, dict) else {}
        merged = {k: deep_merge(tree.get(k) or {}, stage[k]) if k in stage else tree.get(k)
                  for k in STAGE_SECTIONS}
        out.append((str(stage.get("name", f"stage{i}")), merged, stage))
    return out


class Checker:
    """Collects problems while walking a recipe tree against the registry. With
    ``imports_skipped``, components the registry does not know are listed as unchecked
    (they may come from the recipe's ``imports:``, which were not executed)."""

    def __init__(self, registry: Any, imports_skipped: bool = False):
        self.registry = registry
        self.problems: list[Problem] = []
        self.imports_skipped = imports_skipped
        self.unchecked: list[str] = []
        self.defaulted: set[str] = set()
        self.where = ""   # appended to every path: " (stage 'x')" while a stage is checked

    def add(self, path: str, msg: str) -> None:
        p = Problem(path + self.where, msg)
        if p not in self.problems:
            self.problems.append(p)

    def mapping(self, node: Any, path: str) -> bool:
        if not isinstance(node, dict):
            self.add(path, f"expected a mapping, got {type(node).__name__} {node!r}")
            return False
        return True

    def section(self, cls: type, node: Any, path: str, extra_keys: tuple[str, ...] = ()) -> bool:
        """Unknown keys, types and limits of a core section's plain fields."""
        if not self.mapping(node, path):
            return False
        plain, special = section_params(cls)
        known = {p.name for p in plain} | set(special) | set(extra_keys)
        for k in node:
            if k not in known:
                self.add(f"{path}.{k}" if path else str(k),
                         f"unknown key '{k}'{did_you_mean(str(k), known)}; {accepted(known)}")
        values = {p.name: node[p.name] for p in plain if p.name in node}
        for p in check_params(plain, values, path, what="key"):
            self.add(p.path, p.message + (" (no installed plugin supplies a default for it)"
                                          if "missing required" in p.message else ""))
        return True

    def component(self, kind: str, block: Any, path: str, optional: bool = False) -> Any:
        """Check ``{type: NAME, ...params}``; return the component's object or None."""
        if block is None:
            if not optional:
                self.add(path, f"a {kind} is required here: write {{type: NAME}}; "
                         f"{accepted(self.registry.names(kind))}")
            return None
        if isinstance(block, str):
            block = {"type": block}
        if not isinstance(block, dict):
            self.add(path, f"expected {'an' if kind[0] in 'aeiou' else 'a'} {kind} block {{type: NAME, ...}}, "
                           f"got {block!r}")
            return None
        if "type" not in block:
            self.add(f"{path}.type", f"missing 'type' naming a {kind}; "
                                     f"{accepted(self.registry.names(kind))}")
            return None
        if not isinstance(block["type"], str):
            self.add(f"{path}.type", f"expected a {kind} name, got {block['type']!r}")
            return None
        try:
            spec = self.registry.get(kind, block["type"])
        except MmtkError as exc:
            if self.imports_skipped:
                self.unchecked.append(f"{path} ({kind} '{block['type']}')")
            else:
                self.add(f"{path}.type", str(exc))
            return None
        params = {k: v for k, v in block.items() if k != "type"}
        inspectable = spec.inspectable   # the signature read from source when possible (no import)
        for p in validate_params(inspectable, params, path, kind):
            self.add(p.path, p.message)
        return inspectable


def check_tree(tree: dict, registry: Any, dataset_of: Callable[[dict], Any] | None = None,
               imports_skipped: bool = False, defaulted: frozenset[str] | set[str] = frozenset()) -> Checker:
    """Every problem in a complete recipe tree (after extends, overrides and defaults).
    ``defaulted``: the dotted keys a plugin's defaults filled in (a problem there says so)."""
    c = Checker(registry, imports_skipped)
    c.defaulted = set(defaulted)
    if not c.section(Recipe, {k: v for k, v in tree.items() if k not in STAGE_SECTIONS},
                     "", extra_keys=("stages", *STAGE_SECTIONS)):
        return c
    if tree.get("mmtk", SCHEMA_VERSION) != SCHEMA_VERSION:
        c.add("mmtk", f"schema version {tree['mmtk']!r} is not supported; this mmtk reads "
                      f"version {SCHEMA_VERSION}")
    modalities = _check_data(c, tree.get("data"), dataset_of)
    c.section(Eval, {} if tree.get("eval") is None else tree["eval"], "eval")
    if tree.get("output") is not None and c.section(Output, tree["output"], "output"):
        out = tree["output"].get("dir")
        if isinstance(out, str) and Path(out).exists() and not Path(out).is_dir():
            c.add("output.dir", f"'{out}' is a file; output.dir must be a folder (it holds the run folders)")
    if tree.get("tune") is not None:
        c.section(Tune, tree["tune"], "tune")
    names = _check_stage_list(c, tree.get("stages"))
    for name, merged, _ in stage_blocks(tree) if names is not None else []:
        where = f" (stage '{name}')" if tree.get("stages") else ""
        check_stage(c, merged, tree.get("eval") or {}, modalities, where)
    return c


def _check_data(c: Checker, data: Any, dataset_of: Callable | None) -> Any:
    """The ``data`` block; returns the dataset's modalities when it could be set up."""
    if data is None:
        c.add("data", "missing section 'data' (e.g. {type: synthetic})")
        return None
    reserved = {p.name for p in section_params(Data)[0]}
    if not c.mapping(data, "data"):
        return None
    values = {k: v for k, v in data.items() if k in reserved}
    for p in check_params(section_params(Data)[0], values, "data", what="key"):
        c.add(p.path, p.message)
    block = {k: v for k, v in data.items() if k not in reserved}
    before = len(c.problems)
    obj = c.component("dataset", block, "data")
    # a dataset whose parameters are already wrong is not built too (one report per mistake)
    fine = obj is not None and len(c.problems) == before and dataset_of is not None
    dataset = dataset_of(block) if fine else None
    if dataset is None:
        return None
    _check_folds(c, dataset, data.get("folds"), block["type"])
    return dataset.modalities


def _check_folds(c: Checker, dataset: Any, wanted: Any, name: str) -> None:
    """``data.folds`` (or ``--folds``) must name folds the dataset has."""
    if wanted is None or not (wanted == "all" or isinstance(wanted, list)):
        return
    try:
        have = dataset.folds()
    except MmtkError as exc:
        c.add("data.folds", str(exc))
        return
    if have == [None]:
        c.add("data.folds", f"dataset '{name}' has no folds (one fixed split), so data.folds / "
                            "--folds cannot be used with it; remove them")
    elif isinstance(wanted, list):
        unknown = [f for f in wanted if f not in have]
        if unknown:
            c.add("data.folds", f"fold(s) {unknown} are not folds of dataset '{name}'; its folds: "
                                f"{', '.join(map(str, have))}")


def _check_stage_list(c: Checker, stages: Any) -> list[str] | None:
    """Shapes of ``stages``, unique names, ``init_from`` naming an earlier stage."""
    if stages is None:
        return []
    if not isinstance(stages, list) or not stages:
        c.add("stages", f"expected a non-empty list of stage blocks ({{name: ..., train: ...}}), "
                        f"got {type(stages).__name__} {stages!r}")
        return None
    names: list[str] = []
    for i, stage in enumerate(stages):
        p = f"stages[{i}]"
        if not isinstance(stage, dict):
            c.add(p, f"expected a stage block {{name: ..., train: ...}}, got {type(stage).__name__} {stage!r}")
            return None
        for k in stage:
            if k not in STAGE_KEYS:
                c.add(f"{p}.{k}", f"unknown key '{k}'{did_you_mean(str(k), STAGE_KEYS)}; {accepted(STAGE_KEYS)}")
        name = stage.get("name", f"stage{i}")
        if not isinstance(name, str):
            c.add(f"{p}.name", f"expected a string, got {name!r}")
        elif name in names:
            c.add(f"{p}.name", f"stage name '{name}' is used twice; each stage needs its own name "
                               "(it names the stage's checkpoint)")
        init = stage.get("init_from")
        if init is not None:
            src = init.get("stage") if isinstance(init, dict) else init
            if isinstance(init, dict):
                c.section(InitFrom, init, f"{p}.init_from")
            elif not isinstance(init, str):
                c.add(f"{p}.init_from", f"expected a stage name or {{stage: NAME, map: ...}}, got {init!r}")
            if isinstance(src, str) and src not in names:
                c.add(f"{p}.init_from", f"'{src}' is not an earlier stage"
                      f"{did_you_mean(src, names)}; earlier stages: {', '.join(names) or 'none'}")
        if "freeze" in stage and not (isinstance(stage["freeze"], list)
                                      and all(isinstance(x, str) for x in stage["freeze"])):
            c.add(f"{p}.freeze", "expected a list of model part names, e.g. [encoders]")
        names.append(str(name))
    return names

