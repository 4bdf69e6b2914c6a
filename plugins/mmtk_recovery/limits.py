"""Limits of the recovery plugin's component parameters, read by the recipe check
(``mmtk validate``).

Limits that tie two values together (an even latent_dim for affine coupling) stay in the
constructors, which ``mmtk run --dry-run`` reports.
"""
from __future__ import annotations

from typing import Annotated

from mmtk import Finite, Ge, Gt, Lt

Size = Annotated[int, Ge(1)]                          # blocks, widths, layers, sampling steps
Seed = Annotated[int, Ge(0)]                          # seeds of the fixed evaluation noise
SigmaMax = Annotated[float, Gt(1), Finite()]          # VE SDE: sigma ** t must grow with t
TimeEps = Annotated[float, Gt(0), Lt(1)]              # the SDE is integrated down to this time
Clamp = Annotated[float, Gt(0), Finite()]             # the soft bound of a flow's coupling scales
