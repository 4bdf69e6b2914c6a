"""Missing-modality protocols (train masks and evaluation conditions)."""
from __future__ import annotations

import functools
import itertools

import torch
from torch import Tensor

from mmtk import EvalCondition, EvalPlan, MissingProtocol, MmtkError, condition_code, exact_rate_mask, parse_condition

from .limits import BelowOne, Seed


def proper_subsets(m: int) -> list[tuple[bool, ...]]:
    """Every non-empty proper subset of m modalities, smallest first (a, t, v, at, av, tv)."""
    out = []
    for k in range(1, m):
        for keep in itertools.combinations(range(m), k):
            out.append(tuple(i in keep for i in range(m)))
    return out


class NoMissing(MissingProtocol):
    """Every modality the data has is used (training) / one 'full' condition (evaluation)."""


class SixConditions(MissingProtocol):
    """MMIN's six conditions: a random one per sample in training, every one at evaluation.

    Training draws a missing condition per sample and epoch; evaluation runs every sample
    under every condition (a, t, v, at, av, tv for three modalities, i.e. all non-empty
    proper subsets) plus the full set; ``mean`` averages the missing conditions.

    Parameters:
        include_full_in_training: also draw the full condition (nothing missing) in training
    """

    def __init__(self, include_full_in_training: bool = False):
        self.include_full_in_training = include_full_in_training

    def train_mask(self, present: Tensor, generator: torch.Generator,
                   modalities: tuple[str, ...]) -> Tensor:
        table = self._table(present.shape[1])
        pick = torch.randint(len(table), (present.shape[0],), generator=generator)
        return table[pick]

    @functools.lru_cache(maxsize=8)
    def _table(self, m: int) -> Tensor:
        """The allowed patterns as a (K, m) bool table, built once per modality count."""
        options = proper_subsets(m) + ([tuple([True] * m)] if self.include_full_in_training else [])
        return torch.tensor(options, dtype=torch.bool)

    def eval_conditions(self, modalities: tuple[str, ...], n: int) -> EvalPlan:
        conds = [EvalCondition(condition_code(modalities, keep),
                               torch.tensor(keep, dtype=torch.bool).expand(n, -1).clone())
                 for keep in proper_subsets(len(modalities))]
        full = tuple([True] * len(modalities))
        conds.append(EvalCondition(condition_code(modalities, full),
                                   torch.ones(n, len(modalities), dtype=torch.bool)))
        return EvalPlan(conds, [c.name for c in conds[:-1]])


class RandomRate(MissingProtocol):
    """CPM-Nets' missing rate η: exactly a fraction η of the (sample, modality) cells is missing.

    The data's own missing cells count toward η (a dataset already missing 20 % of its cells
    gets only the rest dropped at η = 0.5), and every sample keeps at least one of the
    modalities it has; when the data already misses more than η nothing more is dropped. A
    sample left with no modality (possible only in data that has none for it) is never scored.
    Training: by default one fixed mask per training sample, drawn once from the trial seed,
    so the training data is incomplete in the same way every epoch (CPM-Nets); ``resample:
    true`` redraws masks every batch instead (an augmentation: over the epochs the model then
    sees every training cell). The evaluation mask is fixed by ``eval_seed``.

    Parameters:
        rate: η, the fraction of (sample, modality) cells missing, data's own included, in [0, 1)
        eval_seed: seed of the fixed evaluation mask
        train: drop cells in training too (false: train on everything the data has)
        resample: redraw the training masks every batch instead of fixing one per sample
    """

    def __init__(self, rate: BelowOne = 0.3, eval_seed: Seed = 12345, train: bool = True,
                 resample: bool = False, seed: int = 0):
        if not 0.0 <= rate < 1.0:
            raise MmtkError(f"random_rate: rate must be in [0, 1), got {rate}")
        self.rate, self.eval_seed, self.train, self.resample = rate, eval_seed, train, resample
        self._seed = seed

    def train_table(self, n: int, modalities: tuple[str, ...],
                    present: Tensor | None = None) -> Tensor | None:
        if not self.train or self.resample:
            return None
        g = torch.Generator().manual_seed(self._seed * 7907 + 17)
        return exact_rate_mask(_all(n, modalities) if present is None else present, self.rate, g)

    def train_mask(self, present: Tensor, generator: torch.Generator,
                   modalities: tuple[str, ...]) -> Tensor:
        if not self.train:
            return torch.ones_like(present, dtype=torch.bool)
        return exact_rate_mask(present, self.rate, generator)

    def eval_conditions(self, modalities: tuple[str, ...], n: int,
                        present: Tensor | None = None) -> EvalPlan:
        g = torch.Generator().manual_seed(self.eval_seed)
        name = f"eta{self.rate:g}"
        mask = exact_rate_mask(_all(n, modalities) if present is None else present, self.rate, g)
        return EvalPlan([EvalCondition(name, mask)], [name])


def _all(n: int, modalities: tuple[str, ...]) -> Tensor:
    return torch.ones(n, len(modalities), dtype=torch.bool)


class Fixed(MissingProtocol):
    """One fixed condition, e.g. ``at`` = audio and text present, for training and evaluation.

    Parameters:
        condition: the present modalities, as initials (at = audio and text) or names joined by
            +
    """

    def __init__(self, condition: str):
        self.condition = condition

    def _keep(self, modalities: tuple[str, ...]) -> tuple[bool, ...]:
        try:
            return parse_condition(self.condition, modalities)
        except ValueError as exc:
            raise MmtkError(f"missing protocol 'fixed': {exc}") from None

    def train_mask(self, present: Tensor, generator: torch.Generator,
                   modalities: tuple[str, ...]) -> Tensor:
        keep = torch.tensor(self._keep(modalities), dtype=torch.bool)
        return keep.expand(present.shape[0], -1).clone()

    def eval_conditions(self, modalities: tuple[str, ...], n: int) -> EvalPlan:
        keep = self._keep(modalities)
        mask = torch.tensor(keep, dtype=torch.bool).expand(n, -1).clone()
        return EvalPlan([EvalCondition(condition_code(modalities, keep), mask)],
                        [condition_code(modalities, keep)])
