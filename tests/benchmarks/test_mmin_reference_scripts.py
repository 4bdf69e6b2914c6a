"""The MMIN reference-comparison scripts: corpus lengths and the reference log's timing."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "benchmarks" / "mmin_reference"


def _module(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_write_corpus_draws_audio_lengths_in_the_asked_range(tmp_path):
    subprocess.run([sys.executable, str(SCRIPTS / "write_corpus.py"), str(tmp_path), "--n", "80",
                    "--frames", "30", "4", "4", "--min-audio-frames", "5"], check=True, capture_output=True)
    with h5py.File(tmp_path / "A" / "comparE.h5", "r") as f:
        lengths = np.array([f[k].shape[0] for k in f])
    assert len(lengths) == 80 and lengths.min() >= 5 and lengths.max() <= 30
    assert lengths.min() < 15 and lengths.max() > 20      # spread over the range, not [T/2, T]
    bad = subprocess.run([sys.executable, str(SCRIPTS / "write_corpus.py"), str(tmp_path / "x"), "--n", "8",
                          "--frames", "30", "4", "4", "--min-audio-frames", "31"], capture_output=True, text=True)
    assert bad.returncode != 0 and "--min-audio-frames must lie in [1, 30]" in bad.stderr


def test_reference_log_rate_reads_its_epoch_times():
    log = ("2026-12-01 18:39:35,974 - INFO - The number of training samples = 2400\n"
           "2026-12-01 18:40:16,983 - INFO - End of training epoch 1 / 2 \t Time Taken: 8.000 sec\n"
           "2026-12-01 18:40:26,983 - INFO - End of training epoch 2 / 2 \t Time Taken: 4.000 sec\n")
    throughput = _module("throughput")
    assert throughput.log_rate(log) == 2 * 2400 / 12.0
    with pytest.raises(SystemExit, match="no 'Time Taken'"):
        throughput.log_rate("a log of a run that never finished an epoch\n")
