"""No recipe, however malformed, ends in anything but a clear error: random mutations of the
shipped recipes (any node replaced by a value of another shape) are checked and, when they
pass, resolved; the only exception allowed is an MmtkError."""
from __future__ import annotations

import copy
import random

import pytest

from mmtk.errors import MmtkError
from mmtk.recipe import check, read_recipe_tree, resolve

VALUES = [None, 0, -1, 1.5, float("nan"), "x", "", [], [1], ["a", "b"], {}, {"type": "mlp"},
          {"a": 1}, True, 2**70, [{}]]


def _paths(node, prefix=()):
    yield prefix
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for k, v in items:
        yield from _paths(v, prefix + (k,))


@pytest.mark.parametrize("name", ["baseline", "cmarr", "mmin"])
def test_mutated_recipes_never_crash_the_checker(system, tmp_path, name):
    named = {n: e.path for n, e in system.recipes.items()}
    base = read_recipe_tree(named[name], named)
    places = [p for p in _paths(base) if p]
    rng = random.Random(name)
    for _ in range(60):
        tree = copy.deepcopy(base)
        path = rng.choice(places)
        node = tree
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = copy.deepcopy(rng.choice(VALUES))
        try:
            if not check(tree, system, base_dir=tmp_path).problems:
                resolve(tree, system, base_dir=tmp_path)
        except MmtkError:
            pass
