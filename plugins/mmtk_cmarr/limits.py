"""Limits of CM-ARR's component parameters, read by the recipe check (``mmtk validate``).

Limits that tie two values together (heads must divide latent_dim) stay in the
constructors, which ``mmtk run --dry-run`` reports.
"""
from __future__ import annotations

from typing import Annotated

from mmtk import Finite, Ge, Gt, Lt

Size = Annotated[int, Ge(1)]                          # heads, tokens, layers, blocks, widths, ratios
Dropout = Annotated[float, Ge(0), Lt(1)]              # 1 would drop everything
Temperature = Annotated[float, Gt(0), Finite()]       # divides similarities
Positive = Annotated[float, Gt(0), Finite()]
NonNegative = Annotated[float, Ge(0), Finite()]
Real = Annotated[float, Finite()]
