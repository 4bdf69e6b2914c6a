"""Shared fixtures. Tests have no __init__.py (importlib mode), so helpers live here."""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from mmtk.plugins import load_plugins
from mmtk.recipe import Recipe, resolve
from mmtk.run import Run

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes"


def pytest_configure(config):
    """The suite uses the toolkit's own thread policy (mmtk.threads), as a run does."""
    from mmtk import thread_probe, threads

    threads.apply(threads.choose("auto"))
    # the suite trains hundreds of tiny models of different shapes, each probed once: short
    # rounds keep that cheap (the rounds and the choice rule run as in a run; a run's longer
    # rounds are there to make its choice reliable, which no test times)
    thread_probe.TARGET_SECONDS, thread_probe.MAX_STEPS = 0.01, 10


@pytest.fixture(scope="session")
def system():
    """All installed plugins (built-ins via the entry-point group), loaded once."""
    return load_plugins()


def hide_matplotlib(monkeypatch) -> None:
    """Make ``import matplotlib`` fail for the rest of the test (as on an install without the
    plot extra)."""
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)


# The shipped method recipes train on latent_views (the default benchmark: 3,200 training
# samples); tests of the machinery use 240 samples of the complete, labelled synthetic control.
def control_data(n_samples: int) -> str:
    """A ``--set`` that puts a recipe on n_samples of the synthetic control (complete, labelled)."""
    return f"data={{type: synthetic, sample_seed: trial, n_test: 10000, n_samples: {n_samples}}}"


TINY_DATA = control_data(240)


def tiny_overrides(epochs: int = 2) -> list[str]:
    """Shrink a recipe to seconds: small synthetic data, few epochs, one seed."""
    return [f"train.epochs={epochs}", "seed=0", TINY_DATA, "eval.batch_size=512"]


def prepare(system, recipe, tmp_path: Path, overrides: list[str] = ()) -> Recipe:
    """A resolved recipe (a mapping's relative paths are relative to tmp_path), writing runs
    under tmp_path."""
    return resolve(copy.deepcopy(recipe) if isinstance(recipe, dict) else recipe, system,
                   list(overrides) + [f"output.dir={tmp_path / 'runs'}"], base_dir=tmp_path)


def run_recipe(system, recipe, tmp_path: Path, overrides: list[str] = ()) -> dict:
    """Run a recipe end to end (no progress output) and return its results dict."""
    tree = prepare(system, recipe, tmp_path, overrides)
    return Run.create(tree, system).execute()


@pytest.fixture
def run_tiny(system, tmp_path):
    """``run_tiny(recipe_path_or_dict, extra_overrides)`` -> results, shrunk by tiny_overrides()."""
    def run(recipe, overrides=(), epochs: int = 2):
        return run_recipe(system, recipe, tmp_path, tiny_overrides(epochs) + list(overrides))
    return run


@pytest.fixture
def prepare_tree(system, tmp_path):
    """``prepare_tree(recipe, overrides)`` -> resolved recipe (no tiny shrink)."""
    return lambda recipe, overrides=(): prepare(system, recipe, tmp_path, overrides)


def write_scored_arrays(root, n: int = 400, seed: int = 0) -> np.ndarray:
    """An `arrays` dataset (three .npy modalities, labels.csv, scores.csv) whose regression
    score is a linear function of audio and text plus noise."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    x = {"audio": rng.normal(size=(n, 4)), "text": rng.normal(size=(n, 6)), "visual": rng.normal(size=(n, 3))}
    for m, a in x.items():
        np.save(root / f"{m}.npy", a.astype(np.float32))
    score = 1.5 * x["text"][:, 0] - x["audio"][:, 1] + 0.1 * rng.normal(size=n)
    ids = [f"s{i:03d}" for i in range(n)]
    (root / "ids.txt").write_text("\n".join(ids) + "\n")
    (root / "labels.csv").write_text("id,label\n" + "".join(f"{i},{int(s >= 0)}\n" for i, s in zip(ids, score)))
    (root / "scores.csv").write_text("id,score\n" + "".join(f"{i},{s:.6f}\n" for i, s in zip(ids, score)))
    return score


def fails_with(capsys, argv, *fragments) -> str:
    """Run the CLI; assert exit status 2, no traceback, and every fragment in stderr."""
    from mmtk.cli import main

    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    for f in fragments:
        assert f in err, f"{f!r} not in:\n{err}"
    return err
