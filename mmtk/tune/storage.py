"""Where a study lives: an Optuna storage from a URL (default: SQLite in the tuning folder).

``sqlite:///...``, ``postgresql://...``, ``mysql://...``: Optuna's RDB storage, with its
heartbeat on, so a trial whose worker vanished is marked failed by the next worker to start a
trial. ``journal:PATH`` (or a path ending in ``.log`` / ``.journal``): Optuna's journal file.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .engine import TuneError

HEARTBEAT_SECONDS = 15    # how often a running trial says it is alive
GRACE_SECONDS = 90        # silence after which a RUNNING trial is marked failed
_SECRET = re.compile(r"(://[^:/@]+:)[^@]*@")


def shown(url: str) -> str:
    """A storage URL fit for messages: its password hidden."""
    return _SECRET.sub(r"\1***@", url)


def default_url(folder: Path) -> str:
    return f"sqlite:///{(folder / 'study.db').resolve()}"


def journal_path(url: str) -> str | None:
    if url.startswith("journal:"):
        return url[len("journal:"):].removeprefix("//")
    if "://" not in url and url.endswith((".log", ".journal")):
        return url
    return None


def with_driver(url: str) -> str:
    """``postgresql://`` names SQLAlchemy's default driver (psycopg 3); when only psycopg2 (the
    tune-postgres extra) is installed, name that one instead."""
    from importlib.util import find_spec

    scheme, sep, rest = url.partition("://")
    if scheme in ("postgresql", "postgres") and find_spec("psycopg") is None and find_spec("psycopg2"):
        return f"postgresql+psycopg2://{rest}"
    return url


def open_storage(url: str, optuna: Any) -> Any:
    """The Optuna storage behind ``url``; a one-paragraph error when it cannot be opened."""
    journal = journal_path(url)
    if journal is not None:
        try:
            from optuna.storages.journal import JournalFileBackend
        except ImportError:  # Optuna 3.x names it JournalFileStorage
            from optuna.storages import JournalFileStorage as JournalFileBackend

        Path(journal).parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(journal))
    if "://" not in url:
        raise TuneError(f"--storage '{shown(url)}' is not a storage URL; give sqlite:///PATH.db, "
                        "postgresql://USER@HOST:PORT/DB, mysql://..., or journal:PATH")
    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    try:
        return optuna.storages.RDBStorage(with_driver(url), engine_kwargs=kwargs, heartbeat_interval=HEARTBEAT_SECONDS,
                                          grace_period=GRACE_SECONDS)
    except ImportError as exc:
        extra = ' pip install "mmtk[tune-postgres]"' if url.startswith("postgres") else ""
        raise TuneError(f"the storage {shown(url)} needs a database driver that cannot be imported "
                        f"({exc}); install it{extra and ' with:' + extra}") from None
    except Exception as exc:  # sqlalchemy's errors: unreachable server, bad URL, no permission
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TuneError(f"cannot open the study storage {shown(url)}: {first}. Check the URL, that "
                        "the server is running and that the user may connect") from None
