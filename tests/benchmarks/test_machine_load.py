"""benchmarks/machine_load.py: the busy processes live exactly as long as their block."""
from __future__ import annotations

import importlib.util
import multiprocessing as mp
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "machine_load.py"


def _module():
    spec = importlib.util.spec_from_file_location("machine_load", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_busy_processes_run_inside_the_block_and_stop_after_it_even_on_an_error():
    load = _module()
    before = set(mp.active_children())
    with pytest.raises(RuntimeError), load.busy_processes(2, settle_seconds=0.0):
        hogs = set(mp.active_children()) - before
        assert len(hogs) == 2 and all(h.is_alive() for h in hogs)
        raise RuntimeError("a benchmark failed")
    assert not any(h.is_alive() for h in hogs)
    assert len(load.load_average().split()) == 3
