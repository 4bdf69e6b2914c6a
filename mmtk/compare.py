"""``mmtk compare``: several recipes on the same data and protocol, one table.

Each recipe becomes one run (a finished run with the same resolved recipe is reused). Runs
go in child processes (``--jobs`` at a time, threads split between them); a failed run is
reported and the others finish. Recipes whose data, folds, seeds or evaluation protocol
differ are refused, naming the field that differs. The paired statistics (every method
against a reference) are in :mod:`mmtk.compare_stats`, the tables in :mod:`mmtk.compare_tables`,
the robustness curves (``--missing-rates``) in :mod:`mmtk.compare_robustness`.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .compare_cards import check_cards
from .compare_robustness import Robustness, RobustnessOptions, check_robustness_options, robustness_curves
from .compare_stats import ComparisonStats, StatsOptions, check_options, comparison_stats, require_predictions
from .compare_tables import print_comparison, shown_metrics, write_outputs
from .errors import MmtkError
from .plugins import PluginSystem
from .recipe import Component, Recipe, resolve
from .run import read_results
from .rundir import new_run_dir
from .threads import ThreadSetting
from .threads import choose as choose_threads

__all__ = ["Comparison", "CompareDisplay", "Entry", "RobustnessOptions", "StatsOptions", "compare",
           "print_comparison"]


@dataclass
class Entry:
    recipe: str
    resolved: Recipe
    name: str
    run_dir: Path | None = None
    results: dict | None = None
    error: str | None = None
    log: list[str] = field(default_factory=list)


def with_param_defaults(kind: str, comp: Component, registry: Any) -> dict:
    """A component block with every constructor default written out (so omitted == default)."""
    from .schema import signature_params, user_params
    full = comp.tree()
    declared = {p.name for p in user_params(registry.get(kind, comp.qualified).obj, kind)}
    for p in signature_params(registry.get(kind, comp.qualified).obj):
        if p.name in declared and not p.required:
            full.setdefault(p.name, list(p.default) if isinstance(p.default, tuple) else p.default)
    return full


def protocol_fields(recipe: Recipe, registry: Any) -> dict[str, Any]:
    """Flattened fields that must agree across compared runs."""
    out: dict[str, Any] = {}

    def flat(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                flat(f"{prefix}.{k}", v)
        else:
            out[prefix] = node

    data = recipe.data
    flat("data", {**with_param_defaults("dataset", data.dataset, registry),
                  "normalize": data.normalize, "val_fraction": data.val_fraction, "folds": data.folds})
    flat("missing.eval", with_param_defaults("missing", recipe.last_stage.missing.eval, registry))
    out["seed"] = recipe.seeds
    out["eval.metrics"] = recipe.eval.metrics
    out["eval.missing_rates"] = recipe.eval.missing_rates
    return out


def check_same_protocol(entries: list[Entry], registry: Any) -> None:
    ref = protocol_fields(entries[0].resolved, registry)
    for e in entries[1:]:
        other = protocol_fields(e.resolved, registry)
        for key in sorted(set(ref) | set(other), key=lambda k: (not k.endswith(".type"), k)):
            if ref.get(key) != other.get(key):
                raise MmtkError(
                    f"cannot compare '{entries[0].recipe}' with '{e.recipe}': they differ in "
                    f"{key} ({ref.get(key)!r} vs {other.get(key)!r}). A comparison needs the same "
                    "data, folds, seeds and evaluation protocol; align them with --set.")


def _comparable(tree: dict) -> dict:
    """What must match for a finished run to be reused: everything but where it was written
    and how many threads it used (results do not depend on that beyond float noise)."""
    out = {k: v for k, v in tree.items() if not k.startswith("_") and k != "output"}
    if isinstance(out.get("stages"), list):   # copies: the recipe's own tree stays as it is
        out["stages"] = [dict(s) if isinstance(s, dict) else s for s in out["stages"]]
    for node in [out, *(out.get("stages") or [])]:
        if isinstance(node, dict) and isinstance(node.get("train"), dict) and "threads" in node["train"]:
            node["train"] = {k: v for k, v in node["train"].items() if k != "threads"}
    return out


def find_finished_run(recipe: Recipe) -> Path | None:
    """A finished run of exactly this resolved recipe, if one exists. A run whose metrics.json
    lists failed trials is not finished: reusing it would leave those trials out."""
    base = Path(recipe.output.dir) / recipe.name
    if not base.is_dir():
        return None
    want = _comparable(recipe.tree)
    for d in sorted(base.iterdir(), reverse=True):
        rec, met = d / "recipe.yaml", d / "metrics.json"
        if rec.is_file() and met.is_file():
            try:
                saved = yaml.safe_load(rec.read_text(encoding="utf-8"))
            except (yaml.YAMLError, UnicodeDecodeError):
                continue  # a damaged earlier run is not reused
            if isinstance(saved, dict) and _comparable(saved) == want and not _has_failed_trials(met):
                return d
    return None


def _has_failed_trials(metrics: Path) -> bool:
    try:
        return bool(json.loads(metrics.read_text(encoding="utf-8")).get("failed"))
    except (OSError, ValueError, AttributeError):
        return True   # unreadable: not a run to reuse


def _child_command(entry: Entry, overrides: list[str], plugins_dir: str | None, threads: str) -> list[str]:
    cmd = [sys.executable, "-m", "mmtk"]
    if plugins_dir:
        cmd += ["--plugins-dir", plugins_dir]
    cmd += ["run", entry.recipe, "--json", "--threads", str(threads)]
    for o in overrides:
        cmd += ["--set", o]
    return cmd


def run_entries(entries: list[Entry], overrides: list[str], jobs: int, plugins_dir: str | None,
                show: Any, thread_setting: ThreadSetting = "auto") -> None:
    threads = choose_threads(thread_setting, min(jobs, len(entries))).count  # per child run
    # the count is each child's ceiling; under auto the child's stages still probe up to it
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    child_threads = "auto" if thread_setting == "auto" else str(threads)

    def work(entry: Entry) -> None:
        show(entry, "started")
        proc = subprocess.Popen(_child_command(entry, overrides, plugins_dir, child_threads), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)
        out_chunks: list[str] = []
        reader = threading.Thread(target=lambda: out_chunks.append(proc.stdout.read()), daemon=True)
        reader.start()
        for line in proc.stderr:
            line = line.rstrip()
            if line:
                entry.log.append(line)
                show(entry, line)
        proc.wait()
        reader.join()
        if proc.returncode != 0:
            entry.error = next((line for line in reversed(entry.log) if line.startswith("error:")),
                               entry.log[-1] if entry.log else f"exit status {proc.returncode}")
            show(entry, f"FAILED: {entry.error}")
            return
        entry.results = json.loads("".join(out_chunks))
        entry.run_dir = Path(entry.results["directory"])
        show(entry, f"finished: {entry.run_dir}")

    with ThreadPoolExecutor(max_workers=max(jobs, 1)) as pool:
        list(pool.map(work, entries))


@dataclass
class Comparison:
    entries: list[Entry]
    paths: dict[str, Path]
    metrics: list[str]                  # shown per cell
    stats: ComparisonStats | None       # None: --bootstrap 0, or too few finished runs (see note)
    note: str = ""
    cards: str = ""                     # one-line summary of the rows' protocol cards
    robustness: Robustness | None = None   # --missing-rates: the curves


def prepare_entries(recipes: list[str], system: PluginSystem, overrides: list[str],
                    metrics: list[str] | None, opts: StatsOptions,
                    rates: RobustnessOptions | None = None) -> list[Entry]:
    """Resolved entries, refused before anything runs when they cannot be compared."""
    entries = []
    for r in recipes:
        recipe = resolve(r, system, overrides)
        entries.append(Entry(r, recipe, recipe.name))
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise MmtkError(f"two recipes share a name ({', '.join(names)}); give each its own 'name'")
    check_same_protocol(entries, system.registry)
    evaluated = entries[0].resolved.eval.metrics
    unknown = [m for m in metrics or [] if m not in evaluated]
    if unknown:
        raise MmtkError(f"--metrics {', '.join(unknown)}: not among the recipes' eval.metrics "
                        f"({', '.join(evaluated)})")
    if opts.n_boot > 0:
        check_options(names, evaluated, opts)
    if rates is not None:
        check_robustness_options(evaluated, rates)
    return entries


def statistics(entries: list[Entry], registry: Any, shown: list[str],
               opts: StatsOptions) -> tuple[ComparisonStats | None, str]:
    """The paired statistics of the finished runs (the reference first), or why there are none."""
    if opts.n_boot <= 0:
        return None, "turned off (--bootstrap 0)"
    reference = next(e for e in entries if e.name == (opts.reference or entries[0].name))
    if not reference.results:
        return None, f"the reference '{reference.name}' failed"
    done = [reference] + [e for e in entries if e.results and e is not reference]
    if len(done) < 2:
        return None, "fewer than two runs finished"
    stat_metric = opts.metric or (shown[1] if len(shown) > 1 else shown[0])
    from .builder import Builder
    metric_objects = Builder(registry).metrics(list(dict.fromkeys(shown + [stat_metric])))
    runs = {e.name: (e.run_dir, e.results) for e in done}
    return comparison_stats(runs, metric_objects, stat_metric, opts), ""


def compare(recipes: list[str], system: PluginSystem, overrides: list[str], jobs: int = 1,
            reuse: bool = True, out_dir: str | None = None, plugins_dir: str | None = None,
            show: Any = None, metrics: list[str] | None = None,
            stats_options: StatsOptions | None = None,
            robustness: RobustnessOptions | None = None, threads: ThreadSetting = "auto") -> Comparison:
    """``metrics``: which evaluated metrics the table shows (default: see shown_metrics);
    ``stats_options``: the paired statistics (default: 2000 draws against the first recipe);
    ``robustness``: the missing rates of the robustness curves (default: none drawn)."""
    opts = stats_options or StatsOptions()
    entries = prepare_entries(recipes, system, overrides, metrics, opts, robustness)
    recipe_rates = entries[0].resolved.eval.missing_rates   # the same in every recipe (checked)
    if robustness is None and recipe_rates:
        robustness = RobustnessOptions(list(recipe_rates))
        check_robustness_options(entries[0].resolved.eval.metrics, robustness)
    show = show or (lambda e, msg: None)
    todo = []
    for e in entries:
        found = find_finished_run(e.resolved) if reuse else None
        if found:
            e.run_dir = found
            e.results = read_results(found)
            if opts.n_boot > 0:   # refused before training the others, not after
                require_predictions(e.name, found, e.results)
            show(e, f"reusing finished run {found}")
        else:
            todo.append(e)
    if todo:
        run_entries(todo, overrides, jobs, plugins_dir, show, threads)
    cards = check_cards(entries)   # refuses rows whose protocol cards differ in what matters
    shown = shown_metrics(entries, metrics)
    stats, note = statistics(entries, system.registry, shown, opts)
    curves = robustness_curves(entries, system, shown, opts, robustness) if robustness else None
    root = Path(out_dir) if out_dir else Path(entries[0].resolved.output.dir)
    directory = new_run_dir(root, "compare")
    paths = write_outputs(entries, directory, shown, stats, note, cards, curves)
    return Comparison(entries, paths, shown, stats, note, cards, curves)


class CompareDisplay:
    """Plain: one prefixed line per child progress line. Terminal: one live line per recipe."""

    def __init__(self, entries_names: list[str], terminal: bool):
        self.terminal = terminal
        self.start = time.time()
        if terminal:
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
            self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"),
                                     TextColumn("{task.fields[status]}"), TimeElapsedColumn())
            self.tasks = {n: self.progress.add_task(n, total=None, status="waiting") for n in entries_names}
            self.progress.start()

    def __call__(self, entry: Entry, message: str) -> None:
        if self.terminal:
            self.progress.update(self.tasks[entry.name], status=message[-90:])
        else:
            print(f"[{entry.name}] {message}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.terminal:
            self.progress.stop()
