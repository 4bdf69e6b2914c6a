"""Limits of the basic components' parameters, read by the recipe check (``mmtk validate``).

Each alias says what a value means; the schema reports a value outside it with its dotted
path, so a bad recipe fails before anything is built or trained.
"""
from __future__ import annotations

from typing import Annotated

from mmtk import Finite, Ge, Gt, Le, Lt

Size = Annotated[int, Ge(1)]                          # widths, layers, channels, sample counts
NonNegativeInt = Annotated[int, Ge(0)]                # where 0 means "none"
LayerSizes = list[Annotated[int, Gt(0)]]              # hidden layers, in order ([] = none)
Dropout = Annotated[float, Ge(0), Lt(1)]              # 1 would drop everything
Probability = Annotated[float, Ge(0), Le(1)]
BelowOne = Annotated[float, Ge(0), Lt(1)]             # Adam's betas, SGD momentum, a missing rate
LearningRate = Annotated[float, Gt(0), Finite()]
Positive = Annotated[float, Gt(0), Finite()]
NonNegative = Annotated[float, Ge(0), Finite()]       # weight decay, noise, a minimum learning rate
Fraction = Annotated[float, Gt(0), Lt(1)]             # leaves both sides of a split non-empty
Seed = Annotated[int, Ge(0), Lt(2**64)]               # what torch.Generator.manual_seed takes
ClassCount = Annotated[int, Ge(2)]                    # a classification task needs two classes
