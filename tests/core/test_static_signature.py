"""Signatures read from source (mmtk.static_signature) agree with the imported classes, and
checking a shipped recipe imports no torch."""
from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap

import pytest

from mmtk import pipeline
from mmtk.registry import KINDS
from mmtk.schema import CONTEXT_NAMES, signature_params
from mmtk.static_signature import _KNOWN_BASES, _NO_INIT_BASES, _SLOT_DEFAULTS, static_component

ABSENT = object()


def _lazy_specs(system):
    return [system.registry.get(kind, name) for kind in KINDS for name in system.registry.names(kind)
            if isinstance(system.registry.get(kind, name).target, str)]


def _described(obj):
    return [(p.name, p.default) if p.name in CONTEXT_NAMES else (p.name, p.default, p.type_name)
            for p in signature_params(obj)]


def test_every_component_read_from_source_matches_the_imported_one(system):
    read = 0
    for spec in _lazy_specs(system):
        static = static_component(spec.target, lambda: spec.obj)
        if static is None:
            continue
        read += 1
        assert _described(static) == _described(spec.obj), spec.target
        for name in _SLOT_DEFAULTS:
            assert getattr(static, name, ABSENT) == getattr(spec.obj, name, ABSENT), (spec.target, name)
    assert read >= 40   # most built-ins are read without importing them


def test_known_bases_table_is_what_the_classes_say():
    import torch

    for base in ("Slot", "Fuser"):
        for name, value in _SLOT_DEFAULTS.items():
            assert getattr(getattr(pipeline, base), name) == value
            assert _KNOWN_BASES[f"mmtk.{base}"][name] == value
    assert not any(hasattr(torch.nn.Module, name) for name in _SLOT_DEFAULTS)
    import mmtk
    for dotted in _NO_INIT_BASES:
        cls = getattr(mmtk, dotted.rsplit(".", 1)[1])
        assert cls.__init__ is object.__init__, dotted


def _module(tmp_path, monkeypatch, source: str) -> str:
    """A module of its own name per test (sources are parsed once per process)."""
    name = f"static_probe_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_what_the_source_cannot_say_falls_back_to_the_import(tmp_path, monkeypatch):
    name = _module(tmp_path, monkeypatch, """
        from __future__ import annotations
        import functools
        SIZE = 3

        class Expression:
            def __init__(self, size: int = SIZE): ...

        @functools.total_ordering
        class Decorated:
            def __init__(self, a: int = 1): ...

        class Inherited(functools.partial): ...

        class Plain:
            aux_losses = ("rec",)
            def __init__(self, width: int = 4, *, ratio: float = 0.5, **rest): ...
        """)
    for attr in ("Expression", "Decorated", "Inherited"):
        assert static_component(f"{name}:{attr}", lambda: None) is None, attr
    loaded = []
    plain = static_component(f"{name}:Plain", lambda: loaded.append(1) or object)
    params = inspect.signature(plain).parameters
    assert list(params) == ["width", "ratio", "rest"] and params["ratio"].default == 0.5
    assert plain.aux_losses == ("rec",) and not loaded      # answered from the source
    assert plain.hints == {"width": int, "ratio": float}


def test_an_annotation_naming_a_heavy_module_is_not_evaluated(tmp_path, monkeypatch):
    name = _module(tmp_path, monkeypatch, """
        from __future__ import annotations
        from json import JSONDecoder

        class UsesHeavy:
            def __init__(self, decoder: JSONDecoder | None = None): ...
        """)
    assert static_component(f"{name}:UsesHeavy", lambda: None) is None


@pytest.mark.parametrize("recipe", ["cmarr", "baseline", "mmin", "modality-dropout", "ae-impute",
                                    "late-fusion-handwritten", "cmarr-handwritten"])
def test_validating_a_shipped_recipe_imports_no_torch(recipe):
    probe = ("import sys, io, contextlib\nfrom mmtk.cli import main\n"
             "with contextlib.redirect_stdout(io.StringIO()):\n"
             f"    code = main(['validate', {recipe!r}])\n"
             "print(code, 'torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["0", "False"], out


def test_a_subclass_that_computes_an_attribute_is_asked(tmp_path, monkeypatch):
    name = _module(tmp_path, monkeypatch, """
        from __future__ import annotations

        class Base:
            aux_losses = ("rec",)
            def __init__(self, width: int = 4): ...

        class Computed(Base):
            aux_losses = Base.aux_losses + ("nll",)
        """)
    import importlib
    real = importlib.import_module(name).Computed
    static = static_component(f"{name}:Computed", lambda: real)
    assert list(inspect.signature(static).parameters) == ["width"]
    assert static.aux_losses == ("rec", "nll")
