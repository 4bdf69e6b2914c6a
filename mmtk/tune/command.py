"""``mmtk tune``: check the space, run the workers, then report, write best.yaml and test once."""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from ..console import is_terminal
from ..rundir import write_json
from .engine import TuneError, require_optuna
from .final import TEST_LABEL, evaluate_best, write_best
from .objective import trial_setup_note
from .report import best_so_far, importances, progress_line, top_table, write_plots, write_trials_csv
from .setup import OpenedStudy, build_definition, open_shared_study, trial_setup, tune_folder
from .storage import default_url, open_storage, shown
from .study import fail_orphaned_trials, open_study, study_name, tally
from .workers import WorkerConfig, make_pruner, make_sampler, run_processes, work


def say(text: str) -> None:
    print(text, flush=True)


def _overrides(args: argparse.Namespace) -> list[str]:
    from ..commands import _recipe_overrides
    return _recipe_overrides(args)


def start_study(args: argparse.Namespace, system: Any, optuna: Any) -> OpenedStudy:
    """The study of this command line: checked, created or continued."""
    if not args.recipe:
        raise TuneError("mmtk tune needs RECIPE with --space FILE and --trials N (or a tune: section "
                        "in the recipe), or --join STUDY --storage URL to work on an existing study; "
                        "see mmtk tune --help")
    given = {k: getattr(args, k) for k in ("sampler", "sampler_seed", "pruner", "prune_after")}
    definition, base = build_definition(args.recipe, _overrides(args), args.space, system, given)
    args.trials = args.trials or (base.tune.trials if base.tune is not None else None)
    if not args.trials:
        raise TuneError("mmtk tune needs the number of trials: --trials N, or tune.trials in the recipe")
    sampler, pruner = definition["sampler"], definition["pruner"]
    name = args.study or study_name(definition)
    folder = tune_folder(base, name)
    folder.mkdir(parents=True, exist_ok=True)
    url = args.storage or default_url(folder)
    storage = open_storage(url, optuna)
    study, definition, _ = open_study(optuna, storage, url, name, definition, args.trials,
                                      make_sampler(optuna, sampler, 0, 0), make_pruner(optuna, pruner))
    # the sampler's seed counts the trials already in the study, known only once it is open;
    # the one built above is a placeholder optuna needs to open it (building one is cheap)
    study.sampler = make_sampler(optuna, sampler, 0, len(study.trials))
    write_json(folder / "study.json", {"study": name, "storage": shown(url), "trials": args.trials,
                                       "recipe": definition["recipe"], "overrides": definition["overrides"],
                                       "space": definition["space"], "monitor": definition["monitor"],
                                       "direction": definition["direction"]})
    return OpenedStudy(optuna, storage, study, definition, trial_setup(definition, system, folder, args.device),
                       folder, system)


def run_workers(opened: OpenedStudy, args: argparse.Namespace, url: str, budget: int) -> None:
    """The command's workers: in this process (--jobs 1) or K processes; progress lines."""
    optuna = opened.optuna
    last = [""]

    def report() -> None:
        line = progress_line(tally(opened.study, optuna), budget_now(), best_so_far(opened.study, optuna))
        if line != last[0] and not args.quiet:
            say(line)
        last[0] = line

    def budget_now() -> int:
        from .study import BUDGET
        return int(opened.study.user_attrs.get(BUDGET) or budget)

    # the run's thread policy: idle cores split across the workers, each trial's stages probing
    # their model up to that share (mmtk.threads, mmtk.thread_probe)
    from .. import threads as thread_policy

    choice = thread_policy.choose("auto", args.jobs)
    if args.jobs == 1:
        thread_policy.apply(choice)
        work(opened.study, opened.storage, opened.setup, opened.folder, optuna, lambda _: report())
        return
    configs = [WorkerConfig(url, opened.study.study_name, str(opened.folder), args.device, args.plugins_dir,
                            choice, i) for i in range(args.jobs)]
    codes = run_processes(configs, report)
    if any(codes):
        raise TuneError(f"{sum(1 for c in codes if c)} of {args.jobs} worker process(es) stopped with an "
                        f"error (exit codes {codes}); the study is kept, rerun the command to continue")


def wait_for_running(opened: OpenedStudy, quiet: bool, poll: float = 2.0) -> None:
    """Trials still running elsewhere (--join workers) finish before the best is chosen."""
    told = False
    while True:
        fail_orphaned_trials(opened.study, opened.storage, opened.optuna)
        running = tally(opened.study, opened.optuna).running
        if not running:
            return
        if not told and not quiet:
            say(f"tune: waiting for {running} trial(s) still running in other workers")
            told = True
        time.sleep(poll)


def summarise(opened: OpenedStudy, budget: int) -> Any:
    """Tables, importances and plots; returns the best trial (an error when none completed)."""
    optuna, study, monitor = opened.optuna, opened.study, opened.definition["monitor"]
    paths = [p.path for p in opened.setup.params]
    t = tally(study, optuna)
    say("tune: finished. " + progress_line(t, budget, best_so_far(study, optuna)).removeprefix("tune: "))
    write_trials_csv(opened.folder / "trials.csv", study, paths)
    for tr in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,)):
        if "error" in tr.user_attrs:
            say(f"  trial {tr.number} failed: {tr.user_attrs['error']}")
    if not t.complete:
        raise TuneError(f"none of the {t.counted} trial(s) of study '{study.study_name}' completed "
                        f"({t.pruned} pruned, {t.failed} failed); see {opened.folder / 'trials.csv'}")
    say(top_table(study, optuna, paths, monitor, is_terminal()).rstrip())
    found, why = importances(study, optuna)
    write_json(opened.folder / "importances.json", {"importances": found, "note": why})
    say("parameter importances (Optuna's default evaluator): " +
        (", ".join(f"{k} {v:.3f}" for k, v in found.items()) if found else f"not computed: {why}"))
    plots = write_plots(study, optuna, opened.folder, monitor)
    say(f"plots: {', '.join(map(str, plots))}" if isinstance(plots, list) else f"plots: none ({plots})")
    return study.best_trial


def test_best(opened: OpenedStudy, best: Any, args: argparse.Namespace) -> dict:
    from ..console import make_progress
    from ..report import render_table, summary_rows

    best_path = write_best(opened.folder, opened.definition, best, opened.system)
    say(f"best: trial {best.number}, val {opened.definition['monitor']} {best.value:.6g}; recipe {best_path}")
    options = {"device": args.device, "jobs": args.jobs, "plugins_dir": args.plugins_dir,
               "progress": make_progress(True)}
    results = evaluate_best(best_path, opened.folder, best, opened.system, options)
    header, rows = summary_rows(results["summary"], "test", info=results.get("metrics_info"))
    title = f"{results.get('name')}: {TEST_LABEL}, mean ± std over {len(results['trials'])} trial(s)"
    say(render_table(header, rows, title, rich_output=is_terminal()).rstrip())
    say(f"test run: {results['directory']}" + (" (recorded earlier; not evaluated again)"
                                               if results.get("reused") else ""))
    return results


def join(args: argparse.Namespace, system: Any, optuna: Any) -> int:
    if args.recipe or args.space:
        raise TuneError("--join takes the recipe and space stored with the study; drop RECIPE and --space")
    if not args.storage:
        raise TuneError("--join STUDY needs --storage URL (where the study lives)")
    opened = open_shared_study(args.storage, args.join, None, args.device, args.plugins_dir,
                               worker=os.getpid(), system=system)
    from .study import BUDGET
    budget = int(opened.study.user_attrs.get(BUDGET) or 0)
    say(f"tune: joined study '{args.join}' at {shown(args.storage)}; trials go to {opened.folder}")
    run_workers(opened, args, args.storage, budget)
    say(progress_line(tally(opened.study, optuna), budget, best_so_far(opened.study, optuna)))
    say("tune: this worker's share is done; the command that started the study chooses the best "
        "trial and evaluates it on test")
    return 0


def tune_command(args: argparse.Namespace, system: Any) -> int:
    optuna = require_optuna()
    if args.join:
        return join(args, system, optuna)
    opened = start_study(args, system, optuna)
    url = args.storage or default_url(opened.folder)
    before = tally(opened.study, optuna)
    say(f"tune: study '{opened.study.study_name}' in {opened.folder} (storage {shown(url)}); "
        f"{before.counted} of {args.trials} trial(s) done before this command")
    say(f"tune: {trial_setup_note(opened.definition)}; more workers: mmtk tune --join "
        f"{opened.study.study_name} --storage {shown(url)}")
    try:
        run_workers(opened, args, url, args.trials)
    except KeyboardInterrupt:
        print(f"interrupted; rerun the same command to continue the study in {opened.folder}", file=sys.stderr)
        return 130
    wait_for_running(opened, args.quiet)
    best = summarise(opened, args.trials)
    test_best(opened, best, args)
    return 0

