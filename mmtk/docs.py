"""What a component's parameters mean, read from its docstring.

The convention (class or factory docstring)::

    One-line summary.

    Parameters:
        hidden: width of the hidden layers
        dropout: probability of zeroing a unit in training;
            continuation lines are indented further
    Anything less indented than the entries ends the section.

The header line is exactly ``Parameters:``; each entry is ``name: what it means``. A
parameter without an entry simply has no description. A subclass inherits its base classes'
entries for the parameters it still has, unless it documents them itself.
"""
from __future__ import annotations

import inspect
import re
from typing import Any

HEADER = "Parameters:"
_ENTRY = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*:\s*(?P<text>.*)$")


def _own_doc(obj: Any) -> str:
    doc = getattr(obj, "__doc__", None)
    return inspect.cleandoc(doc) if isinstance(doc, str) else ""


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _section(lines: list[str]) -> tuple[int, int] | None:
    """(first, end) line numbers of the Parameters section including its header, or None."""
    for start, line in enumerate(lines):
        if line.strip() == HEADER:
            base = _indent(line)
            end = start + 1
            while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > base):
                end += 1
            while end > start + 1 and not lines[end - 1].strip():  # trailing blank lines
                end -= 1
            return start, end
    return None


def parse_parameter_docs(doc: str) -> dict[str, str]:
    """``{name: meaning}`` from a docstring's ``Parameters:`` section (empty if it has none)."""
    lines = inspect.cleandoc(doc or "").splitlines()
    bounds = _section(lines)
    if bounds is None:
        return {}
    body = [line for line in lines[bounds[0] + 1:bounds[1]] if line.strip()]
    if not body:
        return {}
    entry_indent = _indent(body[0])
    out: dict[str, list[str]] = {}
    current: str | None = None
    for line in body:
        match = _ENTRY.match(line.strip())
        if _indent(line) <= entry_indent and match:
            current = match.group("name")
            out[current] = [match.group("text").strip()]
        elif current is not None:  # a continuation line (or prose without "name:")
            out[current].append(line.strip())
    return {name: " ".join(t for t in parts if t) for name, parts in out.items()}


def parameter_docs(obj: Any) -> dict[str, str]:
    """The documented meaning of each of ``obj``'s parameters: its own docstring's entries,
    then its base classes' entries for parameters it still has but does not document."""
    own = parse_parameter_docs(_own_doc(obj))
    if not inspect.isclass(obj):
        return own
    try:
        names = set(inspect.signature(obj).parameters)
    except (TypeError, ValueError):
        names = set()
    merged = dict(own)
    for base in inspect.getmro(obj)[1:]:
        for name, text in parse_parameter_docs(_own_doc(base)).items():
            if name in names:
                merged.setdefault(name, text)
    return merged


def description(obj: Any) -> str:
    """``obj``'s own docstring without its ``Parameters:`` section (shown above the list)."""
    lines = _own_doc(obj).splitlines()
    bounds = _section(lines)
    if bounds is not None:
        lines = lines[:bounds[0]] + lines[bounds[1]:]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else repr(value)


def _limited(base: str, limits: tuple) -> str:
    """``int >= 1``, ``0 <= float < 1``, ``list[str] (non-empty)``: the limits in words."""
    from .constraints import _Bound

    bounds = [c for c in limits if isinstance(c, _Bound)]
    lower = [c for c in bounds if c.symbol in (">", ">=")]
    upper = [c for c in bounds if c.symbol in ("<", "<=")]
    if len(lower) == 1 and len(upper) == 1:
        flipped = {">": "<", ">=": "<="}[lower[0].symbol]
        text = f"{_number(lower[0].bound)} {flipped} {base} {upper[0].symbol} {_number(upper[0].bound)}"
    else:
        text = " ".join([base] + [f"{c.symbol} {_number(c.bound)}" for c in bounds])
    others = [str(c) for c in limits if not isinstance(c, _Bound)]
    return text + (f" ({', '.join(others)})" if others else "")


def readable_type(tp: Any) -> str:
    """A parameter's annotation as a person writes it: ``tuple[str, ...]``, ``dict[str, int]``,
    ``Literal['mean', 'max']``, ``int >= 1``, ``float | None``."""
    import types
    import typing

    from .schema import split_annotated

    if tp is Any or tp is inspect.Parameter.empty:
        return "any"
    base, limits = split_annotated(tp)
    if limits:
        return _limited(readable_type(base), limits)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        return f"Literal[{', '.join(repr(a) for a in args)}]"
    if origin in (typing.Union, types.UnionType):
        return " | ".join(readable_type(a) for a in args)
    if origin is not None:
        inner = ", ".join("..." if a is Ellipsis else readable_type(a) for a in args)
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{inner}]" if args else name
    if tp is type(None):
        return "None"
    if isinstance(tp, str):   # an annotation read from source, not evaluated
        return tp
    return getattr(tp, "__name__", str(tp))
