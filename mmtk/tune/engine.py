"""The one place ``optuna`` is imported: an optional dependency (the ``tune`` extra)."""
from __future__ import annotations

import warnings
from typing import Any

from ..errors import MmtkError


class TuneError(MmtkError):
    """A problem with a tuning command: its space file, its storage or its study."""


def require_optuna() -> Any:
    """The ``optuna`` module, or a one-paragraph error saying how to install it."""
    try:
        import optuna
    except ImportError as exc:
        raise TuneError(
            f"mmtk tune needs the optional package optuna, which cannot be imported ({exc}). "
            'Install it with: pip install "mmtk[tune]" (add "mmtk[tune-postgres]" for a '
            "PostgreSQL storage), then run the command again") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # mmtk prints its own progress lines
    # experimental helpers (plots, heartbeat) are used deliberately; their notice is noise here
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    # mmtk drives ask/tell itself and records the heartbeat as Study.optimize would
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
    return optuna
