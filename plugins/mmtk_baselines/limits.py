"""Limits of the baselines' component parameters, read by the recipe check (``mmtk validate``).

Limits that tie two values together (mmin_latents' dim = blocks x bottleneck) stay in the
constructors or in training, which report them.
"""
from __future__ import annotations

from typing import Annotated

from mmtk import Ge, Gt, Le, Lt, NonEmpty

Size = Annotated[int, Ge(1)]                              # blocks, widths
LayerSizes = Annotated[list[Annotated[int, Gt(0)]], NonEmpty()]   # autoencoder layers, bottleneck last
Dropout = Annotated[float, Ge(0), Lt(1)]                  # 1 would drop everything
Momentum = Annotated[float, Gt(0), Le(1)]                 # share of a new batch in a running mean
Moments = Annotated[int, Ge(1), Le(10)]                   # CMD order K; high moments of wide features overflow
RidgeStrength = Annotated[float, Gt(0)]                    # λ / n of a ridge regression; 0 would not regularise
