"""Every recipe the benchmarks ship (benchmarks/recipes/**) validates, as the registered ones do."""
from __future__ import annotations

from pathlib import Path

import pytest

from mmtk.recipe import check

FILES = sorted((Path(__file__).resolve().parents[2] / "benchmarks" / "recipes").rglob("*.yaml"))


def test_there_are_benchmark_recipes():
    assert len(FILES) >= 9


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_benchmark_recipe_validates(system, path):
    report = check(path, system, [])
    assert report.problems == [], [str(p) for p in report.problems]
