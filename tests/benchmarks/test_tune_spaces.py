"""Every search space the benchmarks ship (benchmarks/tune/*.yaml) fits the recipe it was written
for: each key is checked against that recipe at both ends of its range, or at every choice, as
`mmtk tune` does before anything trains."""
from __future__ import annotations

from pathlib import Path

import pytest

from mmtk.tune.setup import build_definition

ROOT = Path(__file__).resolve().parents[2]
SPACES = sorted((ROOT / "benchmarks" / "tune").glob("*.yaml"))

# the recipe each space is searched on (README and the tuned recipes' headers say so)
RECIPE_OF = {
    "ae-impute-space": "ae-impute",
    "baseline-space": "modality-dropout",
    "cra-impute-space": "cra-impute",
    "dicmor-space": "dicmor",
    "dropout-schedule-space": "modality-dropout",
    "dropout-steps-space": "modality-dropout",
    "handwritten-space": "handwritten",
    "if-mmin-utterance-space": "if-mmin-utterance",
    "if-mmin-utterance-steps-space": "if-mmin-utterance",
    "imder-space": "imder",
    "late-fusion-handwritten-space": "late-fusion-handwritten",
    "late-fusion-steps-space": str(ROOT / "benchmarks" / "recipes" / "headroom" / "late-fusion.yaml"),
    "mmin-utterance-space": "mmin-utterance",
    "mmin-utterance-steps-space": "mmin-utterance",
    "momke-space": "momke",
}


def recipe_of(space: Path) -> str:
    return "cmarr" if space.stem.startswith("cmarr") else RECIPE_OF[space.stem]


def test_every_shipped_space_has_its_recipe():
    assert SPACES and all(s.stem.startswith("cmarr") or s.stem in RECIPE_OF for s in SPACES)


@pytest.mark.parametrize("space", SPACES, ids=lambda p: p.stem)
def test_shipped_space_fits_its_recipe(system, space):
    definition, _ = build_definition(recipe_of(space), [], str(space), system, {})
    assert definition["space"]
