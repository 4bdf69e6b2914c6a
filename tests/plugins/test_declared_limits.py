"""Every built-in component declares limits on its numeric parameters, in hints the recipe
check can read (a hint that fails to resolve would make the schema drop its limits silently)."""
from __future__ import annotations

import inspect
import types
import typing

from mmtk.plugins import load_plugins
from mmtk.schema import split_annotated, user_params

# numeric parameters whose valid range is not known from the signature alone
NO_STATIC_LIMIT = {
    # a hidden-state index: -(L+1)..L for a checkpoint of L layers, checked when it loads
    ("encoder", "hf_text", "layer"), ("encoder", "hf_audio", "layer"), ("encoder", "hf_visual", "layer"),
}


def builtin_specs():
    return [s for s in load_plugins().registry.list() if s.provider.builtin]


def unlimited_number(tp) -> bool:
    """Does the hint hold an int or float without a declared limit (items and options too)?"""
    if split_annotated(tp)[1]:
        return False
    if typing.get_origin(tp) in (typing.Union, types.UnionType, list, tuple, dict):
        return any(unlimited_number(a) for a in typing.get_args(tp) if a not in (type(None), Ellipsis))
    return tp in (int, float)


def hint_problem(spec) -> str | None:
    target = spec.obj.__init__ if inspect.isclass(spec.obj) else spec.obj
    try:
        typing.get_type_hints(target, include_extras=True)
    except Exception as exc:  # any failure: the schema falls back to unevaluated strings
        return f"{spec.kind}/{spec.name}: its type hints do not resolve ({exc!r})"
    return None


def test_every_numeric_parameter_declares_its_limits():
    specs = builtin_specs()
    assert len(specs) > 30
    problems = [why for why in map(hint_problem, specs) if why]
    problems += sorted(f"{s.kind}/{s.name}.{p.name}: {p.type_name}" for s in specs
                       for p in user_params(s.obj, s.kind)
                       if unlimited_number(p.annotation) and (s.kind, s.name, p.name) not in NO_STATIC_LIMIT)
    assert not problems, problems
