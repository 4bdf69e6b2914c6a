"""The search-space parser, its probes, and the values as recipe overrides / best.yaml."""
from __future__ import annotations

import optuna
import pytest

from mmtk.recipe import apply_overrides, check
from mmtk.tune.engine import TuneError
from mmtk.tune.recipe_values import best_tree, check_space, overrides_for
from mmtk.tune.space import Param, load_space, parse_space, suggest


def test_parses_every_kind():
    params = parse_space({
        "train.optimizer.lr": {"float": [1e-4, 1e-2], "log": True},
        "model.fuser.heads": {"int": [2, 8], "step": 2},
        "model.refiner.type": {"categorical": [None, "supcon"]},
    }, "space.yaml")
    by_path = {p.path: p for p in params}
    assert by_path["train.optimizer.lr"] == Param("train.optimizer.lr", "float", 1e-4, 1e-2, log=True)
    assert by_path["model.fuser.heads"].step == 2 and by_path["model.fuser.heads"].kind == "int"
    assert by_path["model.refiner.type"].choices == (None, "supcon")
    assert by_path["model.refiner.type"].is_type_switch


@pytest.mark.parametrize("spec, words", [
    ({"float": [1, 0]}, "inverted range [1, 0]"),
    ({"float": [0.5, 0.5]}, "empty or inverted range"),
    ({"int": [1.5, 3]}, "two whole numbers"),
    ({"float": [0, 1], "log": True}, "log: true needs low > 0, got 0"),
    ({"float": [1e-3, 1], "log": True, "step": 0.1}, "cannot be combined with a step"),
    ({"int": [1, 3], "step": 5}, "wider than the range"),
    ({"categorical": []}, "non-empty list"),
    ({"categorical": [[8], [16]]}, "plain values"),
    ({"categorical": ["a", "a"]}, "repeat a value"),
    ({"float": [0, 1], "lg": True}, "unknown option 'lg' for a float parameter (did you mean 'log'?)"),
    ({"float": [0, 1], "int": [0, 1]}, "exactly one of float, int, categorical"),
    ([0, 1], "expected a mapping"),
])
def test_bad_entries_name_the_file_and_key(spec, words):
    with pytest.raises(TuneError) as err:
        parse_space({"train.x": spec}, "my-space.yaml")
    text = str(err.value)
    assert "my-space.yaml" in text and "train.x:" in text and words in text


def test_all_problems_at_once_and_empty_file(tmp_path):
    with pytest.raises(TuneError, match=r"2 problem\(s\)"):
        parse_space({"a": {"float": [1, 0]}, "b": {"int": [0.5, 1]}}, "s.yaml")
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(TuneError, match="non-empty mapping"):
        load_space(empty)
    with pytest.raises(TuneError, match="not found"):
        load_space(tmp_path / "absent.yaml")


def test_probes_cover_the_range_ends_and_a_value_off_the_integer_grid():
    lr = Param("lr", "float", 1e-4, 1e-2, log=True)
    assert lr.probes()[:2] == [1e-4, 1e-2]
    assert lr.probes()[2] != int(lr.probes()[2])          # catches an int parameter
    assert Param("h", "int", 32, 250, step=32).probes() == [32, 224]   # Optuna's top of the grid
    assert Param("t", "categorical", choices=(None, "a")).probes() == [None, "a"]


def test_suggest_draws_inside_the_declared_distribution():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    params = parse_space({"a": {"float": [1e-4, 1e-2], "log": True}, "b": {"int": [32, 256], "step": 32},
                          "c": {"categorical": ["x", None]}}, "s")
    for _ in range(20):
        trial = study.ask()
        values = {p.path: suggest(trial, p) for p in params}
        assert 1e-4 <= values["a"] <= 1e-2
        assert values["b"] in range(32, 257, 32)
        assert values["c"] in ("x", None)
        study.tell(trial, 0.0)
    assert isinstance(study.trials[0].distributions["a"], optuna.distributions.FloatDistribution)
    assert study.trials[0].distributions["a"].log


def test_overrides_switch_component_types_and_keep_the_recipe_block_of_the_same_type():
    base = {"model": {"refiner": {"type": "supcon", "temperature": 0.1}}}
    params = [Param("model.refiner.type", "categorical", choices=(None, "supcon", "other")),
              Param("model.refiner.temperature", "float", 0.01, 1.0)]
    assert overrides_for(params, {"model.refiner.type": "supcon", "model.refiner.temperature": 0.5}, base) \
        == ["model.refiner.temperature=0.5"]
    assert overrides_for(params, {"model.refiner.type": None}, base) == ["model.refiner=null"]
    switched = overrides_for(params, {"model.refiner.type": "other", "model.refiner.temperature": 0.2}, base)
    assert switched == ['model.refiner={"type": "other"}', "model.refiner.temperature=0.2"]
    tree = apply_overrides(base, switched)
    assert tree["model"]["refiner"] == {"type": "other", "temperature": 0.2}


def test_check_space_against_a_real_recipe(system, tiny_recipe):
    def problems(extra):
        return [str(p) for p in check(tiny_recipe, system, extra).problems]

    good = parse_space({"train.optimizer.lr": {"float": [1e-4, 1e-2]}, "model.latent_dim": {"int": [8, 32]}}, "s")
    check_space(good, "s.yaml", problems, {})
    bad = parse_space({"train.optimizer.lrr": {"float": [1e-4, 1e-2]},      # unknown path
                       "model.latent_dim": {"float": [8, 32]},               # float for an int
                       "train.epochs": {"int": [0, 3]}}, "s")                # out of range
    with pytest.raises(TuneError) as err:
        check_space(bad, "s.yaml", problems, {})
    text = str(err.value)
    assert "s.yaml does not fit the recipe (3 problem(s); nothing was trained)" in text
    assert "train.optimizer.lrr = 0.0001: train.optimizer.lrr: unknown parameter 'lrr' (did you mean 'lr'?)" in text
    assert "model.latent_dim = 8.0" in text and "expected int" in text
    assert "train.epochs = 0: train.epochs: must be >= 1, got 0" in text
    assert "given by --set" not in text


def test_best_tree_extends_and_copies_lists_whole():
    full = {"train": {"optimizer": {"type": "adam", "lr": 0.003}},
            "stages": [{"name": "a", "train": {"epochs": 3}}, {"name": "b", "train": {"epochs": 7}}]}
    tree = best_tree("/r/base.yaml", ["train.optimizer.lr=0.003", "stages.1.train.epochs=7"], full)
    assert tree == {"extends": "/r/base.yaml", "train": {"optimizer": {"lr": 0.003}},
                    "stages": full["stages"]}
