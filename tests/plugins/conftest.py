"""Fixtures shared by the built-in plugins' tests: checking a recipe through the command line."""
from __future__ import annotations

import pytest

from mmtk.cli import main


@pytest.fixture
def validate(capsys):
    """``validate(recipe, *settings)`` -> (exit status, stderr) of ``mmtk validate RECIPE --set
    SETTING ...``, run in-process as from the shell."""
    def run(recipe, *settings: str) -> tuple[int, str]:
        argv = ["validate", str(recipe)]
        for setting in settings:
            argv += ["--set", setting]
        code = main(argv)
        return code, capsys.readouterr().err
    return run


@pytest.fixture
def check_limit(validate):
    """``check_limit(recipe, path, good, bad, says, setup=())``: ``path=good`` validates (exit
    0; a value at or next to the boundary); ``path=bad`` exits 2 with a problem line naming the
    dotted path and containing ``says``, and no traceback. ``setup`` are ``--set`` settings
    applied first (e.g. choosing the component). Values are YAML, as on the command line."""
    def check(recipe, path: str, good: str, bad: str, says: str, setup: tuple[str, ...] = ()) -> str:
        code, err = validate(recipe, *setup, f"{path}={good}")
        assert code == 0, f"{path}={good} should be valid:\n{err}"
        code, err = validate(recipe, *setup, f"{path}={bad}")
        assert code == 2, f"{path}={bad} should be refused:\n{err}"
        assert "Traceback" not in err
        lines = [line for line in err.splitlines() if f"{path}:" in line]
        assert any(says in line for line in lines), f"expected '{path}: ... {says}' in:\n{err}"
        return lines[0]
    return check

