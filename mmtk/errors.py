"""User-facing errors: each carries a message meant to be printed as one paragraph."""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Iterable


class MmtkError(Exception):
    """An error caused by the user's input (recipe, data, plugin); printed without traceback."""


class RecipeError(MmtkError):
    """One or more problems in a recipe, each tied to a dotted path."""

    def __init__(self, problems: list["Problem"], source: str | None = None):
        self.problems = list(problems)
        self.source = source
        where = f" in {source}" if source else ""
        lines = [f"{len(self.problems)} problem(s){where}:"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))


class DataError(MmtkError):
    """Missing, corrupt or inconsistent data: the message names the file, the id and the problem."""


class PluginError(MmtkError):
    """A plugin failed to load or register (fatal only under --strict-plugins)."""


class NonFiniteLossError(MmtkError):
    """Training produced NaN or infinite loss."""


@dataclass(frozen=True)
class Problem:
    """One recipe problem: the dotted path where it is and what is wrong."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path or '<root>'}: {self.message}"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' when a close match exists, else ''."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def accepted(choices: Iterable[str], limit: int = 30) -> str:
    items = sorted(str(c) for c in choices)
    if not items:
        return "nothing is accepted here"
    more = f", … ({len(items) - limit} more)" if len(items) > limit else ""
    return "accepted: " + ", ".join(items[:limit]) + more
