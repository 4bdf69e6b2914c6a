"""What the plugin system records: each plugin's load status, the recipes and commands
plugins register, and a one-line account of what a failing plugin raised."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import MmtkError
from .registry import Provider


@dataclass
class PluginStatus:
    name: str
    source: str  # "entry point <module>", "file <path>", "object"
    status: str  # "ok", "failed", "disabled"
    distribution: str | None = None
    version: str | None = None
    error: str | None = None
    components: int = 0


@dataclass(frozen=True)
class RecipeEntry:
    name: str
    path: Path
    provider: Provider
    summary: str = ""


@dataclass(frozen=True)
class CommandEntry:
    name: str
    help: str
    configure: Any
    run: Any
    provider: Provider


def describe_exception(exc: BaseException) -> str:
    """One line saying what a plugin raised (``sys.exit()`` and Ctrl-C included)."""
    if isinstance(exc, SystemExit):
        return f"it called sys.exit({exc.code!r})"
    if isinstance(exc, MmtkError):
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return " ".join(text.split())
