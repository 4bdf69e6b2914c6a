"""The base class of ``dataset`` components, in a module without torch: checking a recipe
builds the dataset object (not its data) to learn its modalities and folds, and `mmtk validate`
must not wait for torch. ``load`` may import whatever it needs."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .data import DataSplits


class Dataset:
    """Base class of ``dataset`` components.

    The constructor must be cheap (validation builds datasets to learn their modalities);
    :meth:`load` does the reading. ``folds()`` lists fold ids (``[None]`` when the data has
    one fixed split); ``load(fold)`` returns that fold's splits.
    """

    @property
    def modalities(self) -> tuple[str, ...]:  # pragma: no cover - abstract
        raise NotImplementedError

    def folds(self) -> list[int | None]:
        return [None]

    def load(self, fold: int | None = None) -> "DataSplits":  # pragma: no cover - abstract
        raise NotImplementedError
