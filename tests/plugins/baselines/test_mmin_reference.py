"""MMIN fidelity: the reference's initialisation switch and the mmin-reference recipe."""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch
from torch import nn

from conftest import RECIPES
from mmtk.run import Run
from mmtk_baselines.autoencoders import CascadeResidualAE
from mmtk_baselines.mmin import MMINImagination, kaiming_init

MODS = ("audio", "text", "visual")


def _slot(init: str, latent: int = 128) -> MMINImagination:
    return MMINImagination(MODS, latent, lambda m: nn.Linear(4, latent), pretrained_teacher=False,
                           init=init)


def _linears(slot: MMINImagination) -> list[nn.Linear]:
    slot.requires_grad_(False)
    return [m for ae in (slot.forward_ae, slot.backward_ae) for m in ae.modules()
            if isinstance(m, nn.Linear)]


def test_kaiming_init_is_the_reference_init_net():
    torch.manual_seed(0)
    layers = _linears(_slot("kaiming"))
    assert len(layers) == 2 * (5 * 6 + 2)      # 5 blocks x (3 + 3 layers) + transition, twice
    for layer in layers:
        assert float(layer.bias.abs().max()) == 0.0
        expected = (2.0 / layer.in_features) ** 0.5   # Kaiming normal, fan_in, gain sqrt(2)
        assert abs(float(layer.weight.std()) / expected - 1) < 0.1, layer
    # the default keeps PyTorch's own: uniform weights of std 1/sqrt(3 fan_in), non-zero biases
    for layer in _linears(_slot("torch")):
        assert float(layer.bias.abs().max()) > 0.0
        assert abs(float(layer.weight.std()) * (3 * layer.in_features) ** 0.5 - 1) < 0.1


def test_kaiming_init_makes_the_cascade_start_far_too_large():
    """What the fidelity study found in both codes: with the reference's init the imagination
    starts orders of magnitude off the unit-scale embeddings (stage-2 losses in the hundreds
    and more in the first steps); PyTorch's default starts near them."""
    x = torch.rand(64, 384)   # LSTM/TextCNN embeddings lie in about [0, 1)
    errors = {}
    for init in ("torch", "kaiming"):
        torch.manual_seed(0)
        ae = CascadeResidualAE(384, [256, 128, 64], blocks=5)
        if init == "kaiming":
            kaiming_init(ae)
        with torch.no_grad():
            out, _ = ae(x)
        errors[init] = float(((out - x) ** 2).mean())
    assert errors["torch"] < 1.0
    assert errors["kaiming"] > 100 * errors["torch"]


def test_share_weights_with_kaiming_init_keeps_one_cascade():
    slot = MMINImagination(MODS, 8, lambda m: nn.Linear(4, 8), layers=[6, 3], blocks=2,
                           share_weights=True, pretrained_teacher=False, init="kaiming")
    assert slot.backward_ae is slot.forward_ae


def test_init_value_is_checked(validate):
    setting = "stages.1.model.reconstructor.init"
    assert validate(RECIPES / "mmin.yaml", f"{setting}=kaiming")[0] == 0
    code, err = validate(RECIPES / "mmin.yaml", f"{setting}=xavier")
    assert code == 2 and "Traceback" not in err
    assert "model.reconstructor.init (stage 'mmin'): expected 'torch' | 'kaiming', got str 'xavier'" in err


def _tiny_layout(root, n: int = 24, seed: int = 0) -> None:
    """MMIN's layout (as tests/plugins/datasets write it), fold 1, 16/4/4 utterances."""
    rng = np.random.default_rng(seed)
    ids = [f"Ses01F_u{i:03d}" for i in range(n)]
    for letter, name, dim, frames in (("A", "comparE", 5, None), ("V", "denseface", 4, 6),
                                      ("L", "bert_large", 7, 6)):
        (root / letter).mkdir(parents=True)
        with h5py.File(root / letter / f"{name}.h5", "w") as f:
            for uid in ids:
                t = frames or int(rng.integers(2, 7))
                f.create_dataset(uid, data=(rng.normal(size=(t, dim)) + 3.0).astype(np.float32))
    fdir = root / "target" / "1"
    fdir.mkdir(parents=True)
    labels = np.arange(n) % 4
    for stem, rows in (("trn", range(16)), ("val", range(16, 20)), ("tst", range(20, 24))):
        np.save(fdir / f"{stem}_label.npy", np.eye(4)[labels[list(rows)]])
        np.save(fdir / f"{stem}_int2name.npy", np.array([[ids[i].encode()] for i in rows]))


def test_mmin_reference_recipe_states_the_reference_choices(prepare_tree, tmp_path):
    _tiny_layout(tmp_path / "data")
    ours = prepare_tree(RECIPES / "mmin-iemocap.yaml", [f"data.root={tmp_path / 'data'}"])
    ref = prepare_tree(RECIPES / "mmin-reference.yaml", [f"data.root={tmp_path / 'data'}"])
    assert ref.name == "mmin-reference" and ref.data.dataset.type == "mmin_layout"
    assert ref.data.normalize == ["audio"] and ours.data.normalize is True
    pre, mmin = ref.stages
    assert (pre.train.epochs, pre.train.scheduler.params["constant_epochs"]) == (20, 10)
    assert (mmin.train.epochs, mmin.train.scheduler.params["constant_epochs"]) == (60, 30)
    assert mmin.model.reconstructor.params["init"] == "kaiming"
    assert "init" not in ours.stages[1].model.reconstructor.params
    # everything else is mmin-iemocap's (hence mmin.yaml's) MMIN
    assert mmin.train.optimizer.params == ours.stages[1].train.optimizer.params
    assert mmin.losses.weights == ours.stages[1].losses.weights
    assert mmin.model.fuser.params == ours.stages[1].model.fuser.params
    assert ref.last_stage.missing.eval.type == "six_conditions"
    assert pre.train.monitor == mmin.train.monitor == "uar"
    # the reference's random batches; mmtk's own IEMOCAP recipe buckets them by length
    assert pre.train.bucket_by_length is mmin.train.bucket_by_length is False
    assert all(s.train.bucket_by_length is True for s in ours.stages)


@pytest.mark.slow
def test_mmin_reference_runs_and_its_init_shows_in_the_first_losses(system, prepare_tree, tmp_path):
    """Both stages run on MMIN's layout; the stage-2 cycle loss of the first epoch is far larger
    with the reference's init than with init: torch, everything else equal."""
    _tiny_layout(tmp_path / "data")
    cycle: dict[str, float] = {}
    seen: set = set()
    for init in ("kaiming", "torch"):
        tree = prepare_tree(RECIPES / "mmin-reference.yaml", [
            f"data.root={tmp_path / 'data'}", "train.batch_size=8",
            "stages.0.train.epochs=1", "stages.1.train.epochs=1",
            f"stages.1.model.reconstructor.init={init}"])
        results = Run.create(tree, system).execute()
        assert 0.0 <= results["summary"]["test"]["mean"]["uar"]["mean"] <= 1.0
        new = set(tmp_path.rglob("history-mmin.json")) - seen
        assert len(new) == 1, new
        seen |= new
        history = json.loads(new.pop().read_text())
        cycle[init] = history[0]["loss/reconstructor/cycle"]
    assert cycle["torch"] < 1.0 < 100 * cycle["torch"] < cycle["kaiming"], cycle
