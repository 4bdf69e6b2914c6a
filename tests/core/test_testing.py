"""mmtk.testing: the contract test a plugin author runs in one line must catch broken
components, name what is wrong, and fail (never pass vacuously) when a plugin cannot load."""
from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch
from torch import nn

import mmtk
from mmtk.errors import MmtkError
from mmtk.plugins import load_plugins
from mmtk.testing import Case, ContractSkip, contract_cases, contract_test, run_case

DEMO = Path(__file__).parent / "fixtures" / "mmtk-demo-plugin"


def mean_frames(x, lengths):
    if x.dim() == 2:
        return x
    keep = (torch.arange(x.shape[1])[None, :] < lengths[:, None]).unsqueeze(-1)
    return (x * keep).sum(1) / lengths.clamp_min(1)[:, None]


class GoodEncoder(nn.Module):
    """Masked mean of the frames, then a linear map.

    Parameters:
        bias: whether the linear map has a bias
    """

    def __init__(self, in_dim: int, latent_dim: int, bias: bool = True):
        super().__init__()
        self.proj = nn.Linear(in_dim, latent_dim, bias=bias)

    def forward(self, x, lengths=None):
        return self.proj(mean_frames(x, lengths))


class UnusedLayerEncoder(GoodEncoder):
    """Builds a layer it never uses."""

    def __init__(self, in_dim: int, latent_dim: int):
        super().__init__(in_dim, latent_dim)
        self.unused = nn.Linear(in_dim, 3)


class WideEncoder(GoodEncoder):
    """Ignores latent_dim for its output size."""

    def __init__(self, in_dim: int, latent_dim: int):
        super().__init__(in_dim, latent_dim + 1)


class PaddingReader(GoodEncoder):
    """Averages every frame, padding included."""

    def forward(self, x, lengths=None):
        return self.proj(x.mean(1) if x.dim() == 3 else x)


class WrongDocs(GoodEncoder):
    """Documents a parameter it does not have.

    Parameters:
        hiden: a misspelled name
    """


class PresentMeanRefiner(mmtk.Slot):
    """Subtracts each modality's mean over the samples that have it: 0/0 when nobody has it."""

    def __init__(self, latent_dim: int):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(latent_dim))

    def forward(self, state):
        reps = {}
        for m, r in state.reps.items():
            have = state.column(m).float()[:, None]
            reps[m] = (r - (r * have).sum(0) / have.sum()) * self.scale
        state.reps = reps
        return state, {}


class MeanInputImputer(mmtk.InputImputer):
    """Fills an absent modality's inputs with its training mean (kept in a buffer)."""

    overwrite_observed = False

    def __init__(self, in_dims: dict[str, int], modalities: tuple[str, ...]):
        super().__init__()
        self.modalities = modalities
        for m in modalities:
            self.register_buffer(f"mean_{m}", torch.zeros(in_dims[m]))

    def fit(self, train):
        for m in self.modalities:
            getattr(self, f"mean_{m}").copy_(mean_frames(train.inputs[m], train.lengths.get(m)).mean(0))

    def impute(self, batch):
        from dataclasses import replace
        inputs = {}
        for i, m in enumerate(self.modalities):
            x, fill = batch.inputs[m], getattr(self, f"mean_{m}")
            keep = batch.present[:, i].view(-1, *([1] * (x.dim() - 1)))
            inputs[m] = fill.expand_as(x) if self.overwrite_observed else torch.where(keep, x, fill.expand_as(x))
        return replace(batch, inputs=inputs, present=torch.ones_like(batch.present))


class OverwritingImputer(MeanInputImputer):
    """Replaces observed inputs too."""

    overwrite_observed = True


class ForgetfulImputer(MeanInputImputer):
    """Keeps its fit in a plain attribute, lost when the model is saved."""

    def fit(self, train):
        self.means = {m: mean_frames(train.inputs[m], train.lengths.get(m)).mean(0) + 1 for m in self.modalities}
        for m in self.modalities:
            getattr(self, f"mean_{m}").zero_()

    def impute(self, batch):
        from dataclasses import replace
        means = getattr(self, "means", {m: getattr(self, f"mean_{m}") for m in self.modalities})
        inputs = {}
        for i, m in enumerate(self.modalities):
            x = batch.inputs[m]
            keep = batch.present[:, i].view(-1, *([1] * (x.dim() - 1)))
            inputs[m] = torch.where(keep, x, means[m].expand_as(x))
        return replace(batch, inputs=inputs, present=torch.ones_like(batch.present))


class ToyPlugin:
    @mmtk.hookimpl
    def mmtk_register_components(self, register):
        register("encoder", "good", GoodEncoder)
        register("encoder", "unused_layer", UnusedLayerEncoder)
        register("encoder", "wide", WideEncoder)
        register("encoder", "padding_reader", PaddingReader)
        register("encoder", "wrong_docs", WrongDocs)
        register("refiner", "present_mean", PresentMeanRefiner)
        register("reconstructor", "mean_inputs", MeanInputImputer)
        register("reconstructor", "overwriting", OverwritingImputer)
        register("reconstructor", "forgetful", ForgetfulImputer)


class BrokenPlugin:
    @mmtk.hookimpl
    def mmtk_register_components(self, register):
        raise ImportError("No module named 'fancy_dependency'")


@pytest.fixture(scope="module")
def toy_system():
    return load_plugins(extra=[("toy", ToyPlugin()), ("broken", BrokenPlugin())])


def outcome(case, tmp_path, system, allow=None):
    """'pass', 'skip: why' or 'fail: message' for one case."""
    try:
        run_case(case, tmp_path, system, allow or {})
    except ContractSkip as skip:
        return f"skip: {skip}"
    except AssertionError as exc:
        return f"fail: {exc}"
    except Exception as exc:  # an error the contract test did not turn into a clear failure
        return f"error: {type(exc).__name__}: {exc}"
    return "pass"


def results(system, tmp_path, plugin="toy", allow=None):
    out = {}
    for i, case in enumerate(contract_cases(plugin, system=system)):
        folder = tmp_path / str(i)
        folder.mkdir()
        out[case.id] = outcome(case, folder, system, allow)
    return out


def test_a_good_component_passes_every_check(toy_system, tmp_path):
    got = results(toy_system, tmp_path)
    good = {k: v for k, v in got.items() if k.startswith("encoder/toy:good::")}
    assert good == {f"encoder/toy:good::{c}": "pass" for c in
                    ("parameter_docs", "train_step", "absent_modality", "encoder_output", "padding")}
    assert got["plugin/toy::load"] == "pass"


def test_parameter_without_gradient_is_named(toy_system, tmp_path):
    got = results(toy_system, tmp_path)["encoder/toy:unused_layer::train_step"]
    assert got.startswith("fail: encoder 'toy:unused_layer' (toy) fails 'train_step': ")
    for m in ("audio", "text", "visual"):
        assert f"encoders.{m}.unused.weight" in got and f"encoders.{m}.unused.bias" in got
    assert "encoders.audio.proj.weight" not in got
    assert "allow_no_gradient" in got  # the way out, when it is legitimate


def test_an_explicit_allowance_with_a_reason_lets_it_pass(toy_system, tmp_path):
    allow = {"encoder/toy:unused_layer": {"unused.": "kept for checkpoints of an older version"}}
    case = Case("train_step", "toy", toy_system.registry.get("encoder", "toy:unused_layer"))
    assert outcome(case, tmp_path, toy_system, allow) == "pass"


@pytest.mark.parametrize("allow, message", [
    ({"encoder/toy:unused_layer": {"unused.": " "}}, "needs a reason"),
    ({"encoder/toy:unsued_layer": {"unused.": "why"}}, "not a registered component"),
])
def test_allowance_must_name_a_component_and_give_a_reason(toy_system, allow, message):
    with pytest.raises(MmtkError, match=message):
        contract_test("toy", allow_no_gradient=allow, system=toy_system)


def test_encoder_output_width_is_checked(toy_system, tmp_path):
    got = results(toy_system, tmp_path)
    assert "returned shape (8, 17); an encoder returns (batch, latent_dim) = (8, 16)" \
        in got["encoder/toy:wide::encoder_output"]


def test_padding_must_not_change_the_representation(toy_system, tmp_path):
    got = results(toy_system, tmp_path)
    assert got["encoder/toy:padding_reader::padding"].startswith("fail: ")
    assert "frames past a sample's length" in got["encoder/toy:padding_reader::padding"]
    assert got["encoder/toy:padding_reader::train_step"] == "pass"


def test_modality_absent_from_every_sample_must_not_give_nan(toy_system, tmp_path):
    got = results(toy_system, tmp_path)
    assert got["refiner/toy:present_mean::train_step"] == "pass"
    assert "NaN/inf logits in training" in got["refiner/toy:present_mean::absent_modality"]


def test_documented_parameter_that_does_not_exist(toy_system, tmp_path):
    got = results(toy_system, tmp_path)["encoder/toy:wrong_docs::parameter_docs"]
    assert "documents ['hiden'], which are not parameters" in got


def test_a_plugin_that_fails_to_load_fails_the_contract_test(toy_system, tmp_path):
    [case] = contract_cases("broken", system=toy_system)
    got = outcome(case, tmp_path, toy_system)
    assert got.startswith("fail: plugin 'broken' (object) failed to load: ")
    assert "fancy_dependency" in got


def test_a_plugin_that_is_not_installed_fails_the_contract_test(toy_system, tmp_path):
    [case] = contract_cases("not_there", system=toy_system)
    assert "no plugin named 'not_there' is installed" in outcome(case, tmp_path, toy_system)
    [case] = contract_cases(distribution="no-such-dist", system=toy_system)
    assert "no installed plugin comes from the distribution 'no-such-dist'" \
        in outcome(case, tmp_path, toy_system)


def test_a_disabled_plugin_fails_the_contract_test(monkeypatch, tmp_path):
    monkeypatch.setenv("MMTK_DISABLE_PLUGINS", "cmarr")
    system = load_plugins()
    [case] = contract_cases("cmarr", system=system)
    assert "did not load" in outcome(case, tmp_path, system)


@pytest.mark.slow
def test_one_line_contract_test_on_the_installed_demo_distribution(tmp_path):
    """The demo distribution, pip-installed: its good plugin passes, its broken component
    fails naming the parameter, its unimportable plugin fails the test."""
    site = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                          "--no-build-isolation", "--no-index", "--target", str(site), str(DEMO)],
                         capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stderr
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "pytest.ini").write_text("[pytest]\n")
    (suite / "test_demo.py").write_text(
        "from mmtk.testing import contract_test\n"
        "test_good = contract_test('demo')\n"
        "test_broken = contract_test('demo_broken')\n"
        "test_unimportable = contract_test('demo_unimportable')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    ran = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          f"--junitxml={tmp_path / 'out.xml'}", str(suite)],
                         capture_output=True, text=True, cwd=suite, env=env, timeout=300)
    assert ran.returncode == 1, ran.stdout + ran.stderr  # 1: some tests failed
    status = {}
    for case in ET.parse(tmp_path / "out.xml").getroot().iter("testcase"):
        failure = case.find("failure")
        status[case.get("name")] = "pass" if failure is None and case.find("skipped") is None \
            else (failure.get("message") if failure is not None else "skip")
    good = {k: v for k, v in status.items() if k.startswith("test_good[")}
    assert good and set(good.values()) == {"pass"}, good
    assert "test_good[encoder/demo:demo_sum::train_step]" in good
    broken = status["test_broken[encoder/demo_broken:demo_forgetful::train_step]"]
    assert "encoders.audio.skip.weight" in broken and "got no gradient" in broken
    assert status["test_broken[encoder/demo_broken:demo_forgetful::padding]"] == "pass"
    unimportable = status["test_unimportable[plugin/demo_unimportable::load]"]
    assert "failed to load" in unimportable and "mmtk_demo_missing_dependency" in unimportable


def test_an_input_imputer_must_keep_observed_inputs_and_save_its_fit(toy_system, tmp_path):
    got = results(toy_system, tmp_path)
    assert got["reconstructor/toy:mean_inputs::input_imputer"] == "pass"
    assert got["reconstructor/toy:mean_inputs::train_step"] == "pass"
    assert "impute changed observed audio inputs" in got["reconstructor/toy:overwriting::input_imputer"]
    assert "the fit is not in the state dict" in got["reconstructor/toy:forgetful::input_imputer"]
    assert got["refiner/toy:present_mean::train_step"] == "pass"
    real = load_plugins()
    for name, expected in (("baselines:ridge_impute", "pass"), ("baselines:ae_impute", "skip: not an input imputer")):
        case = Case("input_imputer", "baselines", real.registry.get("reconstructor", name))
        assert outcome(case, tmp_path, real) == expected, name
