"""The ``mmtk`` command line: the parser, plugin commands, and one place that turns errors into
a one-paragraph message and exit status 2. The commands themselves live in
:mod:`mmtk.commands`. ``--help`` and ``list`` never build a model."""
from __future__ import annotations

import argparse
import os
import sys
import traceback
from typing import Any

from . import commands
from .commands import EXIT_USER_ERROR
from .errors import MmtkError
from .threads import parse_setting as parse_thread_setting


def _global_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--strict-plugins", action="store_true", help="a plugin that fails to load is fatal")
    p.add_argument("--plugins-dir", help="also load every *.py plugin module in this directory")
    p.add_argument("--traceback", action="store_true", help="show Python tracebacks on errors")


def _runs_dir_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs-dir", default="runs", metavar="DIR",
                   help="where the run folders are, for latest / NAME@latest (default: runs)")


def _positive(text: str) -> int:
    """An argparse type: an integer >= 1 (e.g. --jobs)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _run_parser(sub: Any) -> None:
    run = sub.add_parser("run", help="train and evaluate a recipe")
    run.add_argument("recipe", nargs="?", help="recipe file or registered recipe name")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a recipe value")
    run.add_argument("--seeds", nargs="+", type=int, help="seeds to run (overrides the recipe's seed)")
    run.add_argument("--folds", nargs="+", help="folds to run, or 'all'")
    run.add_argument("--device", help="cpu, cuda, cuda:1 or auto")
    run.add_argument("--dry-run", action="store_true",
                     help="validate, build the model and run one batch; train nothing")
    run.add_argument("--allow-imports", action="store_true",
                     help="with --dry-run: execute the recipe's imports: files (a run always does)")
    run.add_argument("--resume", metavar="RUN_DIR",
                     help="continue an interrupted run (a run folder, latest or NAME@latest)")
    _runs_dir_option(run)
    run.add_argument("--json", action="store_true", help="print results as JSON")
    run.add_argument("--quiet", action="store_true", help="no progress output")
    run.add_argument("--jobs", type=_positive, default=1, help="trials (seeds x folds) run in parallel processes")
    run.add_argument("--threads", type=parse_thread_setting, metavar="N|auto",
                     help="torch threads per process (default: the recipe's train.threads; auto: up to the idle "
                          "cores, as many as each stage's model measurably gains from)")


def _tune_parser(sub: Any) -> None:
    from .tune.options import configure  # argparse only: no optuna at start-up
    configure(sub)


def _compare_parser(sub: Any) -> None:
    cmp_ = sub.add_parser("compare", help="run several recipes under one protocol; one table")
    cmp_.add_argument("recipes", nargs="+", help="recipe files or registered names")
    cmp_.add_argument("--seeds", nargs="+", type=int, help="seeds for every recipe")
    cmp_.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="override applied to every recipe")
    cmp_.add_argument("--jobs", type=_positive, default=1, help="runs in parallel (threads are split)")
    cmp_.add_argument("--threads", type=parse_thread_setting, default="auto", metavar="N|auto",
                      help="torch threads per run (default auto: each run's share of the idle cores across --jobs "
                           "is its ceiling, its stages probe their model up to it)")
    cmp_.add_argument("--no-reuse", action="store_true", help="rerun even if a finished run exists")
    cmp_.add_argument("--out", help="where the comparison table goes (default: the runs folder)")
    cmp_.add_argument("--metrics", nargs="+", metavar="METRIC",
                      help="metrics shown per cell (default: the first two evaluated)")

    def whole_number(text: str) -> int:  # an argparse type: an integer >= 0
        if not text.strip().isdigit():
            raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
        return int(text)

    cmp_.add_argument("--reference", metavar="NAME",
                      help="the method every other is compared with (default: the first)")
    cmp_.add_argument("--stat-metric", metavar="METRIC",
                      help="the metric of the paired differences (default: the second shown)")
    cmp_.add_argument("--bootstrap", type=whole_number, default=2000, metavar="B",
                      help="bootstrap draws for CIs and p-values when the bootstrap is the test (default "
                           "2000; the seed-level t-test draws nothing); 0: no statistics at all")
    cmp_.add_argument("--bootstrap-seed", type=whole_number, default=0, metavar="SEED",
                      help="seed of the bootstrap draws (default 0)")
    cmp_.add_argument("--stat-test", choices=("auto", "bootstrap", "seed-t"), default="auto",
                      help="the paired test: seed-t (a t-test over seeds, valid when each seed drew its own "
                           "test set and there are no folds), bootstrap (hierarchical, over seeds/folds and "
                           "test samples), or auto (default: seed-t where it is valid, else bootstrap)")
    cmp_.add_argument("--missing-rates", nargs="+", type=float, metavar="RATE",
                      help="robustness curves: evaluate every model at these cell missing rates in [0, 1)")
    cmp_.add_argument("--rate-metric", metavar="METRIC",
                      help="the metric of the robustness curves (default: --stat-metric, else the second shown)")
    cmp_.add_argument("--json", action="store_true")


def _parser(plugin_commands: dict | None = None) -> argparse.ArgumentParser:
    from . import __version__

    p = argparse.ArgumentParser(prog="mmtk", description="Incomplete multimodal learning toolkit.")
    _global_options(p)
    p.add_argument("--version", action="version", version=f"mmtk {__version__}")
    sub = p.add_subparsers(dest="command")   # none: the help is printed
    _run_parser(sub)
    val = sub.add_parser("validate", help="check a recipe and report every problem")
    val.add_argument("recipe")
    val.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    val.add_argument("--allow-imports", action="store_true",
                     help="execute the recipe's imports: files, so their components are checked too")
    val.add_argument("--json", action="store_true")

    lst = sub.add_parser("list", help="list components, plugins or recipes")
    lst.add_argument("what", choices=["components", "plugins", "recipes"])
    lst.add_argument("pattern", nargs="?", help="glob or substring filter on names")
    lst.add_argument("--kind", help="only this kind of component")
    lst.add_argument("--json", action="store_true")

    show = sub.add_parser("show", help="describe one component")
    show.add_argument("what", choices=["component"])
    show.add_argument("target", metavar="KIND/NAME")
    show.add_argument("--json", action="store_true")
    _compare_parser(sub)
    _tune_parser(sub)

    audit = sub.add_parser("audit", help="check runs' protocol cards for leakage and unfair protocols")
    audit.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folders, latest or NAME@latest")
    audit.add_argument("--json", action="store_true")
    _runs_dir_option(audit)

    runs = sub.add_parser("runs", help="list runs: name, start time, status, trials, headline metric")
    runs.add_argument("name", nargs="?", help="only runs whose name matches (glob or substring)")
    runs.add_argument("--json", action="store_true")
    _runs_dir_option(runs)

    ev = sub.add_parser("eval", help="a finished run's tables, recomputed from its kept predictions")
    ev.add_argument("run_dir", help="a run folder, latest or NAME@latest")
    ev.add_argument("--plot", action="store_true",
                    help="draw the training curves (losses, validation metric, selected epoch) as a PNG")
    _runs_dir_option(ev)
    ev.add_argument("--metrics", nargs="+", metavar="METRIC", help="also compute these metrics")
    ev.add_argument("--confusion", action="store_true",
                    help="confusion matrices per condition (a table; an image with the plot extra)")
    ev.add_argument("--split", choices=["test", "val"], default="test", help="split of --confusion")
    ev.add_argument("--json", action="store_true")

    for name, entry in sorted((plugin_commands or {}).items()):
        if name in sub.choices:
            continue  # a plugin cannot shadow a core command
        cmd = sub.add_parser(name, help=f"{entry.help} [plugin {entry.provider.plugin}]")
        entry.configure(cmd)
        cmd.set_defaults(_plugin_run=entry.run)
    return p


COMMANDS = {"run": commands.cmd_run, "validate": commands.cmd_validate, "list": commands.cmd_list,
            "show": commands.cmd_show, "eval": commands.cmd_eval, "audit": commands.cmd_audit,
            "compare": commands.cmd_compare, "tune": commands.cmd_tune, "runs": commands.cmd_runs}


def _lists_failed_plugins(args: argparse.Namespace, system: Any) -> bool:
    """Whether the command is `list plugins` showing every failed plugin in its table (then
    the warning lines would say it twice)."""
    if getattr(args, "command", None) != "list" or args.what != "plugins":
        return False
    return all(commands.matches(s.name, args.pattern) for s in system.statuses.values() if s.status == "failed")


def main(argv: list[str] | None = None) -> int:
    from .errors import PluginError
    from .plugins import describe_exception, get_plugin_system

    argv = sys.argv[1:] if argv is None else list(argv)
    pre = argparse.ArgumentParser(add_help=False)
    _global_options(pre)
    early, _ = pre.parse_known_args(argv)
    args = early
    try:
        system = get_plugin_system(strict=early.strict_plugins, plugins_dir=early.plugins_dir)
        try:
            args = _parser(system.commands).parse_args(argv)
        finally:  # also before --help and usage errors: every command mentions plugin trouble
            notices = system.notices(failed=not _lists_failed_plugins(args, system))
            notices += [f"plugin '{c.provider.plugin}' registers the command '{n}', which is a core "
                        "command; the plugin's is ignored" for n, c in system.commands.items()
                        if n in COMMANDS]
            for line in notices:
                print(f"mmtk: warning: {line}", file=sys.stderr)
        if args.command is None:   # bare `mmtk`
            _parser(system.commands).print_help()
            return 0
        plugin_run = getattr(args, "_plugin_run", None)
        if plugin_run is None:
            return COMMANDS[args.command](args)
        entry = system.commands[args.command]
        try:
            return int(plugin_run(args) or 0)
        except (MmtkError, SystemExit, KeyboardInterrupt):
            raise  # a deliberate message, exit status or Ctrl-C
        except Exception as exc:
            raise PluginError(
                f"command '{args.command}' of plugin '{entry.provider}' failed: "
                f"{describe_exception(exc)}. This is a bug in the plugin rather than in your "
                "input: rerun with --traceback to see where, and report it to the plugin's "
                "author") from exc
    except MmtkError as exc:
        if args.traceback:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:  # cmd_run answers its own (it knows the run folder)
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `mmtk ... --json | head`: the reader left; end quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the exit-time flush does not raise again
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
