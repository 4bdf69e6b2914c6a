"""Every recipe mistake is found by `mmtk validate` (or `run --dry-run` for what only building
can find), reported naming its place, exit status 2, never a traceback; a recipe is data."""
from __future__ import annotations

import json

import pytest

from conftest import RECIPES, fails_with
from mmtk.cli import main

BASE = RECIPES / "baseline.yaml"
MMIN = RECIPES / "mmin.yaml"




@pytest.mark.parametrize("setting, path, words", [
    ("train.batch_size=0", "train.batch_size", "must be >= 1"),
    ("eval.batch_size=-1", "eval.batch_size", "must be >= 1"),
    ("train.epochs=0", "train.epochs", "must be >= 1"),
    ("train.patience=0", "train.patience", "must be >= 1"),
    ("model.latent_dim=0", "model.latent_dim", "must be >= 1"),
    ("data.val_fraction=0", "data.val_fraction", "must be > 0"),
    ("data.val_fraction=1.5", "data.val_fraction", "must be < 1"),
    ("train.grad_clip=-1", "train.grad_clip", "must be > 0"),
    ("losses.weights={x: .nan}", "losses.weights", "must be a finite number"),
    ("seed=[]", "seed", "must not be empty"),
    ("seed=18446744073709551616", "seed", "must be < 18446744073709551616"),
    ("seed=[-1]", "seed", "must be >= 0"),
    ("train.device=gpu", "train.device", "a device: auto, cpu"),
    ("name=../outside", "name", "no '/'"),
    ("name=a/b", "name", "no '/'"),
    ("data.folds=[1]", "data.folds", "has no folds"),
    ("eval.metrics=[]", "eval.metrics", "must not be empty"),
    ("stages={a: 1}", "stages", "expected a non-empty list of stage blocks"),
    ("stages=[a, b]", "stages[0]", "expected a stage block"),
])
def test_values_are_checked_against_their_meaning(capsys, setting, path, words):
    fails_with(capsys, ["validate", str(BASE), "--set", setting], f"{path}:", words)


def test_folds_option_on_a_dataset_without_folds(capsys):
    fails_with(capsys, ["run", str(BASE), "--folds", "1", "--dry-run"], "data.folds", "has no folds")


def test_output_dir_that_is_a_file(capsys, tmp_path):
    f = tmp_path / "a-file"
    f.write_text("x")
    fails_with(capsys, ["validate", str(BASE), "--set", f"output.dir={f}"], "output.dir", "is a file")


def test_duplicate_keys_name_both_lines(capsys, tmp_path):
    top = tmp_path / "top.yaml"
    top.write_text(f"extends: {BASE}\nname: a\nname: b\n")
    fails_with(capsys, ["validate", str(top)], "duplicate key 'name'", "first on line 2, again on line 3")
    nested = tmp_path / "nested.yaml"
    nested.write_text(f"extends: {BASE}\ntrain:\n  epochs: 3\n  batch_size: 8\n  epochs: 4\n")
    fails_with(capsys, ["validate", str(nested)], "duplicate key 'epochs'", "first on line 3, again on line 5")


def test_shapes_of_the_recipe_itself(capsys, tmp_path):
    ext = tmp_path / "ext.yaml"
    ext.write_text(f"extends: [{BASE}]\n")
    fails_with(capsys, ["validate", str(ext)], "extends", "expected one recipe file or name")
    mmin = tmp_path / "map.yaml"
    mmin.write_text(f"extends: {MMIN}\nstages:\n  - name: pretrain\n"
                    "  - name: mmin\n    init_from: {stage: pretrain, map: 'encoders.'}\n")
    fails_with(capsys, ["validate", str(mmin)], "stages[1].init_from.map", "got str 'encoders.'")
    dup = tmp_path / "dup-stage.yaml"
    dup.write_text(f"extends: {MMIN}\nstages:\n  - name: pretrain\n  - name: pretrain\n")
    fails_with(capsys, ["validate", str(dup)], "stages[1].name", "used twice")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\x89PNG\r\n\x00\x00")
    fails_with(capsys, ["validate", str(binary)], "binary file")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: café\n".encode("latin-1"))
    fails_with(capsys, ["validate", str(latin)], "not UTF-8")
    fails_with(capsys, ["validate", str(tmp_path)], "is a directory")
    bom = tmp_path / "bom.yaml"
    bom.write_bytes(b"\xef\xbb\xbf" + f"extends: {BASE}\n".encode())
    assert main(["validate", str(bom)]) == 0


def test_extends_is_relative_to_the_recipe_never_the_working_directory(capsys, tmp_path, monkeypatch):
    (tmp_path / "project" / "recipes").mkdir(parents=True)
    (tmp_path / "project" / "parent.yaml").write_text(BASE.read_text())
    child = tmp_path / "project" / "recipes" / "child.yaml"
    child.write_text("extends: ../parent.yaml\nname: child\n")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "parent.yaml").write_text("name: [not, a, recipe]\n")  # a decoy in the cwd
    (tmp_path / "decoy.yaml").write_text(BASE.read_text())
    assert main(["validate", str(child)]) == 0, capsys.readouterr().err
    orphan = tmp_path / "project" / "recipes" / "orphan.yaml"
    orphan.write_text("extends: decoy.yaml\n")   # exists in the cwd only
    fails_with(capsys, ["validate", str(orphan)], "extends 'decoy.yaml' not found",
           "relative to the recipe that names it")


@pytest.mark.parametrize("setting, words", [
    ("model.encoders.audio.hidden=100000000000", ["model.encoders.audio (encoder 'mlp', plugin 'basic')",
                                                  "could not be built"]),
    ("train.device=cuda", ["device 'cuda'", "CUDA is not available"]),
])
def test_dry_run_finds_what_only_building_can(capsys, setting, words):
    fails_with(capsys, ["run", str(BASE), "--dry-run", "--set", setting], *words)


def test_dry_run_names_stage_parts(capsys):
    # a dry run builds the data: a few samples, not mmin's 13,000 (the checks are of the stages)
    small = ["--set", "data.n_samples=200", "--set", "data.n_test=100"]
    fails_with(capsys, ["run", str(MMIN), "--dry-run", *small, "--set", "stages.1.freeze=[nothing]"],
           "stages[1].freeze (stage 'mmin')", "cannot freeze 'nothing'")
    fails_with(capsys, ["run", str(MMIN), "--dry-run", *small, "--set", 'stages.1.init_from.map={"nomatch.": "x."}'],
           "stages[1].init_from (stage 'mmin')", "no parameter of that stage matches")


def test_a_constructor_that_raises_is_named(capsys, tmp_path):
    plugin = tmp_path / "picky.py"
    plugin.write_text(
        "import mmtk, torch\n"
        "class Picky(torch.nn.Module):\n"
        "    def __init__(self, in_dim: int, latent_dim: int):\n"
        "        super().__init__()\n"
        "        raise ValueError('I refuse every input')\n"
        "@mmtk.hookimpl\n"
        "def mmtk_register_components(register):\n"
        "    register('encoder', 'picky', Picky)\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"extends: {BASE}\nimports: [picky.py]\nmodel:\n  encoders:\n    text: {{type: picky}}\n")
    fails_with(capsys, ["run", str(recipe), "--dry-run", "--allow-imports"],
           "model.encoders.text (encoder 'picky', plugin 'local:picky')", "ValueError: I refuse every input")


def test_a_failed_run_leaves_no_empty_run_folder(capsys, tmp_path):
    out = tmp_path / "runs"
    fails_with(capsys, ["run", str(BASE), "--set", "train.device=cuda", "--set", f"output.dir={out}"],
           "CUDA is not available")
    assert not list(out.glob("*/*")), "an empty run folder was left behind"


def _importing_recipe(tmp_path):
    marker = tmp_path / "MARKER"
    plugin = tmp_path / "evil.py"
    plugin.write_text(
        "import mmtk, pathlib, torch\n"
        f"pathlib.Path({str(marker)!r}).write_text('ran')\n"
        "class Linear(torch.nn.Module):\n"
        "    def __init__(self, in_dim: int, latent_dim: int):\n"
        "        super().__init__()\n"
        "        self.net = torch.nn.Linear(in_dim, latent_dim)\n"
        "    def forward(self, x, lengths=None):\n"
        "        return self.net(x)\n"
        "@mmtk.hookimpl\n"
        "def mmtk_register_components(register):\n"
        "    register('encoder', 'evil_mlp', Linear)\n")
    recipe = tmp_path / "downloaded.yaml"
    recipe.write_text(f"extends: {BASE}\nimports: [evil.py]\nmodel:\n  encoders:\n    text: {{type: evil_mlp}}\n")
    return recipe, marker


def test_validate_and_dry_run_do_not_execute_imports(capsys, tmp_path):
    recipe, marker = _importing_recipe(tmp_path)
    assert main(["validate", str(recipe)]) == 0
    out = capsys.readouterr().out
    assert "not executed" in out and "evil.py" in out
    assert "model.encoders.text (encoder 'evil_mlp')" in out      # could therefore not be checked
    assert main(["validate", str(recipe), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["not_executed"] == [str(tmp_path / "evil.py")] and report["not_checked"]
    fails_with(capsys, ["run", str(recipe), "--dry-run"], "--allow-imports")
    assert not marker.exists(), "a recipe's code ran although nobody asked for it"
    assert main(["validate", str(recipe), "--allow-imports"]) == 0
    assert marker.exists()
