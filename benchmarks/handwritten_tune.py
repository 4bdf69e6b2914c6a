"""Tune every UCI Handwritten method on validation only, then write its tuned recipe.

Each recipe is put on Handwritten exactly as benchmarks/handwritten.py puts it there (its
``adapt`` overrides), at missing rate η = 0.5, and searched with ``mmtk tune`` (the space
file of the method, 16 trials, seeds 0 and 1: the budget every method gets). The best
configuration is written to benchmarks/recipes/handwritten-tuned/<name>.yaml, a recipe that
benchmarks/handwritten.py runs at every η.

    python benchmarks/handwritten_tune.py                      # every method
    python benchmarks/handwritten_tune.py ae-impute momke      # some of them
    python benchmarks/handwritten_tune.py --print ae-impute    # the mmtk tune command only
"""
from __future__ import annotations

import argparse
import csv
import functools
import importlib.util
import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "recipes" / "handwritten-tuned"
# recipe -> its search space (benchmarks/tune/<space>-space.yaml)
SPACES = {"handwritten": "handwritten", "late-fusion-handwritten": "late-fusion-handwritten",
          "cmarr-handwritten": "cmarr", "mean-impute": "handwritten", "ae-impute": "ae-impute",
          "cra-impute": "cra-impute", "mmin-utterance": "mmin-utterance",
          "if-mmin-utterance": "if-mmin-utterance", "momke": "momke", "dicmor": "dicmor", "imder": "imder"}
SETTING = ["data.missing_rate=0.5", "train.patience=8"]
BUDGET = ["--trials", "16", "--seeds", "0", "1", "--jobs", "2"]


@functools.lru_cache(maxsize=1)
def _handwritten_benchmark():
    """benchmarks/handwritten.py as a module (loaded once), for its ``adapt``."""
    spec = importlib.util.spec_from_file_location("handwritten_benchmark", REPO / "benchmarks" / "handwritten.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tune_command(system, recipe: str) -> list[str]:
    """``mmtk tune`` of ``recipe`` put on Handwritten at η = 0.5."""
    from mmtk.recipe import read_recipe_tree
    named = {n: e.path for n, e in system.recipes.items()}
    sets = _handwritten_benchmark().adapt(read_recipe_tree(recipe, named)) + SETTING
    cmd = ["mmtk", "tune", recipe, "--space", f"benchmarks/tune/{SPACES[recipe]}-space.yaml", *BUDGET]
    for item in sets:
        cmd += ["--set", item]
    return cmd


def _rounded(value):
    if isinstance(value, float):
        return float(f"{value:.3g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def tuned_name(recipe: str) -> str:
    return f"{recipe}-tuned" if "handwritten" in recipe else f"{recipe}-hw-tuned"


def write_tuned(recipe: str, folder: Path) -> Path:
    """benchmarks/recipes/handwritten-tuned/<name>.yaml from the study folder's best.yaml."""
    best_text = (folder / "best.yaml").read_text()
    best = yaml.safe_load(best_text)
    found = re.search(r"trial (\d+), val (\w+) = ([\d.]+)", best_text.splitlines()[0])
    rows = list(csv.DictReader(open(folder / "trials.csv")))
    states: dict[str, int] = {}
    for row in rows:
        states[row["state"].lower()] = states.get(row["state"].lower(), 0) + 1
    done = [float(r["value"]) for r in rows if r["state"] == "COMPLETE"]
    for key in ("seed", "extends", "name"):
        best.pop(key, None)
    name = tuned_name(recipe)
    body = {"extends": recipe, "name": name, **_rounded(best)}
    counts = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
    path = OUT / f"{name}.yaml"
    header = (f"# {recipe} on UCI Handwritten, its key hyper-parameters chosen on VALIDATION only by\n"
              f"# `mmtk tune` at eta = 0.5 (seeds 0 and 1; 16 trials, TPE seed 0, median pruner: {counts}),\n"
              f"# study {folder.name.removeprefix('tune-')}; best trial {found[1]}, val {found[2].upper()} "
              f"{float(found[3]):.4f} (completed trials span {min(done):.4f}-{max(done):.4f}).\n"
              f"# Made by: python benchmarks/handwritten_tune.py {recipe}\n"
              "# Used by: python benchmarks/handwritten.py --recipes "
              f"benchmarks/recipes/handwritten-tuned/{name}.yaml\n")
    OUT.mkdir(parents=True, exist_ok=True)
    path.write_text(header + yaml.safe_dump(body, sort_keys=False, default_flow_style=None))
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("recipes", nargs="*", default=list(SPACES), help="default: every Handwritten method")
    p.add_argument("--print", action="store_true", help="print the mmtk tune commands, run nothing")
    args = p.parse_args(argv)
    unknown = [r for r in args.recipes if r not in SPACES]
    if unknown:
        p.error(f"no search space for {', '.join(unknown)} (known: {', '.join(SPACES)})")
    from mmtk.plugins import load_plugins
    system = load_plugins()
    for recipe in args.recipes:
        cmd = tune_command(system, recipe)
        if args.print:
            print(shlex.join(cmd))
            continue
        done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        sys.stdout.write(done.stdout)
        if done.returncode != 0:
            print(f"{recipe}: mmtk tune failed\n{done.stderr}", file=sys.stderr)
            return done.returncode
        folder = re.search(r"study '[^']+' in (\S+)", done.stdout)[1]
        print(f"wrote {write_tuned(recipe, REPO / folder)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
