"""The command line of mmtk tune: its help, its errors (exit 2, one paragraph, no traceback)."""
from __future__ import annotations

import sys

from mmtk.cli import main


def test_help_documents_the_space_format(capsys):
    try:
        main(["tune", "--help"])
    except SystemExit as exc:
        assert exc.code == 0
    out = capsys.readouterr().out
    assert "{float: [1e-4, 1e-2], log: true}" in out and "{categorical: [concat, mean]}" in out
    assert "--join STUDY" in out and "--storage" in out and "never evaluated inside a trial" in out


def test_without_optuna_says_how_to_install_it(monkeypatch, capsys, tiny_recipe, space_file):
    monkeypatch.setitem(sys.modules, "optuna", None)    # makes `import optuna` fail
    assert main(["tune", str(tiny_recipe), "--space", str(space_file), "--trials", "2"]) == 2
    err = capsys.readouterr().err
    assert 'pip install "mmtk[tune]"' in err and "Traceback" not in err


def test_a_bad_space_stops_before_training(capsys, tiny_recipe, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    space = tmp_path / "bad-space.yaml"
    space.write_text("train.optimizer.lrr: {float: [1e-4, 1e-2]}\nmodel.latent_dim: {int: [8, 2]}\n")
    assert main(["tune", str(tiny_recipe), "--space", str(space), "--trials", "2"]) == 2
    err = capsys.readouterr().err
    assert "bad-space.yaml" in err and "model.latent_dim: empty or inverted range [8, 2]" in err
    space.write_text("train.optimizer.lrr: {float: [1e-4, 1e-2]}\n")
    assert main(["tune", str(tiny_recipe), "--space", str(space), "--trials", "2"]) == 2
    err = capsys.readouterr().err
    assert "bad-space.yaml does not fit the recipe" in err and "unknown parameter 'lrr'" in err
    assert not (tmp_path / "runs").exists()   # nothing trained, no folder made


def test_missing_arguments_and_bad_join(capsys, tiny_recipe, tmp_path):
    assert main(["tune", str(tiny_recipe), "--trials", "2"]) == 2
    assert "needs a search space: --space FILE.yaml, or a tune.space section" in capsys.readouterr().err
    assert main(["tune", "--trials", "2"]) == 2
    assert "needs RECIPE with --space FILE and --trials N" in capsys.readouterr().err
    assert main(["tune", "--join", "nosuch"]) == 2
    assert "--join STUDY needs --storage URL" in capsys.readouterr().err
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    assert main(["tune", "--join", "nosuch", "--storage", url]) == 2
    assert "no study 'nosuch'" in capsys.readouterr().err
    assert main(["tune", "--join", "x", "--storage", "not-a-url"]) == 2
    assert "is not a storage URL" in capsys.readouterr().err


def test_the_parser_does_not_import_optuna():
    import subprocess

    code = "import sys, mmtk.cli; mmtk.cli._parser(); print('optuna' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_the_help_example_fits_the_cmarr_recipe(system, tmp_path):
    """The space shown by --help is checked against recipes/cmarr.yaml like a user's would be."""
    from mmtk.tune.options import EPILOG
    from mmtk.tune.setup import build_definition

    lines = [line.strip() for line in EPILOG.splitlines() if line.startswith("  ") and ": {" in line]
    space = tmp_path / "help-space.yaml"
    space.write_text("\n".join(lines) + "\n")
    definition, _ = build_definition("cmarr", [], str(space), system, {})
    assert len(definition["space"]) == 5 and definition["direction"] == "maximize"
