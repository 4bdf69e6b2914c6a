"""A run: a validated recipe, a fresh run directory, and one trial per (fold, seed)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import distributed as dist
from .builder import Builder
from .card import write_card
from .errors import MmtkError
from .metrics import describe, summarize_trials
from .plugins import PluginSystem
from .recipe import Recipe, resolve
from .report import BOUND_KEY, dataset_bounds, write_csv
from .rundir import WriteError, environment, new_run_dir, read_json, remove_temporary_files, write_json, write_yaml
from .threads import ThreadChoice, ThreadSetting
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
    discarded: bool = False     # set when a failed run left nothing and its folder was removed
    threads: ThreadSetting | None = None   # --threads; None: the recipe's train.threads
    thread_choice: ThreadChoice | None = None  # what the thread policy chose (set by execute)

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
        """Runs every trial. A failure that left nothing to resume removes the run folder; a
        failed write says how to resume."""
        if dist.is_main():
            remove_temporary_files(self.directory)  # left by a write that was interrupted
        try:
            return self._execute()
        except BaseException as exc:
            self.discarded = dist.is_main() and discard_if_nothing_saved(self.directory)
            if isinstance(exc, WriteError) and not self.discarded:
                raise WriteError(f"{exc} Continue with: mmtk run --resume {self.directory}") from None
            raise

    def _apply_thread_policy(self) -> None:
        """Choose and set torch's threads (per worker with --jobs) and record the choice."""
        from . import threads

        setting = self.threads if self.threads is not None else self.recipe.first_stage.train.threads
        self.thread_choice = threads.choose(setting, self.jobs)
        threads.apply(self.thread_choice)
        path = self.directory / "environment.json"
        if dist.is_main() and path.is_file():  # every execution (a resume too) is recorded
            env = read_json(path, "environment file")
            env["threads"] = self.thread_choice.count
            env["thread_policy"] = [*env.get("thread_policy", []), self.thread_choice.as_record()]
            write_json(path, env)

    def _execute(self) -> dict:
        self._apply_thread_policy()
        self.system.call_run_start(self)
        trials = trials_of(self.recipe, self.system, self.directory)
        self.progress("run_start", directory=str(self.directory), trials=len(trials))
        if self.jobs > 1 and len(trials) > 1 and not dist.active():
            from .parallel import run_trials_in_parallel
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
        bounds = dataset_bounds(self.directory, list(per_trial))   # the dataset's, if it gives one
        if bounds:
            self.results[BOUND_KEY] = bounds
        if failed:
            self.results["failed"] = failed
        if dist.is_main():
            write_json(self.directory / "metrics.json", self.results)
            write_csv(self.directory / "metrics.csv", per_trial, summary, bounds)
            write_card(self.recipe, self.directory)
        self.system.call_run_end(self, self.results)
        if failed:
            raise MmtkError(f"{len(failed)} of {len(trials)} trial(s) failed (the others finished and are "
                            f"summarised in {self.directory / 'metrics.json'}): " +
                            "; ".join(f"{k}: {v}" for k, v in failed.items()))
        return self.results


def discard_if_nothing_saved(directory: Path) -> bool:
    """Remove a run folder that holds no trained state (only its recipe and environment), so
    a failed start leaves no empty run behind. Returns whether it was removed."""
    import shutil

    saved = [p for p in (directory / "trials").rglob("*.pt")] if (directory / "trials").is_dir() else []
    if saved or (directory / "metrics.json").exists() or not directory.is_dir():
        return False
    shutil.rmtree(directory, ignore_errors=True)
    return True


def metrics_info(recipe: Recipe, registry: Any) -> dict:
    """How each evaluated metric reads and is shown (saved so reports need no registry)."""
    return describe(Builder(registry).metrics(recipe.eval.metrics))


def read_results(directory: str | Path) -> dict:
    path = Path(directory) / "metrics.json"
    if not path.is_file():
        raise MmtkError(f"'{directory}' has no metrics.json: the run did not finish "
                        f"(resume it with: mmtk run --resume {directory})")
    results = read_json(path, "results file")
    if not isinstance(results, dict) or "summary" not in results or "trials" not in results:
        raise MmtkError(f"{path} is not the results file of an mmtk run (no summary / trials)")
    return results
