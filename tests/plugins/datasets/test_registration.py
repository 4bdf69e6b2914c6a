"""The datasets plugin registers its readers and metrics by import path: listing components
imports none of them, nor torch, numpy or h5py; building one imports its module."""
from __future__ import annotations

import subprocess
import sys

from mmtk.plugins import load_plugins

LIST_AND_REPORT = ("import contextlib, io, sys\nfrom mmtk.cli import main\n"
                   "with contextlib.redirect_stdout(io.StringIO()):\n"
                   "    assert main(['list', 'components']) == 0\n"
                   "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
                   "{'torch', 'numpy', 'h5py', 'mmtk_datasets'})))\n")


def test_listing_components_imports_no_reader_and_no_torch():
    out = subprocess.run([sys.executable, "-c", LIST_AND_REPORT], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert set(out.stdout.split()) <= {"mmtk_datasets", "mmtk_datasets.plugin"}, out.stdout


def test_every_registered_target_resolves_to_its_module():
    registry = load_plugins().registry
    specs = [s for s in registry.list() if s.provider.plugin == "datasets"]
    assert {s.name for s in specs if s.kind == "dataset"} == {
        "arrays", "gcnet_layout", "handwritten", "mmin_layout", "mmsa"}
    assert len([s for s in specs if s.kind == "metric"]) == 10
    for spec in specs:
        assert isinstance(spec.target, str), spec          # lazy: "module:attribute"
        assert spec.obj.__module__.startswith("mmtk_datasets."), spec
        assert spec.obj.__name__ == spec.target.rpartition(":")[2]
