"""The core commands: run, validate, list, show, eval, compare. Each takes the parsed
arguments and returns an exit status; errors are raised as :class:`MmtkError` and reported by
:func:`mmtk.cli.main`. Heavy modules are imported inside each command, so ``--help`` stays fast."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .errors import MmtkError, RecipeError

EXIT_USER_ERROR = 2


def _system(args: argparse.Namespace) -> Any:
    from .plugins import get_plugin_system
    return get_plugin_system(strict=args.strict_plugins, plugins_dir=args.plugins_dir)


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


def matches(name: str, pattern: str | None) -> bool:
    """The listing filter: a glob (``cmarr*``) or a substring (``impute``) of the name."""
    import fnmatch
    return not pattern or fnmatch.fnmatch(name, pattern) or pattern in name


def cmd_list(args: argparse.Namespace) -> int:
    """Components, plugins or recipes whose name matches PATTERN; exit 1 when none does."""
    from .registry import KINDS

    system = _system(args)
    if args.what == "components":
        if args.kind and args.kind not in KINDS:
            raise MmtkError(f"unknown kind '{args.kind}'; kinds are {', '.join(KINDS)}")
        found = _list_components(system, args)
    elif args.what == "plugins":
        found = _list_plugins(system, args)
    else:
        found = _list_recipes(system, args)
    if not found:
        kind = f" of kind '{args.kind}'" if args.what == "components" and args.kind else ""
        which = f" matching '{args.pattern}'" if args.pattern else ""
        print(f"no {args.what}{kind}{which}", file=sys.stderr)
        return 1
    return 0


def _table(header: list[str], rows: list[list[str]]) -> None:
    from .console import is_terminal
    from .report import render_table
    print(render_table(header, rows, rich_output=is_terminal()), end="")


def _list_components(system: Any, args: argparse.Namespace) -> int:
    specs = system.registry.list(args.kind, args.pattern)
    if args.json:
        _print_json([{"kind": s.kind, "name": s.name, "provider": s.provider.plugin,
                      "distribution": s.provider.distribution, "version": s.provider.version,
                      "summary": s.summary} for s in specs])
    elif specs:
        _table(["kind", "name", "provider", "summary"],
               [[s.kind, s.name, str(s.provider), s.summary] for s in specs])
    return len(specs)


def _list_plugins(system: Any, args: argparse.Namespace) -> int:
    stats = [s for s in system.statuses.values() if matches(s.name, args.pattern)]
    if args.json:
        _print_json([vars(s) for s in stats])
    elif stats:
        _table(["plugin", "status", "distribution", "components", "source / error"],
               [[s.name, s.status, f"{s.distribution or '-'} {s.version or ''}".strip(), str(s.components),
                 s.error or s.source] for s in stats])
    return len(stats)


def _list_recipes(system: Any, args: argparse.Namespace) -> int:
    from .recipe.loading import recipe_description

    recs = sorted((r for r in system.recipes.values() if matches(r.name, args.pattern)), key=lambda r: r.name)
    described = [(r, r.summary or recipe_description(r.path)) for r in recs]
    if args.json:
        _print_json([{"name": r.name, "description": text, "path": str(r.path), "provider": r.provider.plugin}
                     for r, text in described])
    elif recs:
        _table(["recipe", "description", "provider", "path"],
               [[r.name, text, r.provider.plugin, str(r.path)] for r, text in described])
    return len(recs)


def cmd_show(args: argparse.Namespace) -> int:
    from .docs import description, parameter_docs, readable_type
    from .schema import context_names, signature_params

    if "/" not in args.target:
        raise MmtkError(f"expected KIND/NAME (e.g. encoder/lstm), got '{args.target}'")
    kind, name = args.target.split("/", 1)
    registry = _system(args).registry
    spec = registry.get(kind, name)
    meanings = parameter_docs(spec.obj)  # the docstring's "Parameters:" section
    params = [{"name": p.name, "type": readable_type(p.annotation),
               "default": None if p.required else p.default, "required": p.required,
               "context": p.name in context_names(spec.kind), "doc": meanings.get(p.name, "")}
              for p in signature_params(spec.obj)]
    info = {"kind": spec.kind, "name": spec.name, "provider": spec.provider.plugin,
            "distribution": spec.provider.distribution, "version": spec.provider.version,
            "object": f"{spec.obj.__module__}.{spec.obj.__qualname__}",
            "doc": description(spec.obj), "parameters": params,
            "aux_losses": list(getattr(spec.obj, "aux_losses", ()) or ()),
            "also_provided_by": [s.qualified_name for s in registry.entries[spec.kind][spec.name]
                                 if s is not spec]}
    if args.json:
        _print_json(info)
        return 0
    print(f"{kind}/{name}  (provider: {spec.provider}; {info['object']})\n")
    if info["doc"]:
        print(info["doc"] + "\n")
    print("parameters:")
    rows = []
    for p in params:
        if p["context"]:
            where = "supplied by mmtk"
        else:
            where = "required" if p["required"] else f"default {p['default']!r}"
        rows.append((f"{p['name']}: {p['type']}", f"({where})", p["doc"]))
    for head, where, doc in rows:
        print(f"  {head}  {where}  {doc}".rstrip())
    if info["aux_losses"]:
        print("auxiliary losses: " + ", ".join(f"{kind}/{n}" for n in info["aux_losses"]))
    if info["also_provided_by"]:
        print("also registered under this name: " + ", ".join(info["also_provided_by"]))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Checks a recipe without running its code unless --allow-imports (a recipe is data)."""
    from .recipe import check

    report = check(args.recipe, _system(args), args.set, allow_imports=args.allow_imports)
    not_run = {"not_executed": report.skipped_imports, "not_checked": report.unchecked}
    if args.json:
        _print_json({"ok": not report.problems, **not_run,
                     "problems": [{"path": p.path, "message": p.message} for p in report.problems]})
        return EXIT_USER_ERROR if report.problems else 0
    if report.problems:
        raise RecipeError(report.problems, report.where())
    print(f"{args.recipe}: OK")
    if report.skipped_imports:
        print("not executed (a recipe is data; pass --allow-imports to run them): "
              + ", ".join(report.skipped_imports))
    if report.unchecked:
        print("therefore not checked: " + "; ".join(report.unchecked))
    return 0


def print_summary(results: dict, as_json: bool) -> None:
    from .console import is_terminal
    from .report import render_table, summary_rows

    if as_json:
        _print_json(results)
        return
    for split in ("test", "val"):
        header, rows = summary_rows(results["summary"], split, info=results.get("metrics_info"),
                                    bounds=results.get("bayes_bound"))
        title = (f"{results.get('name') or 'run'}: {split} (rates in %, mean ± std over "
                 f"{len(results['trials'])} trial(s))")
        print(render_table(header, rows, title, rich_output=is_terminal()))
    print(f"results: {results['directory']}")


def _recipe_overrides(args: argparse.Namespace) -> list[str]:
    """--set, plus --seeds / --folds written as the recipe keys they override."""
    from .recipe.loading import Override

    overrides = list(args.set)
    if getattr(args, "seeds", None):
        overrides.append(Override(f"seed=[{', '.join(map(str, args.seeds))}]",
                                  "--seeds " + " ".join(map(str, args.seeds))))
    if getattr(args, "folds", None):
        overrides.append(Override("data.folds=all" if args.folds == ["all"] else
                                  f"data.folds=[{', '.join(args.folds)}]", "--folds " + " ".join(args.folds)))
    return overrides


def cmd_run(args: argparse.Namespace) -> int:
    from . import distributed
    from .console import make_progress
    from .devices import pick_device
    from .run import Run
    from .runs_listing import resolve_run_dir, resume_command, write_status

    system = _system(args)
    if distributed.launched_by_torchrun():
        distributed.init(pick_device(args.device or "auto").type)
    if args.resume:
        if args.set or args.seeds or args.folds:
            raise MmtkError("--resume continues a run exactly as it was recorded; "
                            "--set/--seeds/--folds cannot change it")
        run = Run.resume(resolve_run_dir(args.resume, args.runs_dir), system, device=args.device)
    else:
        if not args.recipe:
            raise MmtkError("mmtk run needs a RECIPE (file or registered name) or --resume RUN_DIR")
        if args.dry_run:
            return _dry_run(args, system)
        from .recipe import resolve
        run = Run.create(resolve(args.recipe, system, _recipe_overrides(args)), system, device=args.device)
    progress = make_progress(args.quiet or not distributed.is_main(), plain=args.json)
    run.progress = progress
    run.jobs, run.plugins_dir, run.threads = args.jobs, args.plugins_dir, args.threads
    main = distributed.is_main()
    if main:  # what `mmtk runs` shows while this command works on the run
        write_status(run.directory, "running")
    try:
        results = run.execute()
    except KeyboardInterrupt:
        getattr(progress, "close", lambda: None)()
        if run.discarded:
            print("interrupted before anything was saved; the empty run folder was removed",
                  file=sys.stderr)
        else:
            if main:
                write_status(run.directory, "interrupted")
            print(f"interrupted; continue with: {resume_command(run.directory)}", file=sys.stderr)
        return 130
    except Exception as exc:
        if main and not run.discarded and run.directory.is_dir():
            write_status(run.directory, "failed", error=str(exc))
        raise
    finally:
        getattr(progress, "close", lambda: None)()
    if main:
        write_status(run.directory, "finished")
    if distributed.is_main():
        print_summary(results, args.json)
    return 0


def _dry_run(args: argparse.Namespace, system: Any) -> int:
    from .dry_run import dry_run
    from .recipe import check, resolve

    if not args.allow_imports:
        report = check(args.recipe, system, _recipe_overrides(args), allow_imports=False)
        if report.skipped_imports and not report.problems:
            raise MmtkError(f"{args.recipe} imports plugin files ({', '.join(report.skipped_imports)}); "
                            "a dry run does not execute a recipe's code unless you pass --allow-imports")
        if report.problems:
            raise RecipeError(report.problems, report.where())
    built = dry_run(resolve(args.recipe, system, _recipe_overrides(args)), system, args.device)
    if args.json:
        _print_json(built)
    else:
        print(f"{args.recipe}: valid; modalities {', '.join(built['modalities'])}")
        for s in built["stages"]:
            print(f"  stage '{s['name']}': {s['parameters']:,} parameters; auxiliary losses: "
                  f"{', '.join(s['aux_losses']) or 'none'}")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    """Protocol violations of each run; exit status 1 when any run has one."""
    from .audit import violations
    from .runs_listing import resolve_run_dir

    dirs = [str(resolve_run_dir(run, args.runs_dir)) for run in args.run_dirs]
    found = {run: violations(run) for run in dirs}
    if args.json:
        _print_json({"runs": found, "ok": not any(found.values())})
    else:
        for run, problems in found.items():
            print(f"{run}: {'OK' if not problems else f'{len(problems)} violation(s)'}")
            for p in problems:
                print(f"  - {p}")
    return 1 if any(found.values()) else 0


def cmd_eval(args: argparse.Namespace) -> int:
    """A finished run's tables, recomputed from its trials' kept predictions."""
    from .reevaluate import reevaluate
    from .runs_listing import require_finished, resolve_run_dir

    run_dir = resolve_run_dir(args.run_dir, args.runs_dir)
    if require_finished(run_dir) == "failed":
        print(f"warning: some trials of {run_dir} failed; the tables cover those that finished",
              file=sys.stderr)
    results = reevaluate(run_dir, _system(args).registry, args.metrics)
    for key, split, cond, name, saved, new in results["mismatches"]:
        print(f"warning: {key} {split} {cond} {name}: recomputed {new!r} but the run saved {saved!r}",
              file=sys.stderr)
    if args.confusion:
        results["confusion"] = _confusion(run_dir, args.split, args.json)
    if args.plot:
        results["curves"] = _curves(run_dir, args.json)
    print_summary(results, args.json)
    return 0


def _curves(run_dir: Any, as_json: bool) -> str:
    from .training_curves import plot_training_curves

    image = plot_training_curves(run_dir, run_dir / "training-curves.png")
    if not as_json:
        print(f"training curves: {image}")
    return str(image)


def cmd_runs(args: argparse.Namespace) -> int:
    """The runs under --runs-dir (of runs named like NAME), oldest first; exit 1 when none."""
    from .console import is_terminal
    from .report import render_table
    from .runs_listing import list_runs

    runs = list_runs(args.runs_dir, args.name)
    if args.json:
        _print_json([r.as_dict() for r in runs])
    elif runs:
        rows = [[r.name, r.started, r.status,
                 f"{r.trials_done}/{'?' if r.trials_total is None else r.trials_total}",
                 r.headline or "-", str(r.directory)] for r in runs]
        print(render_table(["run", "started", "status", "trials", "headline", "folder"], rows,
                           rich_output=is_terminal()), end="")
    if not runs:
        which = f"named like '{args.name}' " if args.name else ""
        print(f"no runs {which}under {args.runs_dir}/", file=sys.stderr)
        return 1
    return 0


def _confusion(run_dir: Any, split: str, as_json: bool) -> dict:
    from .console import is_terminal
    from .reevaluate import confusion_tables, plot_confusions, summed_confusions
    from .report import render_table

    total, first = summed_confusions(run_dir, split)
    image = plot_confusions(total, first.class_names, run_dir / f"confusion-{split}.png")
    if not as_json:
        for title, header, rows in confusion_tables(total, first.class_names):
            print(render_table(header, rows, f"{split}, {title}, summed over trials", rich_output=is_terminal()))
        print(f"confusion image: {image}" if image else
              "(install the plot extra, pip install 'mmtk[plot]', for a confusion image)")
    return {"split": split, "matrices": {c: m.tolist() for c, m in total.items()},
            "class_names": first.class_names, "image": str(image) if image else None}


def cmd_tune(args: argparse.Namespace) -> int:
    """Hyper-parameter search on validation; optuna is imported only here (the tune extra)."""
    from .tune import tune_command

    return tune_command(args, _system(args))


def cmd_compare(args: argparse.Namespace) -> int:
    from .compare import CompareDisplay, RobustnessOptions, StatsOptions, compare, print_comparison
    from .console import is_terminal

    overrides = _recipe_overrides(args)
    names = [r for r in args.recipes]
    display = CompareDisplay([], False) if args.json else None
    system = _system(args)
    if display is None:
        from .recipe import resolve
        display = CompareDisplay([resolve(r, system, overrides).name for r in names], is_terminal())
    opts = StatsOptions(args.reference, args.stat_metric, args.bootstrap, args.bootstrap_seed, test=args.stat_test)
    rates = RobustnessOptions(args.missing_rates, args.rate_metric) if args.missing_rates else None
    try:
        result = compare(names, system, overrides, args.jobs, not args.no_reuse,
                         args.out, args.plugins_dir, display, args.metrics, opts, rates, args.threads)
    finally:
        display.close()
    entries, paths = result.entries, result.paths
    if args.json:
        _print_json({"table": {k: str(v) for k, v in paths.items()},
                     "runs": {e.name: {"directory": str(e.run_dir) if e.run_dir else None,
                                       "error": e.error,
                                       "summary": e.results["summary"] if e.results else None}
                              for e in entries},
                     "statistics": result.stats.as_dict() if result.stats else None,
                     "statistics_note": result.note, "cards": result.cards,
                     "robustness": result.robustness.as_dict() if result.robustness else None})
    else:
        print_comparison(entries, paths, is_terminal(), result.metrics, result.stats, result.note, result.cards,
                         result.robustness)
    return 1 if any(e.error for e in entries) else 0
