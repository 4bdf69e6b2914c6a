"""``mmtk compare``: several recipes on the same data and protocol, one table.

Each recipe becomes one run (a finished run with the same resolved recipe is reused). Runs
go in child processes (``--jobs`` at a time, threads split between them); a failed run is
reported and the others finish. Recipes whose data, folds, seeds or evaluation protocol
differ are refused, naming the field that differs.
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

from .errors import MmtkError
from .plugins import PluginSystem
from .recipe import Component, Recipe, resolve
from .report import condition_order, fmt, is_percent, markdown_table, render_table
from .run import read_results
from .rundir import atomic_write_text, new_run_dir


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
    return {k: v for k, v in tree.items() if not k.startswith("_") and k != "output"}


def find_finished_run(recipe: Recipe) -> Path | None:
    """A finished run of exactly this resolved recipe, if one exists."""
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
            if isinstance(saved, dict) and _comparable(saved) == want:
                return d
    return None


def _child_command(entry: Entry, overrides: list[str], plugins_dir: str | None) -> list[str]:
    cmd = [sys.executable, "-m", "mmtk"]
    if plugins_dir:
        cmd += ["--plugins-dir", plugins_dir]
    cmd += ["run", entry.recipe, "--json"]
    for o in overrides:
        cmd += ["--set", o]
    return cmd


def run_entries(entries: list[Entry], overrides: list[str], jobs: int, plugins_dir: str | None,
                show: Any) -> None:
    threads = max(1, (os.cpu_count() or 1) // max(jobs, 1))
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))

    def work(entry: Entry) -> None:
        show(entry, "started")
        proc = subprocess.Popen(_child_command(entry, overrides, plugins_dir), stdout=subprocess.PIPE,
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


def shown_metrics(entries: list[Entry], split: str = "test", chosen: list[str] | None = None) -> list[str]:
    """The metrics a comparison shows: ``chosen``, else the first two evaluated (the recipe's
    ``eval.metrics`` order: e.g. WAR / UAR, or MAE / Corr for regression)."""
    if chosen:
        return list(chosen)
    done = [e for e in entries if e.results]
    if not done:
        return list(entries[0].resolved.eval.metrics[:2]) if entries else []
    summary = done[0].results["summary"][split]
    return list(next(iter(summary.values())))[:2] if summary else []


def _info(entries: list[Entry]) -> dict:
    return next((e.results.get("metrics_info") or {} for e in entries if e.results), {})


def comparison_rows(entries: list[Entry], split: str = "test",
                    chosen: list[str] | None = None) -> tuple[list[str], list[list[str]]]:
    done = [e for e in entries if e.results]
    conds = condition_order(list(done[0].results["summary"][split])) if done else []
    metrics, info = shown_metrics(entries, split, chosen), _info(entries)
    header = ["method"] + conds
    rows = []
    for e in entries:
        if not e.results:
            rows.append([e.name] + ["failed"] * len(conds))
            continue
        s = e.results["summary"][split]
        rows.append([e.name] + [" / ".join(fmt(s[c][m], is_percent(info, m)) for m in metrics)
                                if c in s else "-" for c in conds])
    return header, rows


def write_outputs(entries: list[Entry], directory: Path, split: str = "test",
                  chosen: list[str] | None = None) -> dict[str, Path]:
    header, rows = comparison_rows(entries, split, chosen)
    metrics, info = shown_metrics(entries, split, chosen), _info(entries)
    paths = {"markdown": directory / "comparison.md", "csv": directory / "comparison.csv"}
    units = ", ".join(f"{m.upper()}{' in %' if is_percent(info, m) else ''}" for m in metrics)
    note = (f"Cells: {' / '.join(m.upper() for m in metrics)} ({units}), mean ± std over seeds "
            f"(and folds); split: {split}; 'mean' = mean over the missing conditions.\n\n")
    runs = "\n".join(f"- {e.name}: {e.run_dir or 'FAILED: ' + str(e.error)}" for e in entries)
    atomic_write_text(paths["markdown"], note + markdown_table(header, rows) + "\nRuns:\n" + runs + "\n")
    lines = ["method,condition," + ",".join(f"{m}_mean,{m}_std" for m in metrics) + ",n"]
    for e in entries:
        if e.results:
            for c, stats in e.results["summary"][split].items():
                lines.append(f"{e.name},{c}," + ",".join(
                    f"{stats[m]['mean']:.6f},{stats[m]['std']:.6f}" for m in metrics)
                    + f",{stats[metrics[-1]]['n']}")
    atomic_write_text(paths["csv"], "\n".join(lines) + "\n")
    png = plot_metric(entries, directory / f"{metrics[-1]}.png", split, metrics[-1], info)
    if png:
        paths["plot"] = png
    return paths


def plot_metric(entries: list[Entry], path: Path, split: str, metric: str, info: dict) -> Path | None:
    """Per-condition values of one metric per method as grouped bars (needs the optional
    matplotlib)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    done = [e for e in entries if e.results]
    if not done:
        return None
    scale = 100 if is_percent(info, metric) else 1
    conds = condition_order(list(done[0].results["summary"][split]))
    width = 0.8 / len(done)
    fig, ax = plt.subplots(figsize=(1.2 * len(conds) + 2, 4))
    for i, e in enumerate(done):
        s = e.results["summary"][split]
        means = [scale * s[c][metric]["mean"] for c in conds]
        stds = [scale * s[c][metric]["std"] for c in conds]
        ax.bar([j + i * width for j in range(len(conds))], means, width, yerr=stds, label=e.name)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(conds))], conds)
    ax.set_ylabel(metric.upper() + (" (%)" if scale == 100 else ""))
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def compare(recipes: list[str], system: PluginSystem, overrides: list[str], jobs: int = 1,
            reuse: bool = True, out_dir: str | None = None, plugins_dir: str | None = None,
            show: Any = None, metrics: list[str] | None = None) -> tuple[list[Entry], dict[str, Path]]:
    """``metrics``: which evaluated metrics the table shows (default: see shown_metrics)."""
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
    show = show or (lambda e, msg: None)
    todo = []
    for e in entries:
        found = find_finished_run(e.resolved) if reuse else None
        if found:
            e.run_dir = found
            e.results = read_results(found)
            show(e, f"reusing finished run {found}")
        else:
            todo.append(e)
    if todo:
        run_entries(todo, overrides, jobs, plugins_dir, show)
    root = Path(out_dir) if out_dir else Path(entries[0].resolved.output.dir)
    directory = new_run_dir(root, "compare")
    return entries, write_outputs(entries, directory, chosen=metrics)


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


def print_comparison(entries: list[Entry], paths: dict[str, Path], terminal: bool,
                     chosen: list[str] | None = None) -> None:
    header, rows = comparison_rows(entries, chosen=chosen)
    title = " / ".join(m.upper() for m in shown_metrics(entries, chosen=chosen)) + " on test, mean ± std"
    print(render_table(header, rows, title, rich_output=terminal))
    for kind, p in paths.items():
        print(f"{kind}: {p}")
    failed = [e for e in entries if e.error]
    for e in failed:
        print(f"FAILED {e.name}: {e.error}", file=sys.stderr)
