"""The recovery components' parameters declare their limits: ``mmtk validate`` accepts a
value at the boundary and refuses the first one past it, naming the dotted path; a limit that
ties two values (an even latent width for affine coupling) is the constructor's, reported by
``mmtk run --dry-run`` naming the component."""
from __future__ import annotations

from pathlib import Path

import pytest

from mmtk.cli import main

RECIPES = Path(__file__).resolve().parents[3] / "recipes"
DICMOR, IMDER = RECIPES / "dicmor.yaml", RECIPES / "imder.yaml"

CASES = [
    (DICMOR, "model.reconstructor.blocks", "1", "0", "must be >= 1"),
    (DICMOR, "model.reconstructor.hidden", "1", "0", "must be >= 1"),
    (DICMOR, "model.reconstructor.refine_hidden", "1", "-2", "must be >= 1"),
    (IMDER, "model.reconstructor.steps", "1", "0", "must be >= 1"),
    (IMDER, "model.reconstructor.train_steps", "null", "0", "must be >= 1"),
    (IMDER, "model.reconstructor.train_steps", "1", "-1", "must be >= 1"),
    (IMDER, "model.reconstructor.sigma", "1.01", "1.0", "must be > 1"),
    (IMDER, "model.reconstructor.sigma", "100", ".inf", "must be a finite number"),
    (IMDER, "model.reconstructor.sample_seed", "0", "-1", "must be >= 0"),
    (IMDER, "model.reconstructor.time_eps", "1e-5", "0", "must be > 0"),
    (IMDER, "model.reconstructor.time_eps", "0.5", "1", "must be < 1"),
    (IMDER, "model.reconstructor.hidden", "1", "0", "must be >= 1"),
    (IMDER, "model.reconstructor.layers", "1", "0", "must be >= 1"),
    (IMDER, "model.reconstructor.refine_hidden", "1", "0", "must be >= 1"),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0].stem}:{c[1]}={c[3]}" for c in CASES])
def test_a_value_past_its_limit_is_refused_and_the_boundary_accepted(check_limit, case):
    check_limit(*case)


@pytest.mark.parametrize("setting, says", [("model.reconstructor.sampler=heun", "model.reconstructor.sampler"),
                                           ("model.reconstructor.target_after=fuser", "target_after")])
def test_a_choice_outside_its_list_is_refused(validate, setting, says):
    code, err = validate(IMDER, setting)
    assert code == 2 and says in err and "Traceback" not in err


def test_an_odd_latent_width_is_refused_by_the_constructor(capsys):
    code = main(["run", str(DICMOR), "--dry-run", "--set", "model.latent_dim=7", "--set", "data.labels=240"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "model.reconstructor" in err and "latent_dim must be even" in err
