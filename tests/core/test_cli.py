"""The command line end to end (in-process)."""
from __future__ import annotations

import json

import pytest

from conftest import RECIPES, control_data
from mmtk.cli import main


def test_list_components_plugins_recipes(capsys):
    assert main(["list", "components", "--kind", "encoder"]) == 0
    out = capsys.readouterr().out
    assert "lstm" in out and "textcnn" in out and "basic" in out and "fuser" not in out
    assert main(["list", "components", "*conditions*", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["six_conditions"]
    assert main(["list", "plugins"]) == 0
    assert "basic" in capsys.readouterr().out
    assert main(["list", "recipes"]) == 0
    assert "baseline" in capsys.readouterr().out


def test_show_component(capsys):
    assert main(["show", "component", "encoder/lstm"]) == 0
    out = capsys.readouterr().out
    assert "bidirectional: bool  (default False)" in out
    assert "in_dim: int  (supplied by mmtk)" in out and "provider: basic" in out
    assert main(["show", "component", "encoder/lstmm"]) == 2
    assert "did you mean 'lstm'" in capsys.readouterr().err


@pytest.mark.slow
def test_run_dry_run_then_run_and_eval(tmp_path, capsys):
    base = ["--set", "train.epochs=1", "--set", control_data(200), "--set", "data.n_test=500",
            "--set", f"output.dir={tmp_path}"]
    assert main(["run", str(RECIPES / "baseline.yaml"), "--dry-run", *base]) == 0
    assert "parameters" in capsys.readouterr().out
    assert not any(tmp_path.iterdir())                      # a dry run writes nothing
    assert main(["run", "baseline", "--seeds", "0", "1", "--quiet", *base]) == 0
    out = capsys.readouterr().out
    assert "UAR" in out and "mean" in out and "± " in out
    run_dir = next(tmp_path.glob("baseline/*"))
    assert main(["eval", str(run_dir), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert set(res["trials"]) == {"seed0", "seed1"}


def test_resume_refuses_overrides(tmp_path, capsys):
    assert main(["run", "--resume", str(tmp_path), "--set", "train.epochs=2"]) == 2
    assert "cannot change" in capsys.readouterr().err
    assert main(["run", "--resume", str(tmp_path)]) == 2
    assert "not an mmtk run directory" in capsys.readouterr().err


# -- what a person sees first (issue #18) ----------------------------------------------------
def test_bare_mmtk_prints_help_and_version_exists(capsys):
    from mmtk import __version__

    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: mmtk") and "runs" in out and "compare" in out
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"mmtk {__version__}"


def test_show_component_prints_readable_types(capsys):
    assert main(["show", "component", "fuser/concat"]) == 0
    assert "modalities: tuple[str, ...]  (supplied by mmtk)" in capsys.readouterr().out
    assert main(["show", "component", "encoder/lstm"]) == 0
    assert "layers: int >= 1  (default 1)" in capsys.readouterr().out
    assert main(["show", "component", "reconstructor/flow", "--json"]) == 0
    types = {p["name"]: p["type"] for p in json.loads(capsys.readouterr().out)["parameters"]}
    assert types["scale_map"] == "Literal['sigmoid', 'exp']" and types["blocks"] == "int >= 1"


def test_readable_types_of_annotations():
    from typing import Annotated, Literal

    from mmtk.constraints import FINITE, Ge, Gt, Lt, NonEmpty
    from mmtk.docs import readable_type

    assert readable_type(tuple[str, ...]) == "tuple[str, ...]"
    assert readable_type(dict[str, int]) == "dict[str, int]"
    assert readable_type(Literal["mean", "max"]) == "Literal['mean', 'max']"
    assert readable_type(Annotated[int, Ge(1)]) == "int >= 1"
    assert readable_type(Annotated[float, Ge(0), Lt(1)]) == "0 <= float < 1"
    assert readable_type(Annotated[float, Gt(0), FINITE]) == "float > 0 (finite)"
    assert readable_type(list[Annotated[int, Ge(1)]] | None) == "list[int >= 1] | None"
    assert readable_type(Annotated[list[str], NonEmpty()]) == "list[str] (non-empty)"


def test_list_filters_by_pattern_and_says_when_nothing_matches(capsys):
    assert main(["list", "recipes", "cmarr*"]) == 0
    out = capsys.readouterr().out
    names = [line.split()[0] for line in out.splitlines()[2:]]
    assert names and all(n.startswith("cmarr") for n in names) and "cmarr_no_flow" in names
    assert main(["list", "recipes", "impute"]) == 0      # a substring works too
    assert "mean-impute" in capsys.readouterr().out
    assert main(["list", "plugins", "bas*"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()[2:]]
    assert listed == ["baselines", "basic"]
    for what in ("recipes", "plugins", "components"):
        assert main(["list", what, "no-such-thing"]) == 1
        assert capsys.readouterr().err.strip() == f"no {what} matching 'no-such-thing'"


def test_list_recipes_shows_each_recipes_one_line_description(capsys, tmp_path):
    from mmtk.recipe.loading import recipe_description

    assert main(["list", "recipes", "baseline", "--json"]) == 0
    rows = {r["name"]: r["description"] for r in json.loads(capsys.readouterr().out)}
    assert rows["baseline"] == ("Zero-filled baseline on the default latent_views benchmark: missing modalities "
                                "are simply zeros")
    keyed = tmp_path / "keyed.yaml"
    keyed.write_text("# a comment that is not the description\ndescription: |\n  Mine, in one line.\n  More.\n")
    assert recipe_description(keyed) == "Mine, in one line."
    long = tmp_path / "long.yaml"
    long.write_text("# " + "word " * 40 + "\nname: x\n")
    text = recipe_description(long)
    assert len(text) <= 102 and text.endswith(" …") and "\n" not in text


def test_set_mistakes_are_reported_as_coming_from_set(capsys):
    from conftest import fails_with

    err = fails_with(capsys, ["validate", str(RECIPES / "baseline.yaml"), "--set", "train.epochs=0"],
                     "train.epochs: must be >= 1, got 0 (given by --set train.epochs=0, not by the recipe file)")
    assert err.startswith("error: 1 problem(s) in the command-line overrides of ")
    fails_with(capsys, ["validate", str(RECIPES / "baseline.yaml"), "--set", "trian.epochs=3"],
               "unknown key 'trian'", "(given by --set trian.epochs=3, not by the recipe file)")
    fails_with(capsys, ["validate", str(RECIPES / "baseline.yaml"), "--set", "train.epochs=["],
               "problem(s) in --set train.epochs=[:", "invalid YAML")


def test_a_problem_of_the_recipe_file_is_not_blamed_on_set(capsys, tmp_path):
    from conftest import fails_with

    bad = tmp_path / "bad.yaml"
    bad.write_text(f"extends: {RECIPES / 'baseline.yaml'}\ntrain: {{epochs: 0}}\n")
    err = fails_with(capsys, ["validate", str(bad), "--set", "train.batch_size=8"], "train.epochs: must be >= 1")
    assert f"problem(s) in {bad}:" in err and "given by" not in err


def test_folds_on_a_dataset_without_folds_is_an_error_naming_it(capsys, tmp_path):
    from conftest import fails_with

    err = fails_with(capsys, ["run", str(RECIPES / "baseline.yaml"), "--folds", "7", "--set",
                              f"output.dir={tmp_path}"],
                     "dataset 'latent_views' has no folds (one fixed split)", "(given by --folds 7")
    assert "fold7" not in err
    assert not (tmp_path / "baseline").exists()     # nothing ran, nothing was labelled fold7-seed0


def test_a_broken_plugin_filtered_out_of_list_plugins_is_still_mentioned(capsys, tmp_path):
    from mmtk.plugins import reset_plugin_system

    (tmp_path / "broken.py").write_text("raise RuntimeError('boom')\n")
    reset_plugin_system()
    try:
        assert main(["--plugins-dir", str(tmp_path), "list", "plugins", "basic"]) == 0
        err = capsys.readouterr().err
        assert err.count("plugin 'local:broken' failed to load") == 1
        assert main(["--plugins-dir", str(tmp_path)]) == 0       # bare mmtk too
        assert capsys.readouterr().err.count("local:broken") == 1
    finally:
        reset_plugin_system()
