"""Finding runs: ``mmtk runs [NAME]``, their status, and ``latest`` / ``NAME@latest``.

A run folder is ``<output.dir>/<name>/<timestamp>/`` holding ``recipe.yaml``. Its status:
*finished* (``metrics.json`` written, every trial done), *failed* (some trial failed, or
``status.json`` says the command failed), *running* (``status.json`` names a live process
on this machine), else *interrupted* (stopped or killed; ``mmtk run --resume`` continues it).
Nothing here imports torch, so listing stays fast.
"""
from __future__ import annotations

import fnmatch
import json
import os
import platform
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import MmtkError
from .report import fmt, is_percent

STATUS_FILE = "status.json"
LATEST = "latest"


@dataclass
class RunInfo:
    name: str
    directory: Path
    started: str
    status: str
    trials_done: int
    trials_total: int | None     # None: the folds are 'all' (known only to the dataset)
    headline: str                # e.g. 'test mean UAR 64.27 ± 0.80'; '' when unfinished

    def as_dict(self) -> dict:
        return {"name": self.name, "directory": str(self.directory), "started": self.started,
                "status": self.status, "trials_done": self.trials_done,
                "trials_total": self.trials_total, "headline": self.headline}


def is_run_dir(path: Path) -> bool:
    return (path / "recipe.yaml").is_file()


def write_status(directory: Path, status: str, **extra: Any) -> None:
    """Record what the command working on a run is doing ('running', 'failed', 'interrupted')."""
    from .rundir import write_json  # imports torch; only the commands that train get here

    write_json(directory / STATUS_FILE, {"status": status, "pid": os.getpid(),
                                         "host": platform.node(), **extra})


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True   # a process of another user has that id
    return True


def run_status(directory: Path) -> str:
    if (directory / "metrics.json").is_file():   # written last, atomically: the run ended
        results = _json(directory / "metrics.json")
        return "failed" if isinstance(results, dict) and results.get("failed") else "finished"
    recorded = _json(directory / STATUS_FILE) or {}
    if recorded.get("status") == "failed":
        return "failed"
    if (recorded.get("status") == "running" and recorded.get("host") == platform.node()
            and _alive(recorded.get("pid"))):
        return "running"
    return "interrupted"


def _saved_recipe(directory: Path) -> dict:
    try:
        tree = yaml.safe_load((directory / "recipe.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return {}
    return tree if isinstance(tree, dict) else {}


def _monitor(tree: dict) -> str | None:
    """The metric the run selected on (the last stage's train.monitor)."""
    stages = tree.get("stages") if isinstance(tree.get("stages"), list) else []
    for block in reversed(stages):
        monitor = ((block or {}).get("train") or {}).get("monitor") if isinstance(block, dict) else None
        if monitor:
            return str(monitor)
    monitor = (tree.get("train") or {}).get("monitor") if isinstance(tree.get("train"), dict) else None
    return str(monitor) if monitor else None


def _trials_total(tree: dict) -> int | None:
    seeds = tree.get("seed", 0)
    folds = (tree.get("data") or {}).get("folds") if isinstance(tree.get("data"), dict) else None
    if folds == "all":
        return None
    return (len(seeds) if isinstance(seeds, list) else 1) * (len(folds) if isinstance(folds, list) else 1)


def headline(directory: Path, tree: dict) -> str:
    """The monitored metric's test mean over conditions, mean ± std over trials."""
    results = _json(directory / "metrics.json")
    monitor = _monitor(tree)
    test = ((results or {}).get("summary") or {}).get("test") or {} if isinstance(results, dict) else {}
    cond = "mean" if "mean" in test else next(iter(test), None)
    stat = (test.get(cond) or {}).get(monitor) if cond and monitor else None
    if not isinstance(stat, dict) or not isinstance(results, dict):
        return ""
    percent = is_percent(results.get("metrics_info"), monitor or "")
    return f"test {cond} {(monitor or '').upper()} {fmt(stat, percent)}"


def _started(directory: Path) -> str:
    stamp = directory.name.split("-")[:2]
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.strptime("-".join(stamp), "%Y%m%d-%H%M%S"))
    except ValueError:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(directory.stat().st_mtime))


def run_info(directory: Path) -> RunInfo:
    tree = _saved_recipe(directory)
    done = len(list((directory / "trials").glob("*/metrics.json")))
    return RunInfo(directory.parent.name, directory, _started(directory), run_status(directory),
                   done, _trials_total(tree), headline(directory, tree))


def run_dirs(root: str | Path, name: str | None = None) -> list[Path]:
    """Run folders under ``root`` (of runs whose name matches the glob or substring
    ``name``), oldest first."""
    base = Path(root)
    if not base.is_dir():
        return []
    found = []
    for group in sorted(p for p in base.iterdir() if p.is_dir()):
        if name and not (fnmatch.fnmatch(group.name, name) or name in group.name):
            continue
        found += [d for d in group.iterdir() if d.is_dir() and is_run_dir(d)]
    return sorted(found, key=lambda d: (d.name, d.parent.name))   # timestamps sort as times


def list_runs(root: str | Path, name: str | None = None) -> list[RunInfo]:
    return [run_info(d) for d in run_dirs(root, name)]


def resolve_run_dir(text: str, root: str | Path = "runs") -> Path:
    """A run folder as given, or the newest run (``latest``) or newest run of NAME
    (``NAME@latest``) under ``root``."""
    if Path(text).exists() or not (text == LATEST or text.endswith("@" + LATEST)):
        return Path(text)
    name = None if text == LATEST else text[:-len("@" + LATEST)]
    found = [d for d in run_dirs(root) if name is None or d.parent.name == name]
    if not found:
        whose = f"of '{name}' " if name else ""
        raise MmtkError(f"'{text}': there is no run {whose}under {root}/ (mmtk runs lists the runs "
                        "there; give the run folder itself, or --runs-dir where your runs are)")
    return found[-1]


def resume_command(directory: Path) -> str:
    """The command that continues a run, with the plugin folder and device it was started with."""
    env = _json(directory / "environment.json") or {}
    argv = env.get("command") if isinstance(env.get("command"), list) else []

    def option(flag: str) -> list[str]:
        return [flag, str(argv[argv.index(flag) + 1])] if flag in argv[:-1] else []

    return shlex.join(["mmtk", *option("--plugins-dir"), "run", "--resume", str(directory),
                       *option("--device")])


def require_finished(directory: Path, what: str = "mmtk eval") -> str:
    """Refuse, with what to do instead, a folder that is not a run or a run not finished;
    returns the status of one that is ('finished', or 'failed' when some trial failed)."""
    if not directory.is_dir():
        raise MmtkError(f"{what}: '{directory}' does not exist (mmtk runs lists the runs)")
    if not is_run_dir(directory):
        inside = [d for d in directory.iterdir() if d.is_dir() and is_run_dir(d)]
        hint = (f"; it holds {len(inside)} run(s) of '{directory.name}': give one of them, or "
                f"{directory.name}@latest for the newest" if inside else
                "; run folders are <output.dir>/NAME/TIMESTAMP (mmtk runs lists them)")
        raise MmtkError(f"{what}: '{directory}' is not an mmtk run folder (it has no recipe.yaml){hint}")
    status = run_status(directory)
    if status in ("interrupted", "running"):
        info = run_info(directory)
        total = "?" if info.trials_total is None else info.trials_total
        doing = ("is still running" if status == "running" else
                 f"did not finish ({status}; {info.trials_done} of {total} trial(s) done)")
        raise MmtkError(f"{what}: the run {directory} {doing}, so it has no results to show yet"
                        + ("" if status == "running" else
                           f"; continue it with: {resume_command(directory)}"))
    return status
