"""A run: a validated recipe, a fresh run directory, and one trial per (fold, seed)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import distributed as dist
from .builder import Builder
from .errors import MmtkError
from .metrics import describe, summarize_trials
from .plugins import PluginSystem
from .recipe import Recipe, resolve
from .report import write_csv
from .rundir import environment, new_run_dir, write_json, write_yaml
from .trainer import Progress, Trainer, TrialSpec, quiet


def trials_of(recipe: Recipe, system: PluginSystem, directory: Path) -> list[TrialSpec]:
    folds = recipe.data.folds
    if folds == "all":
        folds = Builder(system.registry).dataset(recipe.data.dataset).folds()
    return [TrialSpec(fold, seed, directory / "trials" / TrialSpec(fold, seed, directory).key)
            for fold in (folds or [None]) for seed in recipe.seeds]


@dataclass
class Run:
    recipe: Recipe
    system: PluginSystem
    directory: Path
    device: str | None = None
    progress: Progress = quiet
    results: dict = field(default_factory=dict)
    jobs: int = 1
    plugins_dir: str | None = None

    @classmethod
    def create(cls, recipe: Recipe, system: PluginSystem, **kw: Any) -> "Run":
        directory = None
        if dist.is_main():  # under torchrun only rank 0 creates and writes the run folder
            directory = new_run_dir(Path(recipe.output.dir), recipe.name)
            write_yaml(directory / "recipe.yaml", recipe.tree)
            env = environment(system.statuses)
            env["world_size"], env["recipe_source"] = dist.world_size(), str(recipe.source)
            write_json(directory / "environment.json", env)
        directory = dist.broadcast_object(directory)
        return cls(recipe, system, directory, **kw)

    @classmethod
    def resume(cls, directory: str | Path, system: PluginSystem, **kw: Any) -> "Run":
        """The run of ``directory``, its saved recipe resolved exactly as a new one is."""
        directory = Path(directory)
        saved = directory / "recipe.yaml"
        if not saved.is_file():
            raise MmtkError(f"cannot resume '{directory}': it has no recipe.yaml, so it is not an "
                            "mmtk run directory")
        return cls(resolve(saved, system), system, directory, **kw)

    def execute(self) -> dict:
        self.system.call_run_start(self)
        trials = trials_of(self.recipe, self.system, self.directory)
        self.progress("run_start", directory=str(self.directory), trials=len(trials))
        if self.jobs > 1 and len(trials) > 1 and not dist.active():
            per_trial, failed = run_trials_in_parallel(self, trials)
        else:
            per_trial, failed = {}, {}
            for spec in trials:
                self.progress("trial_start", trial=spec.key)
                trainer = Trainer(self.recipe, self.system.registry, self.device, self.progress)
                per_trial[spec.key] = trainer.run(spec)
        summary = summarize_trials(list(per_trial.values()))
        self.results = {"name": self.recipe.name, "directory": str(self.directory),
                        "trials": per_trial, "summary": summary,
                        "metrics_info": metrics_info(self.recipe, self.system.registry)}
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


def metrics_info(recipe: Recipe, registry: Any) -> dict:
    """How each evaluated metric reads and is shown (saved so reports need no registry)."""
    return describe(Builder(registry).metrics(recipe.eval.metrics))


def _trial_worker(recipe: Recipe, spec: TrialSpec, device: str | None, threads: int,
                  plugins_dir: str | None, events: Any) -> dict:
    """Runs one trial in a child process; progress events go back through a queue."""
    import torch
    from .plugins import load_plugins

    torch.set_num_threads(threads)
    system = load_plugins(plugins_dir=plugins_dir)
    for item in recipe.imports:  # absolute since the recipe was resolved
        system.load_file(item)
    trainer = Trainer(recipe, system.registry, device, lambda event, **info: events.put((event, info)))
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
        futures = {pool.submit(_trial_worker, run.recipe, spec, run.device, threads, run.plugins_dir, events): spec
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
