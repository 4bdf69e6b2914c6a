"""A run: a validated recipe, a fresh run directory, and one trial per (fold, seed)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import distributed as dist
from .builder import Builder
from .engine import Progress, Trainer, TrialSpec, _quiet
from .errors import MmtkError, Problem, RecipeError
from .metrics import describe, summarize_trials
from .plugins import PluginSystem
from .recipe import apply_overrides, interpolate_env, read_recipe_tree, seeds_of, validate, with_defaults
from .report import write_csv
from .rundir import environment, new_run_dir, write_json, write_yaml


def load_tree(recipe: str | Path, system: PluginSystem, overrides: list[str] = ()) -> dict:
    """Read, extend, override and validate a recipe; return it with every default filled in."""
    named = {name: entry.path for name, entry in system.recipes.items()}
    tree = read_recipe_tree(recipe, named)
    tree = apply_overrides(tree, list(overrides))
    tree, env_problems = interpolate_env(tree)
    problems = env_problems + check_tree(tree, system)
    if problems:
        raise RecipeError(problems, tree.get("_source"))
    return with_defaults(tree)


def check_tree(tree: dict, system: PluginSystem) -> list[Problem]:
    """Load the recipe's local plugin files, then collect every problem."""
    problems: list[Problem] = []
    base = Path(tree.get("_base_dir", "."))
    for i, item in enumerate(tree.get("imports") or []):
        status = system.load_file(base / item if not Path(item).is_absolute() else item)
        if status.status != "ok":
            problems.append(Problem(f"imports[{i}]", f"plugin file '{item}' failed: {status.error}"))
    builder = Builder(system.registry, base)

    def modalities(data_block: dict) -> Any:
        try:
            return builder.dataset(data_block).modalities
        except MmtkError as exc:
            problems.append(Problem("data", str(exc)))
        except Exception as exc:  # constructor rejected its parameters
            problems.append(Problem("data", f"dataset '{data_block.get('type')}' could not be "
                                    f"set up: {type(exc).__name__}: {exc}"))
        return None

    return validate(tree, system.registry, modalities) + problems


def trials_of(tree: dict, system: PluginSystem, directory: Path) -> list[TrialSpec]:
    folds = tree["data"].get("folds")
    if folds == "all":
        folds = Builder(system.registry, tree.get("_base_dir")).dataset(tree["data"]).folds()
    folds = folds or [None]
    seeds = seeds_of(tree)
    specs = []
    for fold in folds:
        for seed in seeds:
            key = (f"fold{fold}-" if fold is not None else "") + f"seed{seed}"
            specs.append(TrialSpec(fold, seed, directory / "trials" / key))
    return specs


@dataclass
class Run:
    tree: dict
    system: PluginSystem
    directory: Path
    device: str | None = None
    progress: Progress = _quiet
    results: dict = field(default_factory=dict)
    jobs: int = 1
    plugins_dir: str | None = None

    @property
    def recipe(self) -> dict:
        return self.tree

    @classmethod
    def create(cls, tree: dict, system: PluginSystem, **kw: Any) -> "Run":
        name = tree.get("name") or Path(tree.get("_source", "run")).stem
        directory = None
        if dist.is_main():  # under torchrun only rank 0 creates and writes the run folder
            directory = new_run_dir(Path(tree["output"]["dir"]), name)
            saved = {k: v for k, v in tree.items() if not k.startswith("_")}
            saved["_source"], saved["_base_dir"] = tree.get("_source"), tree.get("_base_dir")
            write_yaml(directory / "recipe.yaml", saved)
            env = environment(system.statuses)
            env["world_size"] = dist.world_size()
            write_json(directory / "environment.json", env)
        directory = dist.broadcast_object(directory)
        return cls(tree, system, directory, **kw)

    @classmethod
    def resume(cls, directory: str | Path, system: PluginSystem, **kw: Any) -> "Run":
        directory = Path(directory)
        recipe = directory / "recipe.yaml"
        if not recipe.is_file():
            raise MmtkError(f"cannot resume '{directory}': it has no recipe.yaml, so it is not an "
                            "mmtk run directory")
        tree = yaml.safe_load(recipe.read_text())
        problems = check_tree(tree, system)
        if problems:
            raise RecipeError(problems, str(recipe))
        return cls(tree, system, directory, **kw)

    def execute(self) -> dict:
        self.system.call_run_start(self)
        trials = trials_of(self.tree, self.system, self.directory)
        self.progress("run_start", directory=str(self.directory), trials=len(trials))
        if self.jobs > 1 and len(trials) > 1 and not dist.active():
            per_trial, failed = run_trials_in_parallel(self, trials)
        else:
            per_trial, failed = {}, {}
            for spec in trials:
                self.progress("trial_start", trial=spec.key)
                trainer = Trainer(self.tree, self.system.registry, self.device, self.progress)
                per_trial[spec.key] = trainer.run(spec)
        summary = summarize_trials(list(per_trial.values()))
        self.results = {"name": self.tree.get("name"), "directory": str(self.directory),
                        "trials": per_trial, "summary": summary,
                        "metrics_info": metrics_info(self.tree, self.system.registry)}
        if failed:
            self.results["failed"] = failed
        if dist.is_main():
            write_json(self.directory / "metrics.json", self.results)
            write_csv(self.directory / "metrics.csv", per_trial, summary)
        self.system.call_run_end(self, self.results)
        if failed:
            raise MmtkError(f"{len(failed)} of {len(trials)} trial(s) failed (the others finished and are "
                            f"summarised in {self.directory / 'metrics.json'}): " +
                            "; ".join(f"{k}: {v}" for k, v in failed.items()))
        return self.results


def metrics_info(tree: dict, registry: Any) -> dict:
    """How each evaluated metric reads and is shown (saved so reports need no registry)."""
    return describe(Builder(registry, tree.get("_base_dir")).metrics(tree["eval"]["metrics"]))


def _trial_worker(tree: dict, spec: TrialSpec, device: str | None, threads: int,
                  plugins_dir: str | None, events: Any) -> dict:
    """Runs one trial in a child process; progress events go back through a queue."""
    import torch
    from .plugins import load_plugins

    torch.set_num_threads(threads)
    system = load_plugins(plugins_dir=plugins_dir)
    for item in tree.get("imports") or []:
        system.load_file(Path(tree.get("_base_dir", ".")) / item)
    trainer = Trainer(tree, system.registry, device, lambda event, **info: events.put((event, info)))
    return trainer.run(spec)


def run_trials_in_parallel(run: "Run", trials: list[TrialSpec]) -> tuple[dict, dict]:
    """Independent trials in ``run.jobs`` processes, threads split between them. A failed
    trial is reported; the others finish."""
    import multiprocessing as mp
    import os
    import queue as queue_mod
    from concurrent.futures import ProcessPoolExecutor

    ctx = mp.get_context("spawn")
    manager = ctx.Manager()
    events = manager.Queue()
    threads = max(1, (os.cpu_count() or 1) // run.jobs)
    per_trial, failed = {}, {}
    with ProcessPoolExecutor(max_workers=run.jobs, mp_context=ctx) as pool:
        futures = {pool.submit(_trial_worker, run.tree, spec, run.device, threads, run.plugins_dir, events): spec
                   for spec in trials}
        for spec in trials:
            run.progress("trial_start", trial=spec.key)
        pending = set(futures)
        while pending:
            try:
                event, info = events.get(timeout=0.2)
                run.progress(event, **info)
            except queue_mod.Empty:
                pass
            for fut in [f for f in pending if f.done()]:
                pending.discard(fut)
                spec = futures[fut]
                try:
                    per_trial[spec.key] = fut.result()
                except Exception as exc:  # reported, and the other trials go on
                    failed[spec.key] = f"{type(exc).__name__}: {exc}"
                    run.progress("trial_failed", trial=spec.key, error=failed[spec.key])
    while True:  # drain the last events
        try:
            event, info = events.get_nowait()
            run.progress(event, **info)
        except queue_mod.Empty:
            break
    manager.shutdown()
    order = [t.key for t in trials]
    return {k: per_trial[k] for k in order if k in per_trial}, failed


def read_results(directory: str | Path) -> dict:
    path = Path(directory) / "metrics.json"
    if not path.is_file():
        raise MmtkError(f"'{directory}' has no metrics.json: the run did not finish "
                        f"(resume it with: mmtk run --resume {directory})")
    return json.loads(path.read_text())
