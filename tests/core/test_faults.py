"""Runs and faults: damaged run files, a full disk, Ctrl-C, a dying parent, a closed pipe.
Each ends in a clear error (exit 2) naming the file and what to do, and nothing is lost."""
from __future__ import annotations

import errno
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import RECIPES, control_data, fails_with, tiny_overrides
from mmtk import rundir
from mmtk.cli import main

BASE = RECIPES / "baseline.yaml"


def _tiny(tmp_path, *extra):
    # 500 test samples (not 10,000): these runs are interrupted, damaged and resumed, not scored
    sets = tiny_overrides(2) + ["data.n_test=500", f"output.dir={tmp_path / 'runs'}", "train.checkpoint_seconds=0",
                                *extra]
    return [a for s in sets for a in ("--set", s)]


def _run_dir(tmp_path) -> Path:
    return next((tmp_path / "runs" / "baseline").iterdir())


def _interrupted_run(tmp_path, capsys, monkeypatch) -> Path:
    """A run killed by Ctrl-C after its first epoch: resume.pt exists, metrics.json does not."""
    from mmtk import stage_loop

    original = stage_loop.StageLoop.maybe_snapshot

    def interrupt_after_snapshot(self, st, stop):
        original(self, st, stop)
        self.writer.wait()
        raise KeyboardInterrupt

    monkeypatch.setattr(stage_loop.StageLoop, "maybe_snapshot", interrupt_after_snapshot)
    assert main(["run", str(BASE), "--quiet", *_tiny(tmp_path)]) == 130
    monkeypatch.setattr(stage_loop.StageLoop, "maybe_snapshot", original)
    directory = _run_dir(tmp_path)
    err = capsys.readouterr().err
    assert f"mmtk run --resume {directory}" in err and "RUN_DIR" not in err   # the real folder
    assert (directory / "trials/seed0/resume.pt").is_file()
    return directory


@pytest.mark.slow
def test_ctrl_c_names_the_real_folder_and_resume_finishes(tmp_path, capsys, monkeypatch):
    directory = _interrupted_run(tmp_path, capsys, monkeypatch)
    assert main(["run", "--resume", str(directory), "--quiet", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["summary"]["test"]["mean"]


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_a_damaged_resume_snapshot_is_a_clear_error(tmp_path, capsys, monkeypatch, damage):
    directory = _interrupted_run(tmp_path, capsys, monkeypatch)
    snap = directory / "trials/seed0/resume.pt"
    data = snap.read_bytes()
    snap.write_bytes(data[: len(data) // 3] if damage == "truncate" else b"not a checkpoint at all")
    err = fails_with(capsys, ["run", "--resume", str(directory)], str(snap), "delete it and resume again")
    assert "weights_only=False" not in err
    snap.unlink()   # the advice works: the stage restarts from its first epoch
    assert main(["run", "--resume", str(directory), "--quiet"]) == 0


@pytest.mark.slow
def test_damaged_finished_run_files(tmp_path, capsys):
    assert main(["run", str(BASE), "--quiet", *_tiny(tmp_path)]) == 0
    capsys.readouterr()
    directory = _run_dir(tmp_path)
    (directory / "metrics.json").write_text('{"summary": ')
    # eval recomputes from the kept predictions, so a damaged summary loses nothing ...
    assert main(["eval", str(directory), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["summary"]["test"]["mean"]
    # ... while a damaged trial file is named, by eval and by --resume
    trial_metrics = directory / "trials/seed0/metrics.json"
    trial_metrics.write_text("{")
    fails_with(capsys, ["eval", str(directory)], str(trial_metrics), "corrupt or truncated")
    fails_with(capsys, ["run", "--resume", str(directory)], str(trial_metrics), "corrupt or truncated")
    (directory / "recipe.yaml").write_text("name: [unclosed\n")
    fails_with(capsys, ["run", "--resume", str(directory)], str(directory / "recipe.yaml"), "invalid YAML")
    fails_with(capsys, ["eval", str(directory)], str(directory / "recipe.yaml"))



@pytest.mark.slow
def test_a_full_disk_names_the_file_and_the_run_resumes(tmp_path, capsys, monkeypatch):
    original = rundir.os.replace

    def disk_full_for_stage_checkpoints(src, dst):
        if Path(dst).name.startswith("stage-"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(src, dst)

    monkeypatch.setattr(rundir.os, "replace", disk_full_for_stage_checkpoints)
    err = fails_with(capsys, ["run", str(BASE), "--quiet", *_tiny(tmp_path)], "stage-main.pt",
                 "No space left on device", "mmtk run --resume")
    directory = _run_dir(tmp_path)
    assert f"--resume {directory}" in err
    assert not list(directory.rglob(".*.tmp")), "a failed write left its temporary file"
    monkeypatch.setattr(rundir.os, "replace", original)
    (directory / "trials/seed0/.resume.pt.abc.tmp").write_bytes(b"half")  # a killed write's leftover
    assert main(["run", "--resume", str(directory), "--quiet"]) == 0
    assert (directory / "metrics.json").is_file()
    assert not list(directory.rglob(".*.tmp")), "leftover temporary files are cleaned on resume"


@pytest.mark.slow
def test_run_files_follow_the_umask(tmp_path, capsys):
    old = os.umask(0o022)
    try:
        rundir._MODE = 0o644    # what the module computes at import under this umask
        assert main(["run", str(BASE), "--quiet", *_tiny(tmp_path)]) == 0
    finally:
        os.umask(old)
    directory = _run_dir(tmp_path)
    for name in ("recipe.yaml", "metrics.json", "trials/seed0/model.pt"):
        mode = stat.S_IMODE((directory / name).stat().st_mode)
        assert mode == 0o644, f"{name} has mode {oct(mode)}"


@pytest.mark.slow
def test_non_finite_loss_before_any_checkpoint_says_so(tmp_path, capsys):
    err = fails_with(capsys, ["run", str(BASE), "--quiet", *_tiny(tmp_path, "train.optimizer.lr=1e30",
                                                              "train.grad_clip=null")],
                 "non-finite loss", "No checkpoint of this stage exists yet")
    assert "last good checkpoint is kept" not in err


def test_json_into_a_closed_pipe_ends_quietly(tmp_path):
    proc = subprocess.run(f"{sys.executable} -m mmtk list components --json | head -c 10",
                          shell=True, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


def _children(pid: int) -> list[int]:
    out = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat_file.parent.name))
    return out


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find child processes")
def test_jobs_workers_die_with_their_parent(tmp_path):
    out = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "mmtk", "run", str(BASE), "--quiet", "--jobs", "2",
                             "--set", "seed=[0, 1]", "--set", "train.epochs=200", "--set", "train.patience=null",
                             "--set", control_data(600), "--set", "data.n_test=500", "--set", f"output.dir={out}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not list(out.glob("*/*/trials/*/data.json")):
        time.sleep(0.2)
    workers = [c for c in _children(proc.pid)]
    assert workers, "no worker processes started"
    descendants = workers + [g for w in workers for g in _children(w)]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 20
    while time.time() < deadline and any(Path(f"/proc/{p}").exists() and
                                         "Z" not in Path(f"/proc/{p}/stat").read_text().split()[2]
                                         for p in descendants if Path(f"/proc/{p}/stat").exists()):
        time.sleep(0.2)
    alive = [p for p in descendants if Path(f"/proc/{p}/stat").exists()
             and Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"]
    assert not alive, f"worker processes {alive} outlived their parent"
    files = {p: p.stat().st_mtime for p in out.rglob("*") if p.is_file()}
    time.sleep(1.5)
    assert files == {p: p.stat().st_mtime for p in out.rglob("*") if p.is_file()}, "still writing"


@pytest.mark.slow
def test_a_damaged_stage_checkpoint_is_named_on_resume(tmp_path, capsys, monkeypatch, system):
    """Interrupted in the second stage: resuming reads the first stage's checkpoint."""
    from conftest import prepare
    from mmtk import stage_loop
    from mmtk.run import Run

    recipe = {"name": "two", "data": {"type": "synthetic", "n_samples": 200},
              "model": {"latent_dim": 8, "encoders": {m: {"type": "mlp", "hidden": 8}
                                                      for m in ("audio", "text", "visual")},
                        "fuser": {"type": "concat"}, "head": {"type": "mlp", "hidden": [8]}},
              "train": {"epochs": 2, "patience": None, "checkpoint_seconds": 0},
              "stages": [{"name": "first"}, {"name": "second", "init_from": "first"}]}
    original = stage_loop.StageLoop.maybe_snapshot

    def interrupt_in_second_stage(self, st, stop):
        original(self, st, stop)
        if self.index == 1:
            self.writer.wait()
            raise KeyboardInterrupt

    monkeypatch.setattr(stage_loop.StageLoop, "maybe_snapshot", interrupt_in_second_stage)
    run = Run.create(prepare(system, recipe, tmp_path), system)
    with pytest.raises(KeyboardInterrupt):
        run.execute()
    monkeypatch.setattr(stage_loop.StageLoop, "maybe_snapshot", original)
    stage = run.directory / "trials/seed0/stage-first.pt"
    stage.write_bytes(stage.read_bytes()[:100])
    fails_with(capsys, ["run", "--resume", str(run.directory)], str(stage), "corrupt or truncated")
