"""Searched values as recipe overrides: checked against the recipe before any training, applied
to each trial exactly as ``--set`` is, and written into ``best.yaml``.

A value is a ``--set``-style ``path=value`` string, so a trial's recipe goes through the same
checks as any recipe (unknown path, wrong type, out of range). A ``*.type`` choice replaces
the whole component block when the type changes (the old type's parameters do not apply);
``null`` removes an optional slot.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from .engine import TuneError
from .space import Param


def _current(tree: dict, dotted: str) -> Any:
    node: Any = tree
    for key in dotted.split("."):
        if isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        elif isinstance(node, dict):
            node = node.get(key)
        else:
            return None
    return node


def overrides_for(params: list[Param], values: dict[str, Any], base_tree: dict) -> list[str]:
    """``path=value`` strings for ``values`` (keyed by path); type switches come first so a
    parameter searched inside the same block lands in the new block."""
    ordered = sorted(params, key=lambda p: (not p.is_type_switch, p.path))
    out = []
    for p in ordered:
        if p.path not in values:
            continue
        value = values[p.path]
        if p.is_type_switch:
            block = p.path[: -len(".type")]
            current = _current(base_tree, block)
            if isinstance(current, dict) and current.get("type") == value:
                continue  # the recipe's own block, parameters included
            out.append(f"{block}={json.dumps(None if value is None else {'type': value})}")
        else:
            out.append(f"{p.path}={json.dumps(value)}")
    return out


def check_space(params: list[Param], space_file: str, check_recipe: Any, base_tree: dict) -> None:
    """Every bound of every parameter checked as a recipe (``check_recipe(overrides)`` returns
    the recipe's problems); all problems in one error naming the space file and key."""
    problems = []
    for p in params:
        for probe in p.probes():
            found = check_recipe(overrides_for([p], {p.path: probe}, base_tree))
            problems += [f"{p.path} = {json.dumps(probe)}: {_plain(problem)}" for problem in found]
            if found:
                break  # one failing value says what is wrong with the key
    if problems:
        raise TuneError(f"the search space {space_file} does not fit the recipe "
                        f"({len(problems)} problem(s); nothing was trained):\n" +
                        "\n".join(f"  - {x}" for x in problems))


def _plain(problem: str) -> str:
    """A recipe problem without the note that the value came from --set (it came from the space)."""
    return problem.rpartition(" (given by --set ")[0] or problem


def best_tree(extends: str, overrides: list[str], full_tree: dict) -> dict:
    """``best.yaml``: ``extends`` the original recipe plus every overridden value, read from
    ``full_tree`` (the original with the overrides applied). A path through a list (a stage
    index) copies that whole list, since ``extends`` replaces lists."""
    tree: dict = {"extends": extends}
    for item in overrides:
        _copy_path(tree, full_tree, item.split("=", 1)[0].strip())
    return tree


def _copy_path(dst: dict, src: dict, dotted: str) -> None:
    keys = dotted.split(".")
    node_dst, node_src = dst, src
    for i, key in enumerate(keys):
        value = node_src.get(key) if isinstance(node_src, dict) else None
        last = i == len(keys) - 1
        if last or isinstance(value, list) or not isinstance(value, dict):
            node_dst[key] = copy.deepcopy(value)
            return
        existing = node_dst.get(key)
        if not isinstance(existing, dict):
            existing = node_dst[key] = {}
        node_dst, node_src = existing, value


def recipe_reference(source: str, named: dict[str, Path]) -> str:
    """What ``best.yaml`` extends: the recipe file's absolute path (a registered name is
    looked up, so best.yaml works from any folder)."""
    from ..recipe.loading import find_recipe

    return str(find_recipe(source, named))
