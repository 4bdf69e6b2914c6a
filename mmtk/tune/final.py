"""After the search: ``best.yaml`` (a complete recipe extending the original with the chosen
values), then that configuration trained and evaluated on test once, as an ordinary run inside
the tuning folder. Rerunning a finished study reuses that run instead of testing again."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from ..rundir import atomic_write_text, read_json, write_json
from .engine import TuneError
from .recipe_values import best_tree, overrides_for
from .space import parse_space

TEST_LABEL = "test (evaluated once, after selection on validation)"


def write_best(folder: Path, definition: dict, trial: Any, system: Any) -> Path:
    """``best.yaml`` for ``trial``; checked like any recipe before it is used."""
    from ..recipe import apply_overrides, check

    params = parse_space(definition["space"], definition["space_file"])
    base_tree = apply_overrides(definition["tree"], list(definition["overrides"]))
    overrides = list(definition["overrides"]) + overrides_for(params, dict(trial.params), base_tree)
    tree = best_tree(definition["recipe"], overrides, apply_overrides(definition["tree"], overrides))
    tree = {"extends": tree.pop("extends"), "name": f"{definition['tree'].get('name', 'run')}-tuned", **tree}
    header = (f"# chosen by mmtk tune on validation only: trial {trial.number}, val "
              f"{definition['monitor']} = {trial.value:.6g}\n# (the study and its trials: {folder})\n")
    path = folder / "best.yaml"
    atomic_write_text(path, header + yaml.safe_dump(tree, sort_keys=False))
    report = check(path, system)
    if report.problems:
        raise TuneError(f"{path} does not validate ({'; '.join(map(str, report.problems))}); this is a "
                        "bug in mmtk tune, please report it")
    return path


def _reusable(record_path: Path, trial_number: int, best_text: str) -> dict | None:
    if not record_path.is_file():
        return None
    record = read_json(record_path, "tuning result")
    run_dir = Path(record.get("run_dir", ""))
    if (record.get("trial") != trial_number or record.get("best_yaml") != best_text
            or not (run_dir / "metrics.json").is_file()):
        return None
    return record


def evaluate_best(best: Path, folder: Path, trial: Any, system: Any, run_options: dict) -> dict:
    """Trains ``best.yaml`` as an ordinary run (its folder inside ``folder``) and returns its
    results; a recorded run of the same trial and recipe is reused, never tested twice."""
    from ..recipe import resolve
    from ..run import Run, read_results

    record_path = folder / "final.json"
    text = best.read_text()
    record = _reusable(record_path, trial.number, text)
    if record is not None:
        return {**read_results(record["run_dir"]), "reused": True}
    recipe = resolve(best, system, [f"output.dir={json.dumps(str(folder.resolve()))}"])
    run = Run.create(recipe, system, device=run_options.get("device"))
    run.jobs, run.plugins_dir = run_options.get("jobs", 1), run_options.get("plugins_dir")
    run.progress = run_options.get("progress") or run.progress
    results = run.execute()
    write_json(record_path, {"trial": trial.number, "value": trial.value, "params": trial.params,
                             "run_dir": str(run.directory), "best_yaml": text, "label": TEST_LABEL,
                             "test": results["summary"].get("test")})
    return {**results, "reused": False}
