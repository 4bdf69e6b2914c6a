"""Limits a parameter declares next to its type: ``Annotated[int, Ge(1)]``.

The recipe check reads them for core sections and for every component alike, so a
third-party plugin gets the same checks by writing e.g.::

    def __init__(self, hidden: Annotated[int, Ge(1)] = 64,
                 dropout: Annotated[float, Ge(0), Lt(1)] = 0.1): ...

Each constraint says in words what it wants; the checker adds the path and the value.
"""
from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass
from typing import Any, Callable, ClassVar


class Constraint:
    """A limit on a value that already has the right type."""

    def problem(self, value: Any) -> str | None:  # pragma: no cover - interface
        raise NotImplementedError


@dataclass(frozen=True)
class _Bound(Constraint):
    """A comparison with a fixed bound; subclasses give the symbol and the test."""
    bound: float
    symbol: ClassVar[str] = ""
    holds: ClassVar[Callable[[Any, Any], bool]]

    def problem(self, value: Any) -> str | None:
        return None if type(self).holds(value, self.bound) else f"must be {self.symbol} {self.bound}"

    def __str__(self) -> str:
        return f"{self.symbol} {self.bound}"


class Ge(_Bound):
    """value >= bound"""
    symbol, holds = ">=", operator.ge


class Gt(_Bound):
    """value > bound"""
    symbol, holds = ">", operator.gt


class Le(_Bound):
    """value <= bound"""
    symbol, holds = "<=", operator.le


class Lt(_Bound):
    """value < bound"""
    symbol, holds = "<", operator.lt


@dataclass(frozen=True)
class Finite(Constraint):
    """not NaN and not infinite"""

    def problem(self, value: Any) -> str | None:
        return None if math.isfinite(value) else "must be a finite number"

    def __str__(self) -> str:
        return "finite"


@dataclass(frozen=True)
class NonEmpty(Constraint):
    """a list, mapping or string with at least one item"""

    def problem(self, value: Any) -> str | None:
        return None if len(value) else "must not be empty"

    def __str__(self) -> str:
        return "non-empty"


@dataclass(frozen=True)
class Matches(Constraint):
    """a string matching a regular expression (``what`` says it in words)"""
    pattern: str
    what: str

    def problem(self, value: Any) -> str | None:
        return None if re.fullmatch(self.pattern, value) else f"must be {self.what}"

    def __str__(self) -> str:
        return self.what


# Shorthands used by the core's sections and the built-in plugins.
POSITIVE = Gt(0)
AT_LEAST_ONE = Ge(1)
FINITE = Finite()
DEVICE = Matches(r"auto|cpu|mps|cuda(:[0-9]+)?", "a device: auto, cpu, mps, cuda or cuda:N")
RUN_NAME = Matches(r"[A-Za-z0-9_][A-Za-z0-9_.+=@-]*", "a run name of letters, digits and _.+=@- "
                   "(no '/', no leading '.')")
