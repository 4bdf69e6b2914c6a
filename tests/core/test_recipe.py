"""Recipes: YAML 1.2 scalars, extends, overrides, and one clear error per kind of mistake."""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import RECIPES
from mmtk.cli import main
from mmtk.errors import RecipeError
from mmtk.recipe import apply_overrides, deep_merge, parse_yaml, read_recipe_tree, resolve

BAD = Path(__file__).parent / "recipes"


def test_yaml_12_numbers_and_booleans():
    doc = parse_yaml("lr: 1e-4\nb: 3.0e+2\nn: 10\non: on\nyes: no\nt: true\ninf: .inf")
    assert doc["lr"] == pytest.approx(1e-4) and isinstance(doc["lr"], float)
    assert doc["b"] == 300.0 and isinstance(doc["n"], int)
    assert doc["on"] == "on" and doc["yes"] == "no" and doc["t"] is True
    assert doc["inf"] == float("inf")


def test_invalid_yaml_names_line(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text("name: x\nmodel: [unclosed\n")
    with pytest.raises(RecipeError, match="invalid YAML at line"):
        read_recipe_tree(p)


def test_extends_deep_merges_and_set_overrides():
    tree = read_recipe_tree(BAD / "wrong_type.yaml")
    assert tree["train"]["epochs"] == "three"
    assert tree["train"]["optimizer"]["type"] == "adam"        # inherited sibling key kept
    tree = apply_overrides(tree, ["train.epochs=5", "train.optimizer.lr=2e-4", "seed=[1, 2]"])
    assert tree["train"]["epochs"] == 5 and tree["train"]["optimizer"]["lr"] == 2e-4
    assert tree["seed"] == [1, 2]
    assert deep_merge({"a": {"b": 1, "c": 2}}, {"a": {"c": None}}) == {"a": {"b": 1, "c": None}}


def test_yaml_key_order_changes_nothing(system, tmp_path):
    a = tmp_path / "a.yaml"
    b = tmp_path / "b.yaml"
    a.write_text((RECIPES / "baseline.yaml").read_text())
    text = (RECIPES / "baseline.yaml").read_text()
    b.write_text(text.replace("    audio: {type: mlp}\n    text: {type: mlp}\n    visual: {type: mlp}\n",
                              "    visual: {type: mlp}\n    text: {type: mlp}\n    audio: {type: mlp}\n"))
    from mmtk.builder import Builder
    ta, tb = resolve(a, system), resolve(b, system)
    ma = Builder(system.registry).model(ta.last_stage.model, {"audio": 3, "text": 4, "visual": 5}, 4)
    mb = Builder(system.registry).model(tb.last_stage.model, {"visual": 5, "text": 4, "audio": 3}, 4)
    assert list(ma.state_dict()) == list(mb.state_dict())


@pytest.mark.parametrize("name, path, words", [
    ("unknown_key", "trian", ["unknown key 'trian'", "did you mean 'train'", "accepted:"]),
    ("unknown_component", "model.encoders.audio.type", ["unknown encoder 'lstn'", "did you mean 'lstm'", "accepted:"]),
    ("wrong_type", "train.epochs", ["expected int", "'three'"]),
    ("missing_required", "missing.eval.condition", ["missing required parameter 'condition'"]),
    ("unemitted_weight", "losses.weights.aligner/w2", ["no slot emits a loss named 'aligner/w2'"]),
    ("missing_encoder", "model.encoders", ["modality 'visual' but no encoder"]),
])
def test_each_error_kind_names_its_path(system, name, path, words):
    with pytest.raises(RecipeError) as info:
        resolve(BAD / f"{name}.yaml", system)
    text = str(info.value)
    assert any(p.path.startswith(path) for p in info.value.problems), text
    for w in words:
        assert w in text, f"{w!r} not in:\n{text}"


def test_validate_reports_all_problems_at_once(system, capsys):
    code = main(["validate", str(BAD / "many_problems.yaml")])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    for fragment in ["data.type", "unknown dataset 'synthetc'", "did you mean 'synthetic'",
                     "model.encoders.audio.hiden", "did you mean 'hidden'", "model.head.dropout",
                     "train.optimizer.lr", "train.epoch", "did you mean 'epochs'"]:
        assert fragment in err, f"{fragment!r} missing from:\n{err}"


def test_validate_ok_and_json(capsys):
    assert main(["validate", str(RECIPES / "baseline.yaml")]) == 0
    assert "OK" in capsys.readouterr().out
    assert main(["validate", str(BAD / "wrong_type.yaml"), "--json"]) == 2
    import json
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is False and out["problems"][0]["path"] == "train.epochs"


def test_traceback_only_when_asked(capsys):
    assert main(["--traceback", "validate", str(BAD / "wrong_type.yaml")]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_missing_recipe_file_says_where_it_looked(capsys):
    assert main(["run", "no/such/recipe.yaml"]) == 2
    err = capsys.readouterr().err
    assert "no/such/recipe.yaml" in err and "looked for" in err


def test_env_interpolation(system, tmp_path, monkeypatch):
    p = tmp_path / "r.yaml"
    p.write_text(f"extends: {RECIPES / 'baseline.yaml'}\nname: ${{env:MMTK_TEST_NAME}}\n")
    with pytest.raises(RecipeError, match="MMTK_TEST_NAME is not set"):
        resolve(p, system)
    monkeypatch.setenv("MMTK_TEST_NAME", "from-env")
    assert resolve(p, system).name == "from-env"


def test_type_change_replaces_the_block_and_set_indexes_lists():
    merged = deep_merge({"data": {"type": "synthetic", "frames": {"audio": 8}}},
                        {"data": {"type": "arrays", "root": "x"}})
    assert merged == {"data": {"type": "arrays", "root": "x"}}
    same = deep_merge({"head": {"type": "mlp", "hidden": [8]}}, {"head": {"dropout": 0.5}})
    assert same == {"head": {"type": "mlp", "hidden": [8], "dropout": 0.5}}
    tree = apply_overrides({"stages": [{"name": "a"}, {"name": "b", "train": {"epochs": 3}}]},
                           ["stages.1.train.epochs=1"])
    assert tree["stages"][1]["train"]["epochs"] == 1
    with pytest.raises(RecipeError, match="not an index"):
        apply_overrides({"stages": [{}]}, ["stages.4.name=x"])
