"""The built-in plugins use only the published core API: names re-exported by ``mmtk`` and the
modules listed in ``mmtk.PUBLIC_MODULES`` — exactly what a third-party plugin may use."""
from __future__ import annotations

import ast
from pathlib import Path

import mmtk

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"


def _core_imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "mmtk":
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "mmtk"]
    return found


def test_plugins_import_only_the_public_surface():
    allowed = {"mmtk"} | {f"mmtk.{m}" for m in mmtk.PUBLIC_MODULES}
    bad = [f"{p.relative_to(PLUGINS)}:{line}: {module}"
           for p in sorted(PLUGINS.rglob("*.py")) for line, module in _core_imports(p)
           if module not in allowed]
    assert not bad, "plugins import core internals:\n" + "\n".join(bad)


def test_every_public_name_resolves():
    for name in mmtk.__all__:
        assert getattr(mmtk, name) is not None, name
