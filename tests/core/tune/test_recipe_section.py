"""The recipe's ``tune:`` section: checked like any section, read by mmtk tune, and overridden
by the command line."""
from __future__ import annotations

import pytest

from mmtk.cli import main
from mmtk.recipe import resolve
from mmtk.tune.setup import search_settings

SECTION = """\
extends: tiny.yaml
tune:
  trials: 2
  sampler: random
  prune_after: 1
  space:
    train.optimizer.lr: {float: [1e-4, 1e-2], log: true}
"""


def test_the_section_is_typed_and_checked(system, tiny_recipe, tmp_path, capsys):
    good = tmp_path / "with-tune.yaml"
    good.write_text(SECTION)
    recipe = resolve(good, system)
    assert recipe.tune is not None and recipe.tune.trials == 2 and recipe.tune.sampler == "random"
    assert resolve(tiny_recipe, system).tune is None
    bad = tmp_path / "bad-tune.yaml"
    bad.write_text("extends: tiny.yaml\ntune: {trials: 0, samplr: tpe, space: {}}\n")
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "tune.samplr: unknown key 'samplr' (did you mean 'sampler'?)" in err
    assert "tune.trials: must be >= 1, got 0" in err and "tune.space: must not be empty" in err


def test_the_command_line_wins_over_the_section(system, tmp_path, tiny_recipe):
    (tmp_path / "with-tune.yaml").write_text(SECTION)
    tune = resolve(tmp_path / "with-tune.yaml", system).tune
    assert search_settings({"sampler": None, "pruner": None, "prune_after": None}, tune) == (
        {"type": "random", "seed": 0}, {"type": "median", "startup_trials": 1})
    assert search_settings({"sampler": "tpe", "sampler_seed": 4, "pruner": "none", "prune_after": 3}, tune) == (
        {"type": "tpe", "seed": 4}, {"type": "none", "startup_trials": 3})
    assert search_settings({}, None) == ({"type": "tpe", "seed": 0}, {"type": "median", "startup_trials": 5})


@pytest.mark.slow
def test_tune_reads_space_and_trials_from_the_section(tmp_path, monkeypatch, capsys, tiny_recipe,
                                                       find_db, only_study):
    (tmp_path / "with-tune.yaml").write_text(SECTION)
    monkeypatch.chdir(tmp_path)
    assert main(["tune", "with-tune.yaml"]) == 0
    out = capsys.readouterr().out
    assert "0 of 2 trial(s) done before this command" in out
    study = only_study(f"sqlite:///{find_db(tmp_path)}")
    assert len(study.trials) == 2 and set(study.trials[0].params) == {"train.optimizer.lr"}


def test_a_new_trial_budget_in_the_section_names_the_same_study(system, tmp_path, tiny_recipe):
    from mmtk.tune.setup import build_definition
    from mmtk.tune.study import study_name

    recipe = tmp_path / "with-tune.yaml"
    names = []
    for trials in (2, 7):
        recipe.write_text(SECTION.replace("trials: 2", f"trials: {trials}"))
        definition, base = build_definition(str(recipe), [], None, system, {})
        assert base.tune.trials == trials and "tune" not in definition["tree"]
        names.append(study_name(definition))
    assert names[0] == names[1]
