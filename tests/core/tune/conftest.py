"""Fixtures of the mmtk tune tests: a tiny recipe on the embedded synthetic data, a space,
the command in a subprocess, and the study read back through Optuna."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TINY = """\
mmtk: 1
name: tiny
seed: 0
data: {type: synthetic, n_samples: 200, dims: {audio: 8, text: 8, visual: 8}}
missing:
  train: {type: six_conditions}
  eval: {type: six_conditions}
model:
  latent_dim: 16
  encoders: {audio: {type: mlp}, text: {type: mlp}, visual: {type: mlp}}
  fuser: {type: concat}
  head: {type: mlp, hidden: [16]}
losses: {task: {type: cross_entropy}}
train:
  epochs: 2
  batch_size: 64
  optimizer: {type: adam, lr: 1e-3}
eval: {batch_size: 512}
output: {dir: runs}
"""

SPACE = """\
train.optimizer.lr: {float: [1e-4, 1e-2], log: true}
model.latent_dim: {int: [8, 32], step: 8}
"""


@pytest.fixture
def tiny_recipe(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


@pytest.fixture
def space_file(tmp_path: Path) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(SPACE)
    return path


def tune_env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


@pytest.fixture
def tune_cli(tmp_path: Path):
    """Runs `python -m mmtk tune ARGS` in tmp_path; returns the CompletedProcess (or, with
    background=True, the Popen)."""
    def run(*args: str, background: bool = False, timeout: float = 240):
        cmd = [sys.executable, "-m", "mmtk", "tune", *args]
        if background:
            return subprocess.Popen(cmd, cwd=tmp_path, env=tune_env(), stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
        return subprocess.run(cmd, cwd=tmp_path, env=tune_env(), capture_output=True, text=True,
                              timeout=timeout)
    return run


@pytest.fixture
def only_study():
    """The single study of a storage URL, through Optuna itself."""
    def load(url: str):
        import optuna

        names = optuna.get_all_study_names(url)
        assert len(names) == 1, names
        return optuna.load_study(study_name=names[0], storage=url)
    return load


def study_db(root: Path) -> Path:
    found = sorted(root.glob("runs/tiny/tune-*/study.db"))
    assert len(found) == 1, found
    return found[0]


@pytest.fixture
def find_db():
    return study_db
