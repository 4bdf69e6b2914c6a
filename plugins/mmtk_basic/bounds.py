"""Bayes bounds of the embedded datasets, per missing-modality condition.

A dataset gives the UAR of the Bayes rule for one set of present modalities; this module
runs it over every non-empty subset (keyed by condition code, as the results are) and adds
``mean``, the six-condition (every non-empty proper subset) mean that the tables report.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence


def subset_bounds(modalities: Sequence[str], uar_of: Callable[[tuple[str, ...]], float]) -> dict[str, float]:
    """``uar_of(present)`` for every non-empty subset of ``modalities``, by condition code,
    and ``mean`` over the missing conditions."""
    from mmtk import condition_code

    out, missing = {}, []
    for keep in itertools.product([False, True], repeat=len(modalities)):
        if not any(keep):
            continue
        code = condition_code(tuple(modalities), keep)
        out[code] = uar_of(tuple(m for m, k in zip(modalities, keep) if k))
        if not all(keep):
            missing.append(out[code])
    if missing:
        out["mean"] = sum(missing) / len(missing)
    return out


def normal_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))
