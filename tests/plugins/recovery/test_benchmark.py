"""benchmarks/imder_eval_cost.py runs and prints its table (timings are never asserted)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "imder_eval_cost.py"


def test_the_eval_cost_benchmark_prints_every_model(monkeypatch, capsys):
    spec = importlib.util.spec_from_file_location("imder_eval_cost", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(sys, "argv", ["imder_eval_cost.py", "--steps", "1", "2", "--rounds", "1",
                                      "--set", "data.labels=240", "--set", "data.unlabeled=0",
                                      "--set", "data.n_test=500"])   # what is printed, not how long
    threads = module.torch.get_num_threads()
    try:
        module.main()
    finally:
        module.torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "zero-filled (reconstructor null)" in out
    assert "imder_diffusion, 1 steps" in out and "imder_diffusion, 2 steps" in out
    assert "torch threads 1" in out and "load average" in out
