"""Ablation: run_mmtk.py with the reference's init_net on EVERY Linear / convolution layer.

mmtk's `mmin_imagination` can take the reference's initialisation only for its own cascades
(`init: kaiming`); the reference also applies it to the TextCNN's convolutions and projection
and to both stages' classifiers (its LSTMs keep PyTorch's default). This script measures that
whole difference by replacing PyTorch's default ``reset_parameters`` of ``nn.Linear`` and of
the convolutions with Kaiming-normal (fan_in) weights and zero biases for the whole process,
then runs run_mmtk.py with the same arguments:

    python benchmarks/mmin_reference/kaiming_everywhere.py RECIPE DATA_DIR RUNS_DIR [...]

An experiment harness, not a feature: it patches torch for this process only.
"""
from __future__ import annotations

import runpy
import sys
from pathlib import Path

from torch import nn


def kaiming_reset(self: nn.Module) -> None:
    nn.init.kaiming_normal_(self.weight, a=0, mode="fan_in")
    if self.bias is not None:
        nn.init.zeros_(self.bias)


if __name__ == "__main__":
    nn.Linear.reset_parameters = kaiming_reset  # type: ignore[method-assign]
    nn.modules.conv._ConvNd.reset_parameters = kaiming_reset  # type: ignore[method-assign]
    script = Path(__file__).with_name("run_mmtk.py")
    sys.argv = [str(script), *sys.argv[1:]]
    runpy.run_path(str(script), run_name="__main__")
