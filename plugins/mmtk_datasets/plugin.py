"""Registers the dataset readers through the same hook a third-party plugin uses."""
from __future__ import annotations

import mmtk

from . import arrays, handwritten, mmin, mmsa, sentiment


@mmtk.hookimpl
def mmtk_register_components(register):
    register("dataset", mmin.NAME, mmin.MMINLayout)
    register("dataset", mmsa.NAME, mmsa.MMSA)
    register("dataset", arrays.NAME, arrays.Arrays)
    register("dataset", handwritten.NAME, handwritten.Handwritten)
    for name, fn in sentiment.FACTORIES.items():  # scores of a sentiment regression model
        register("metric", name, fn)
