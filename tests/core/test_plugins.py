"""Plugin discovery, isolation of broken plugins, duplicates, and a real installed package."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import mmtk
from mmtk.errors import MmtkError, PluginError
from mmtk.plugins import load_plugins
from mmtk.registry import ComponentSpec, Provider, Registry

FIXTURES = Path(__file__).parent / "fixtures"


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
    assert spec.summary


def test_broken_plugin_is_isolated_and_reported():
    system = load_plugins(extra=[("good", GoodPlugin()), ("broken", BrokenPlugin())])
    assert system.statuses["good"].status == "ok"
    assert system.statuses["broken"].status == "failed"
    assert "boom while registering" in system.statuses["broken"].error
    assert system.registry.get("encoder", "throwaway")
    with pytest.raises(MmtkError) as info:      # nothing of the broken plugin survives
        system.registry.get("encoder", "half_registered")
    assert "broken" in str(info.value) and "failed to load" in str(info.value)


def test_strict_plugins_makes_failure_fatal():
    with pytest.raises(PluginError, match="broken"):
        load_plugins(strict=True, extra=[("broken", BrokenPlugin())])


def test_same_object_twice_is_a_noop_and_clash_needs_provider():
    reg = Registry()
    obj = GoodPlugin.Enc
    reg.add(ComponentSpec("encoder", "x", obj, Provider("p1")))
    reg.add(ComponentSpec("encoder", "x", obj, Provider("p1")))
    assert len(reg.list("encoder")) == 1
    system = load_plugins(extra=[("clash", ClashPlugin())])
    with pytest.raises(MmtkError) as info:
        system.registry.get("encoder", "mlp")
    assert "basic:mlp" in str(info.value) and "clash:mlp" in str(info.value)
    assert system.registry.get("encoder", "clash:mlp").obj is ClashPlugin.Mlp
    assert system.registry.get("encoder", "basic:mlp").provider.plugin == "basic"


def test_env_restricts_loading(monkeypatch):
    monkeypatch.setenv("MMTK_DISABLE_PLUGINS", "basic")
    system = load_plugins()
    assert system.statuses["basic"].status == "disabled"
    assert not [s for s in system.registry.list() if s.provider.plugin == "basic"]
    monkeypatch.delenv("MMTK_DISABLE_PLUGINS")
    monkeypatch.setenv("MMTK_LOAD_PLUGINS", "basic")
    system = load_plugins()
    assert system.statuses["basic"].status == "ok"
    assert all(s.status == "disabled" for n, s in system.statuses.items() if n != "basic")


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


def _mmtk(*args, env=None):
    return subprocess.run([sys.executable, "-m", "mmtk", *args], capture_output=True, text=True,
                          env=env, timeout=300)


@pytest.mark.slow
def test_third_party_package_installed_with_pip(tmp_path):
    """pip-install a real plugin distribution into a target dir; mmtk discovers and uses it."""
    target = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                          "--no-build-isolation", "--no-index", "--target", str(target),
                          str(FIXTURES / "mmtk-demo-plugin")], capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stderr
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")]))
    listed = _mmtk("list", "components", "--kind", "encoder", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert rows["demo_sum"]["provider"] == "demo"
    assert rows["demo_sum"]["distribution"] == "mmtk-demo-plugin" and rows["demo_sum"]["version"] == "0.3.1"
    recipe = tmp_path / "r.yaml"
    root = Path(__file__).resolve().parents[2]
    recipe.write_text(f"extends: {root / 'recipes' / 'baseline.yaml'}\nname: demo\n"
                      "model:\n  encoders:\n    audio: {type: demo_sum, scale: 0.5}\n")
    ran = _mmtk("run", str(recipe), "--set", "train.epochs=1", "--set", "data.n_samples=200",
                "--set", f"output.dir={tmp_path / 'runs'}", "--json", "--quiet", env=env)
    assert ran.returncode == 0, ran.stderr
    assert "mean" in json.loads(ran.stdout)["summary"]["test"]
    broken = dict(env, MMTK_DISABLE_PLUGINS="demo")
    err = _mmtk("validate", str(recipe), env=broken)
    assert err.returncode == 2 and "unknown encoder 'demo_sum'" in err.stderr
