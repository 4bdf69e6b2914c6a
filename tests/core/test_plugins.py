"""Plugin discovery, isolation of broken plugins, pluggy hygiene, name clashes, run hooks,
and a real installed package."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import mmtk
from conftest import control_data
from mmtk.errors import MmtkError, PluginError
from mmtk.plugins import load_plugins
from mmtk.registry import ComponentSpec, Provider, Registry

FIXTURES = Path(__file__).parent / "fixtures"
DEMO = FIXTURES / "mmtk-demo-plugin"


class GoodPlugin:
    class Enc:
        """A throwaway encoder."""
        def __init__(self, in_dim: int, latent_dim: int): ...

    @mmtk.hookimpl
    def mmtk_register_components(self, register):
        register("encoder", "throwaway", self.Enc)


class BrokenPlugin:
    @mmtk.hookimpl
    def mmtk_register_components(self, register):
        register("encoder", "half_registered", object)
        raise RuntimeError("boom while registering")


class ClashPlugin:
    class Mlp:
        """Another encoder called mlp."""
        def __init__(self, in_dim: int, latent_dim: int): ...

    @mmtk.hookimpl
    def mmtk_register_components(self, register):
        register("encoder", "mlp", self.Mlp)


def test_builtins_come_through_the_entry_point_group():
    system = load_plugins()
    assert system.statuses["basic"].status == "ok"
    assert system.statuses["basic"].source.startswith("entry point")
    spec = system.registry.get("encoder", "mlp")
    assert spec.provider.plugin == "basic" and spec.provider.distribution == "mmtk"
    assert spec.provider.builtin
    assert spec.summary
    assert system.notices() == []  # a clean installation has nothing to report


def test_broken_plugin_is_isolated_and_reported():
    system = load_plugins(extra=[("good", GoodPlugin()), ("broken", BrokenPlugin())])
    assert system.statuses["good"].status == "ok"
    assert system.statuses["broken"].status == "failed"
    assert "mmtk_register_components raised RuntimeError: boom while registering" \
        in system.statuses["broken"].error
    assert system.registry.get("encoder", "throwaway")
    with pytest.raises(MmtkError) as info:      # nothing of the broken plugin survives
        system.registry.get("encoder", "half_registered")
    assert "broken" in str(info.value) and "failed to load" in str(info.value)
    [line] = system.notices()
    assert line.startswith("plugin 'broken' failed to load and is skipped: ") and "\n" not in line


def test_strict_plugins_makes_failure_fatal():
    with pytest.raises(PluginError, match="broken"):
        load_plugins(strict=True, extra=[("broken", BrokenPlugin())])


# -- pluggy hygiene -------------------------------------------------------------------------
class MisspelledHook:
    @mmtk.hookimpl
    def mmtk_register_component(self, register):  # missing the final "s"
        register("encoder", "never", GoodPlugin.Enc)


class UnknownArgument:
    @mmtk.hookimpl
    def mmtk_register_components(self, registry):  # the spec's argument is "register"
        pass


class FewerArguments:
    """Implementations may declare fewer arguments than the spec: pluggy passes only those."""
    calls: list[str] = []

    @mmtk.hookimpl
    def mmtk_register_recipes(self):
        self.calls.append("recipes")

    @mmtk.hookimpl
    def mmtk_run_end(self, results):
        self.calls.append(f"run_end {results['name']}")


class Undecorated:
    def mmtk_register_components(self, register):  # forgot @mmtk.hookimpl
        register("encoder", "ignored", GoodPlugin.Enc)


def test_misspelled_hook_is_an_error_naming_plugin_and_hook():
    system = load_plugins(entry_points=False, extra=[("typo", MisspelledHook())])
    status = system.statuses["typo"]
    assert status.status == "failed"
    assert "unknown hook 'mmtk_register_component' (did you mean 'mmtk_register_components'?)" \
        in status.error
    assert not system.pm.has_plugin("typo")  # unregistered: check_pending now passes
    system.pm.check_pending()


def test_argument_the_spec_lacks_is_an_error():
    system = load_plugins(entry_points=False, extra=[("badarg", UnknownArgument())])
    assert system.statuses["badarg"].status == "failed"
    assert "registry" in system.statuses["badarg"].error
    assert "mmtk_register_components" in system.statuses["badarg"].error


def test_implementation_with_fewer_arguments_works():
    FewerArguments.calls = []
    system = load_plugins(entry_points=False, extra=[("few", FewerArguments())])
    assert system.statuses["few"].status == "ok", system.statuses["few"].error
    system.call_run_end(run=object(), results={"name": "r"})
    assert FewerArguments.calls == ["recipes", "run_end r"]


def test_undecorated_hook_function_is_reported():
    system = load_plugins(entry_points=False, extra=[("plain", Undecorated())])
    assert system.statuses["plain"].status == "failed"
    assert "not decorated with @mmtk.hookimpl" in system.statuses["plain"].error


def test_registration_hooks_run_only_for_the_plugin_being_loaded():
    calls = []

    class Counting:
        def __init__(self, tag):
            self.tag = tag

        @mmtk.hookimpl
        def mmtk_register_components(self, register):
            calls.append(self.tag)

    load_plugins(entry_points=False, extra=[("one", Counting("one")), ("two", Counting("two"))])
    assert calls == ["one", "two"]


@pytest.mark.parametrize("raising", [
    "import sys\nsys.exit(3)\n",
    "raise KeyboardInterrupt\n",
    "raise SystemExit\n",
    "class Odd(BaseException):\n    pass\nraise Odd('very odd')\n",
])
def test_plugin_whose_import_exits_or_raises_base_exception_is_skipped(tmp_path, raising):
    (tmp_path / "exits.py").write_text(raising)
    (tmp_path / "fine.py").write_text(
        "import mmtk\nclass E:\n    '''Fine.'''\n    def __init__(self, in_dim: int, latent_dim: int): ...\n"
        "@mmtk.hookimpl\ndef mmtk_register_components(register):\n    register('encoder', 'fine', E)\n")
    system = load_plugins(plugins_dir=tmp_path)
    assert system.statuses["local:exits"].status == "failed"
    assert system.registry.get("encoder", "fine")  # the next plugin still loads


def test_hook_raising_base_exception_is_skipped():
    class ExitsWhileRegistering:
        @mmtk.hookimpl
        def mmtk_register_components(self, register):
            raise SystemExit(1)

    system = load_plugins(entry_points=False, extra=[("exits", ExitsWhileRegistering())])
    assert system.statuses["exits"].status == "failed"
    assert "sys.exit(1)" in system.statuses["exits"].error


def test_broken_command_configure_marks_the_plugin_failed():
    class BadCommand:
        @mmtk.hookimpl
        def mmtk_register_commands(self, register):
            def configure(parser):
                parser.add_argument("--x")
                parser.add_argument("--x")  # argparse refuses a duplicate option
            register("bad", "a broken command", configure, lambda args: 0)

    system = load_plugins(entry_points=False, extra=[("badcmd", BadCommand())])
    assert system.statuses["badcmd"].status == "failed"
    assert "configure() of command 'bad'" in system.statuses["badcmd"].error
    assert "bad" not in system.commands


def test_missing_plugins_dir_is_an_error(tmp_path):
    with pytest.raises(MmtkError, match="is not a directory"):
        load_plugins(plugins_dir=tmp_path / "nope")


# -- run-lifecycle hooks --------------------------------------------------------------------
class RunHooks:
    def __init__(self, log, fail_start=None):
        self.log, self.fail_start = log, fail_start

    @mmtk.hookimpl
    def mmtk_run_start(self, run):
        if self.fail_start is not None:
            raise self.fail_start
        self.log.append(("start", run))

    @mmtk.hookimpl
    def mmtk_run_end(self, run, results):
        self.log.append(("end", results))


def test_run_hook_failure_is_reported_and_the_others_still_run(capsys):
    log = []
    system = load_plugins(entry_points=False, extra=[
        ("ok_hooks", RunHooks(log)), ("bad_hooks", RunHooks(log, RuntimeError("no network")))])
    system.call_run_start(run="R")
    system.call_run_end(run="R", results={"x": 1})
    assert ("start", "R") in log and log.count(("end", {"x": 1})) == 2
    err = capsys.readouterr().err
    assert "plugin 'bad_hooks' failed in mmtk_run_start: RuntimeError: no network" in err
    assert system.hook_failures == ["plugin 'bad_hooks' failed in mmtk_run_start: RuntimeError: no network"]
    assert system.notices() == []  # already said when it happened, not again on the next command


def test_run_hook_failure_is_fatal_under_strict_and_ctrl_c_still_stops():
    strict = load_plugins(strict=True, entry_points=False,
                          extra=[("bad_hooks", RunHooks([], RuntimeError("no network")))])
    with pytest.raises(PluginError, match="'bad_hooks' failed in mmtk_run_start"):
        strict.call_run_start(run="R")
    system = load_plugins(entry_points=False, extra=[("ctrl_c", RunHooks([], KeyboardInterrupt()))])
    with pytest.raises(KeyboardInterrupt):
        system.call_run_start(run="R")


def test_run_hook_calling_sys_exit_does_not_end_the_run(capsys):
    system = load_plugins(entry_points=False, extra=[("exits", RunHooks([], SystemExit(0)))])
    system.call_run_start(run="R")
    assert "failed in mmtk_run_start: it called sys.exit(0)" in capsys.readouterr().err


# -- name clashes ---------------------------------------------------------------------------
def test_same_object_twice_is_a_noop():
    reg = Registry()
    obj = GoodPlugin.Enc
    reg.add(ComponentSpec("encoder", "x", obj, Provider("p1")))
    reg.add(ComponentSpec("encoder", "x", obj, Provider("p1")))
    assert len(reg.list("encoder")) == 1


def test_a_plugin_reusing_a_builtin_name_does_not_change_what_the_name_means():
    system = load_plugins(extra=[("clash", ClashPlugin())])
    assert system.statuses["clash"].status == "ok"
    assert system.registry.get("encoder", "mlp").provider.plugin == "basic"
    assert system.registry.get("encoder", "basic:mlp").provider.plugin == "basic"
    assert system.registry.get("encoder", "clash:mlp").obj is ClashPlugin.Mlp
    [line] = system.notices()
    assert "encoder 'mlp' is registered by 'basic:mlp' and 'clash:mlp'" in line
    assert "means the built-in 'basic:mlp'" in line and "'clash:mlp'" in line


def test_two_third_party_plugins_sharing_a_name_must_be_qualified():
    reg = Registry()
    reg.add(ComponentSpec("encoder", "x", GoodPlugin.Enc, Provider("p1", "dist-one", "1")))
    reg.add(ComponentSpec("encoder", "x", ClashPlugin.Mlp, Provider("p2", "dist-two", "1")))
    with pytest.raises(MmtkError) as info:
        reg.get("encoder", "x")
    assert "'p1:x'" in str(info.value) and "'p2:x'" in str(info.value)
    assert reg.get("encoder", "p2:x").obj is ClashPlugin.Mlp


def test_shipped_recipe_still_validates_with_a_clashing_plugin_installed(tmp_path, capsys):
    from mmtk.cli import main
    from mmtk.plugins import reset_plugin_system

    (tmp_path / "clash.py").write_text(
        "import mmtk\nfrom torch import nn\nclass Mlp(nn.Module):\n    '''Imposter.'''\n"
        "    def __init__(self, in_dim: int, latent_dim: int, colour: str):\n        super().__init__()\n"
        "@mmtk.hookimpl\ndef mmtk_register_components(register):\n    register('encoder', 'mlp', Mlp)\n")
    recipe = Path(__file__).resolve().parents[2] / "recipes" / "cmarr.yaml"
    reset_plugin_system()
    try:
        # the imposter requires `colour`: had it been picked, validation would fail
        assert main(["--plugins-dir", str(tmp_path), "validate", str(recipe)]) == 0
        err = capsys.readouterr().err
        assert "mmtk: warning: encoder 'mlp' is registered by 'basic:mlp' and 'local:clash:mlp'" in err
        assert main(["--plugins-dir", str(tmp_path), "show", "component", "encoder/local:clash:mlp",
                     "--json"]) == 0
        shown = json.loads(capsys.readouterr().out)
        assert shown["provider"] == "local:clash" and shown["also_provided_by"] == ["basic:mlp"]
    finally:
        reset_plugin_system()


# -- environment variables ------------------------------------------------------------------
def test_env_restricts_loading(monkeypatch):
    monkeypatch.setenv("MMTK_DISABLE_PLUGINS", "basic")
    system = load_plugins()
    assert system.statuses["basic"].status == "disabled"
    assert not [s for s in system.registry.list() if s.provider.plugin == "basic"]
    assert system.notices() == []
    monkeypatch.delenv("MMTK_DISABLE_PLUGINS")
    monkeypatch.setenv("MMTK_LOAD_PLUGINS", "basic")
    system = load_plugins()
    assert system.statuses["basic"].status == "ok"
    assert all(s.status == "disabled" for n, s in system.statuses.items() if n != "basic")


@pytest.mark.parametrize("var", ["MMTK_DISABLE_PLUGINS", "MMTK_LOAD_PLUGINS"])
def test_misspelled_name_in_env_is_reported(monkeypatch, var):
    monkeypatch.setenv(var, "basic, cmar")
    system = load_plugins()
    [line] = system.notices()
    assert f"{var} names 'cmar', which is not an installed plugin (did you mean 'cmarr'?)" in line
    with pytest.raises(PluginError, match="cmar"):
        load_plugins(strict=True)


# -- local files and the CLI ----------------------------------------------------------------
def test_local_plugin_file(tmp_path):
    (tmp_path / "mine.py").write_text(
        "import mmtk\nfrom torch import nn\n"
        "class Fancy(nn.Module):\n    '''Local encoder.'''\n"
        "    def __init__(self, in_dim: int, latent_dim: int):\n        super().__init__()\n"
        "        self.l = nn.Linear(in_dim, latent_dim)\n"
        "    def forward(self, x, lengths=None):\n        return self.l(x if x.dim() == 2 else x.mean(1))\n"
        "@mmtk.hookimpl\ndef mmtk_register_components(register):\n    register('encoder', 'fancy', Fancy)\n")
    (tmp_path / "bad.py").write_text("raise ImportError('missing dependency xyz')\n")
    system = load_plugins(plugins_dir=tmp_path)
    assert system.registry.get("encoder", "fancy").provider.plugin == "local:mine"
    assert system.statuses["local:bad"].status == "failed"
    assert "missing dependency xyz" in system.statuses["local:bad"].error


def test_summary_is_the_components_own_docstring_never_a_base_class():
    from torch import nn

    class NoDoc(nn.Module):
        def __init__(self, in_dim: int, latent_dim: int):
            super().__init__()

    class NoDocPlugin:
        @mmtk.hookimpl
        def mmtk_register_components(self, register):
            register("encoder", "nodoc", NoDoc)

    system = load_plugins(entry_points=False, extra=[("nodoc", NoDocPlugin())])
    assert system.registry.get("encoder", "nodoc").summary == ""


def _mmtk(*args, env=None):
    return subprocess.run([sys.executable, "-m", "mmtk", *args], capture_output=True, text=True,
                          env=env, timeout=300)


@pytest.fixture(scope="module")
def demo_site(tmp_path_factory):
    """The demo distribution pip-installed into a target dir; the env that puts it on the path."""
    target = tmp_path_factory.mktemp("site")
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                          "--no-build-isolation", "--no-index", "--target", str(target), str(DEMO)],
                         capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stderr
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")]))


@pytest.mark.slow
def test_third_party_package_installed_with_pip(tmp_path, demo_site):
    """pip-install a real plugin distribution into a target dir; mmtk discovers and uses it."""
    env = demo_site
    listed = _mmtk("list", "components", "--kind", "encoder", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert rows["demo_sum"]["provider"] == "demo"
    assert rows["demo_sum"]["distribution"] == "mmtk-demo-plugin" and rows["demo_sum"]["version"] == "0.3.1"
    # the distribution's unimportable plugin is mentioned, in one line, on every command
    [warning] = [line for line in listed.stderr.splitlines() if "demo_unimportable" in line]
    assert "failed to load and is skipped: ModuleNotFoundError" in warning
    shown = _mmtk("show", "component", "encoder/demo_sum", env=env)
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"scale: float +\(default 1\.0\) +factor applied to the pooled frames "
                     r"before the linear map\n", shown.stdout), shown.stdout
    assert "demo_unimportable" in shown.stderr
    recipe = tmp_path / "r.yaml"
    root = Path(__file__).resolve().parents[2]
    recipe.write_text(f"extends: {root / 'recipes' / 'baseline.yaml'}\nname: demo\n"
                      "model:\n  encoders:\n    audio: {type: demo_sum, scale: 0.5}\n")
    ran = _mmtk("run", str(recipe), "--set", "train.epochs=1", "--set", control_data(200),
                "--set", "data.n_test=500", "--set", f"output.dir={tmp_path / 'runs'}", "--json", "--quiet",
                env=env)   # 500 test samples, not 10,000: the run only has to finish
    assert ran.returncode == 0, ran.stderr
    assert "mean" in json.loads(ran.stdout)["summary"]["test"]
    broken = dict(env, MMTK_DISABLE_PLUGINS="demo,demo_unimportable")
    err = _mmtk("validate", str(recipe), env=broken)
    assert err.returncode == 2 and "unknown encoder 'demo_sum'" in err.stderr
    assert "demo_unimportable" not in err.stderr  # disabled, so not a problem to report
