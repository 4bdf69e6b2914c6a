"""The real-data recipes validate and run on fixtures; recipe paths resolve relative to the recipe."""
from __future__ import annotations

import pytest

from conftest import RECIPES
from mmtk.errors import MmtkError
from mmtk.recipe import check, resolve
from mmtk.run import Run


def _has(system, kind, name):
    return name in system.registry.names(kind)


@pytest.mark.slow
def test_handwritten_recipe_trains_on_fixture_files(system, prepare_tree, fx, tmp_path):
    fx.mfeat(tmp_path / "mfeat", per_class=10)
    for rate in (0.0, 0.5):
        tree = prepare_tree(RECIPES / "handwritten.yaml",
                            [f"data.data_dir={tmp_path / 'mfeat'}", f"data.missing_rate={rate}",
                             "train.epochs=2"])
        results = Run.create(tree, system).execute()
        war = results["summary"]["test"]["mean"]["war"]["mean"]
        assert 0.0 <= war <= 1.0


@pytest.mark.slow
def test_relative_root_is_relative_to_the_recipe_file(system, fx, tmp_path, monkeypatch):
    fx.arrays(tmp_path / "project" / "features", n=40)
    recipe = tmp_path / "project" / "recipes" / "mine.yaml"
    recipe.parent.mkdir(parents=True)
    recipe.write_text(
        "mmtk: 1\nname: mine\ndata: {type: arrays, root: ../features}\n"
        "model:\n  encoders: {audio: {type: mlp}, text: {type: mlp}, visual: {type: mlp}}\n"
        "  fuser: {type: concat}\n  head: {type: mlp}\n"
        "train: {epochs: 1, batch_size: 16}\n")
    monkeypatch.chdir(tmp_path)            # the working directory must not matter
    out = [f"output.dir={tmp_path / 'runs'}"]
    assert check(recipe, system, out).problems == []
    results = Run.create(resolve(recipe, system, out), system).execute()
    assert "test" in results["summary"]
    problems = check(recipe, system, out + ["data.root=../elsewhere"]).problems
    assert any(str(tmp_path / "project" / "elsewhere") in p.message for p in problems)


@pytest.mark.parametrize("recipe,method", [("cmarr-iemocap", "cmarr"), ("mmin-iemocap", "mmin")])
def test_iemocap_recipes_validate_on_the_mmin_layout(system, prepare_tree, fx, tmp_path, recipe, method):
    if not (RECIPES / f"{method}.yaml").is_file():
        pytest.skip(f"recipes/{method}.yaml is not there yet")
    fx.mmin(tmp_path / "iemocap", folds=2)
    tree = prepare_tree(RECIPES / f"{recipe}.yaml", [f"data.root={tmp_path / 'iemocap'}"])
    assert tree.data.dataset.type == "mmin_layout"
    from mmtk.builder import Builder
    ds = Builder(system.registry).dataset(tree.data.dataset)
    assert ds.folds() == [1, 2]
    assert ds.load(2).modalities == ("audio", "text", "visual")


def test_cmarr_handwritten_validates(system, prepare_tree, fx, tmp_path):
    if not _has(system, "aligner", "gaussian_w2"):
        pytest.skip("the cmarr plugin is not registered")
    fx.mfeat(tmp_path / "mfeat")
    tree = prepare_tree(RECIPES / "cmarr-handwritten.yaml", [f"data.data_dir={tmp_path / 'mfeat'}"])
    assert tree.data.dataset.type == "handwritten"


def test_unset_data_location_is_a_clear_problem(system, monkeypatch, tmp_path):
    monkeypatch.delenv("MMTK_DATA", raising=False)
    tree = {"mmtk": 1, "data": {"type": "arrays"},
            "model": {"encoders": {"a": {"type": "mlp"}}, "fuser": {"type": "concat"},
                      "head": {"type": "mlp"}}}
    problems = check(tree, system, base_dir=tmp_path).problems
    assert any("MMTK_DATA" in p.message and p.path == "data" for p in problems)
    tree["data"]["root"] = "${env:MMTK_DATA}"             # left as is when the variable is unset
    problems = check(tree, system, base_dir=tmp_path).problems
    assert any("not set" in p.message and p.path == "data" for p in problems)
    with pytest.raises(MmtkError):
        from mmtk.builder import Builder
        Builder(system.registry, tmp_path).dataset(tree["data"])


@pytest.mark.parametrize("name", ["mmin_layout", "mmsa", "arrays", "handwritten"])
def test_parameters_are_settable_from_a_recipe(system, name):
    """No option may shadow a toolkit-supplied context name (those are never read from recipes)."""
    from mmtk.schema import CONTEXT_NAMES, signature_params
    spec = system.registry.get("dataset", name)
    clashes = {p.name for p in signature_params(spec.obj)} & (CONTEXT_NAMES - {"seed"})
    assert not clashes, f"dataset {name} has parameters {clashes} that recipes cannot set"
