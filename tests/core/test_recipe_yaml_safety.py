"""A recipe is YAML read with a safe loader: a python/object tag is an error, never a call."""
from __future__ import annotations

from mmtk.cli import main


def test_recipe_with_a_python_object_tag_runs_nothing(tmp_path, capsys):
    marker = tmp_path / "MARKER"
    recipe = tmp_path / "evil.yaml"
    recipe.write_text(f"mmtk: 1\nname: !!python/object/apply:os.system ['touch {marker}']\n"
                      "data: {type: synthetic}\n")
    for command in (["validate", str(recipe)], ["run", str(recipe), "--dry-run"]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert "evil.yaml" in err and "Traceback" not in err
    assert not marker.exists()
