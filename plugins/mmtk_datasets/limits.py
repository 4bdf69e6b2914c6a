"""Limits of the dataset readers' parameters, read by the recipe check (``mmtk validate``)."""
from __future__ import annotations

from typing import Annotated

from mmtk import Ge, Gt, Lt, Matches

Size = Annotated[int, Ge(1)]                      # feature sizes, frame counts
Fraction = Annotated[float, Gt(0), Lt(1)]         # leaves both sides of a split non-empty
Rate = Annotated[float, Ge(0), Lt(1)]             # a missing rate: 0 = complete, 1 would drop all
Seed = Annotated[int, Ge(0), Lt(2**64)]
Budget = Annotated[float, Gt(0)]                  # labels kept: a fraction in (0, 1] or a count > 1
# one folder name under a corpus' features/ folder (gcnet_layout), never a path out of it
FeatureFolder = Annotated[str, Matches(r"(?!\.\.?$)[^/\\]+", "a folder name under features/ "
                                       "(no / or \\, not . or ..)")]
