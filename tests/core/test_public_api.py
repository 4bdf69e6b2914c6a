"""The public surface: every name in ``mmtk.__all__`` resolves, lazily, and ``import mmtk``
stays light (no torch, no heavy plugin dependencies)."""
from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import mmtk
from mmtk import hookspecs


def _fresh(code: str) -> str:
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    return ran.stdout.strip()


def test_import_mmtk_and_the_cli_import_no_heavy_module():
    heavy = "{'torch', 'normflows', 'transformers', 'h5py'}"
    out = _fresh(f"import mmtk, mmtk.cli, sys; "
                 f"print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy}))")
    assert out == "[]"


def test_first_use_of_a_public_name_loads_its_module_only_then():
    out = _fresh("import mmtk, sys; a = 'mmtk.pipeline' in sys.modules; mmtk.Slot; "
                 "print(a, 'mmtk.pipeline' in sys.modules)")
    assert out == "False True"


@pytest.mark.parametrize("name", mmtk.__all__)
def test_every_public_name_resolves(name):
    assert getattr(mmtk, name) is not None
    assert name in dir(mmtk)


def test_the_plugin_building_blocks_are_the_core_ones():
    from mmtk import DataError, MissingProtocol, Slot, State, Targets  # noqa: F401
    from mmtk.data import Dataset
    from mmtk.errors import MmtkError
    from mmtk.pipeline import Fuser

    assert mmtk.Dataset is Dataset and mmtk.MmtkError is MmtkError and mmtk.Fuser is Fuser
    assert issubclass(mmtk.DataError, mmtk.MmtkError)
    from mmtk import metrics  # the submodule stays importable by name
    assert metrics.accuracy is mmtk.accuracy


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'Slott'"):
        mmtk.Slott  # noqa: B018
    with pytest.raises(ImportError):
        exec("from mmtk import Slott")


def test_public_types_have_docstrings():
    for name in mmtk.__all__:
        obj = getattr(mmtk, name)
        if inspect.isclass(obj):
            doc = (obj.__doc__ or "").strip()
            # a dataclass without one gets its signature as __doc__: that says nothing
            assert doc and not doc.startswith(f"{obj.__name__}("), f"mmtk.{name} has no docstring"


def test_register_callbacks_are_typed_in_the_hookspecs():
    sig = inspect.signature(hookspecs.mmtk_register_components)
    assert sig.parameters["register"].annotation in ("RegisterComponent", hookspecs.RegisterComponent)
    call = inspect.signature(hookspecs.RegisterComponent.__call__)
    assert list(call.parameters) == ["self", "kind", "name", "obj", "summary"]
    assert set(hookspecs.HOOK_NAMES) >= {"mmtk_register_components", "mmtk_register_recipes",
                                         "mmtk_register_commands", "mmtk_run_start", "mmtk_run_end"}
