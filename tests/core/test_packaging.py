"""Packaging and start-up: plugins load without importing model code or their optional
packages, a missing package fails only its plugin (naming the pip extra), and a wheel
installed outside any checkout has every plugin's recipes."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from conftest import control_data
from mmtk.plugins import load_plugins
from mmtk.registry import first_doc_line

REPO = Path(__file__).resolve().parents[2]
OPTIONAL = ("normflows", "transformers", "h5py", "torch", "numpy")
# modules holding the built-in plugins' models and readers: loading or listing plugins must
# not import them
MODEL_MODULES = ("mmtk_basic.encoders", "mmtk_basic.fusion", "mmtk_basic.training",
                 "mmtk_cmarr.alignment", "mmtk_cmarr.reconstruction", "mmtk_cmarr.fusion",
                 "mmtk_cmarr.refinement", "mmtk_baselines.impute", "mmtk_baselines.mmin",
                 "mmtk_hf.encoders", "mmtk_hf.backbones", "mmtk_datasets.arrays",
                 "mmtk_datasets.mmin", "mmtk_datasets.mmsa", "mmtk_datasets.handwritten",
                 "mmtk_datasets.sentiment", "mmtk_recovery.dicmor", "mmtk_recovery.imder")


def python(code: str, cwd: Path | None = None, exe: str = sys.executable) -> subprocess.CompletedProcess:
    return subprocess.run([exe, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=300)


def imported_after(argv: list[str]) -> set[str]:
    """The modules of interest that ``mmtk ARGV`` imported, run in a fresh interpreter."""
    code = ("import contextlib, io, sys\nfrom mmtk.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n        main(%r)\n    except SystemExit:\n        pass\n"
            "print(' '.join(sorted(sys.modules)))\n" % (argv,))
    out = python(code)
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split()) & {*OPTIONAL, *MODEL_MODULES}


def test_importing_the_cli_imports_no_optional_package():
    out = python("import mmtk.cli, sys; print(sorted(m for m in sys.modules "
                 "if m.split('.')[0] in {'normflows','transformers','h5py'}))")
    assert out.stdout.strip() == "[]", out.stderr


@pytest.mark.parametrize("argv", [["--help"], ["list", "components"]])
def test_help_and_listing_import_no_model_code(argv):
    assert imported_after(argv) == set()


def test_registered_summaries_are_the_docstrings_first_lines():
    """Plugins register components by import path with their summary written out; it must
    be what the docstring says (what `mmtk list components` shows without importing)."""
    system = load_plugins()
    builtin = [s for s in system.registry.list() if s.provider.distribution == "mmtk"]
    assert len(builtin) > 30
    wrong = {f"{s.kind}/{s.qualified_name}": (s.summary, first_doc_line(s.obj))
             for s in builtin if s.summary != first_doc_line(s.obj)}
    assert not wrong, wrong


HIDE = "import sys; sys.modules[%r] = None\nfrom mmtk.cli import main\nraise SystemExit(main(%r))\n"


@pytest.mark.parametrize("package, plugin, extra, component", [
    ("normflows", "cmarr", "cmarr", "reconstructor/flow"),
    ("transformers", "hf", "hf", "encoder/hf_text")])
def test_a_missing_package_fails_only_its_plugin_naming_the_extra(package, plugin, extra, component):
    listed = python(HIDE % (package, ["list", "plugins", "--json"]))
    assert listed.returncode == 0, listed.stderr
    import json
    status = {p["name"]: p for p in json.loads(listed.stdout)}
    assert status[plugin]["status"] == "failed"
    assert f"'{package}'" in status[plugin]["error"] and f"pip install 'mmtk[{extra}]'" in status[plugin]["error"]
    assert all(p["status"] == "ok" for name, p in status.items() if name != plugin), status
    shown = python(HIDE % (package, ["show", "component", component]))
    assert shown.returncode == 2 and "Traceback" not in shown.stderr
    assert f"mmtk[{extra}]" in shown.stderr and package in shown.stderr
    # the other plugins keep working
    other = python(HIDE % (package, ["run", str(REPO / "recipes" / "baseline.yaml"), "--dry-run"]))
    assert other.returncode == 0, other.stderr


def test_a_recipe_of_a_failed_plugin_names_the_missing_package():
    out = python(HIDE % ("normflows", ["validate", str(REPO / "recipes" / "cmarr.yaml")]))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "normflows" in out.stderr and "mmtk[cmarr]" in out.stderr


# --------------------------------------------------------------------- installed wheel ---

def _site_packages(env: Path) -> Path:
    return Path(sysconfig.get_path("purelib", vars={"base": str(env), "platbase": str(env)}))


@pytest.mark.slow
def test_a_wheel_outside_the_checkout_runs_its_recipes(tmp_path):
    """Build a wheel from a copy of the sources, install it into a fresh venv that borrows
    this environment's third-party packages (torch & co.), and run from an empty folder."""
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "runs")
    for part in ("mmtk", "plugins"):
        shutil.copytree(REPO / part, src / part, ignore=ignore)
    for part in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / part, src / part)
    wheels = tmp_path / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                            "--quiet", "-w", str(wheels), str(src)], capture_output=True, text=True,
                           timeout=600)
    assert built.returncode == 0, built.stderr
    wheel = next(wheels.glob("mmtk-*.whl"))

    env = tmp_path / "env"
    venv.EnvBuilder(with_pip=False).create(env)
    site = _site_packages(env)
    # borrow torch, numpy, normflows ... but not this checkout's editable mmtk
    borrowed = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    (site / "borrowed.pth").write_text("\n".join(borrowed) + "\n")
    installed = subprocess.run([sys.executable, "-m", "pip", "--python", str(env / "bin" / "python"),
                                "install", "--no-deps", "--quiet", str(wheel)],
                               capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr

    work = tmp_path / "elsewhere"
    work.mkdir()
    mmtk = env / "bin" / "mmtk"
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MMTK_DATA")}

    def run(*argv):
        out = subprocess.run([str(mmtk), *argv], capture_output=True, text=True, cwd=work,
                             env=clean, timeout=600)
        assert out.returncode == 0, out.stderr
        return out.stdout

    where = subprocess.run([str(env / "bin" / "python"), "-c",
                            "import mmtk, mmtk_cmarr; print(mmtk.__file__); print(mmtk_cmarr.__file__)"],
                           capture_output=True, text=True, cwd=work, env=clean).stdout.split()
    assert where and all(p.startswith(str(site)) for p in where), where   # the wheel, not the checkout
    recipes = run("list", "recipes", "--json")
    import json
    listed = {r["name"]: r["path"] for r in json.loads(recipes)}
    assert {"cmarr", "cmarr_no_flow", "baseline", "mean-impute", "mmin"} <= set(listed)
    assert all(p.startswith(str(site)) for p in listed.values()), listed
    assert "valid" in run("run", "cmarr", "--dry-run")
    # a few test samples: the run only has to finish (control_data's 10,000 cost ~10 s of
    # CM-ARR evaluation)
    run("run", "cmarr", "--quiet", "--set", "train.epochs=1", "--set", control_data(240),
        "--set", "data.n_test=200", "--set", f"output.dir={work / 'runs'}")
    assert list((work / "runs").glob("cmarr/*/metrics.json"))
