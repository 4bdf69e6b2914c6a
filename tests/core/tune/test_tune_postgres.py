"""The many-machine path: a real PostgreSQL server (a temporary data dir on a free local port,
stopped at the end) holding one study that two worker processes and a --join worker share.

The server binaries come from MMTK_PG_BIN, the PATH, or /usr/lib/postgresql/*/bin (.ci/run
installs Debian's postgresql when absent). PostgreSQL refuses to run as root, so as root the
server runs as the 'postgres' user (or 'nobody') through runuser/su."""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import optuna
import pytest

pytestmark = pytest.mark.slow


def pg_bin() -> Path | None:
    candidates = [os.environ.get("MMTK_PG_BIN", "")]
    found = shutil.which("initdb")
    candidates.append(str(Path(found).parent) if found else "")
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2])
                         if p.split("/")[-2].isdigit() else 0, reverse=True)
    for folder in candidates:
        if folder and (Path(folder) / "initdb").is_file() and (Path(folder) / "pg_ctl").is_file():
            return Path(folder)
    return None


def server_user() -> str | None:
    """None: run as ourselves; else the unprivileged user to run the server as (we are root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    pytest.skip("running as root and no unprivileged user (postgres, nobody) to run PostgreSQL as")


def as_user(user: str | None, argv: list[str]) -> list[str]:
    if user is None:
        return argv
    if shutil.which("runuser"):
        return ["runuser", "-u", user, "--", *argv]
    return ["su", user, "-s", "/bin/sh", "-c", " ".join(f"'{a}'" for a in argv)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres_url():
    binaries = pg_bin()
    if binaries is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) in MMTK_PG_BIN, on the PATH or in "
                    "/usr/lib/postgresql/*/bin; .ci/run installs them with apt-get install postgresql")
    user = server_user()
    root = Path(tempfile.mkdtemp(prefix="mmtk-pg-"))
    data, port = root / "data", free_port()
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    run = lambda argv: subprocess.run(as_user(user, argv), capture_output=True, text=True, timeout=120)  # noqa: E731
    made = run([str(binaries / "initdb"), "-D", str(data), "-U", "mmtk", "-A", "trust", "--no-sync", "-E", "UTF8"])
    assert made.returncode == 0, made.stdout + made.stderr
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    started = run([str(binaries / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w", "-t", "60",
                   "-o", options, "start"])
    assert started.returncode == 0, started.stdout + started.stderr + (root / "server.log").read_text()
    try:
        yield f"postgresql://mmtk@127.0.0.1:{port}/postgres"
    finally:
        run([str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(root, ignore_errors=True)


def test_workers_and_a_joined_worker_share_a_postgres_study(postgres_url, tune_cli, tiny_recipe, space_file):
    from mmtk.tune.storage import with_driver

    direct = with_driver(postgres_url)   # the test reads the study through Optuna itself
    main = tune_cli(str(tiny_recipe), "--space", str(space_file), "--trials", "5", "--jobs", "2",
                    "--storage", postgres_url, background=True)
    deadline = time.time() + 120
    names: list[str] = []
    while not names and time.time() < deadline and main.poll() is None:
        time.sleep(0.5)
        names = optuna.get_all_study_names(direct)
    assert names, "the study was never created: " + (main.communicate()[0] if main.poll() is not None else "")
    joined = tune_cli("--join", names[0], "--storage", postgres_url)
    out = main.communicate(timeout=300)[0]
    assert main.returncode == 0, out
    assert joined.returncode == 0, joined.stdout + joined.stderr
    assert f"joined study '{names[0]}'" in joined.stdout
    study = optuna.load_study(study_name=names[0], storage=direct)
    assert [t.number for t in study.trials] == [0, 1, 2, 3, 4]       # none lost, none twice
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    assert len({t.user_attrs["worker"] for t in study.trials}) >= 2   # the two --jobs processes at least
    assert "test (evaluated once, after selection on validation)" in out
    assert "***" not in postgres_url and "mmtk@127.0.0.1" in out      # no password to hide here
