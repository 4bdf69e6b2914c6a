"""AE / CRA feature imputation and mean imputation."""
from __future__ import annotations

import pytest
import torch

from mmtk.batch import ModalityBatch
from mmtk.errors import MmtkError
from mmtk.pipeline import State, Targets
from mmtk_baselines.impute import AEImpute, CRAImpute, MeanImpute, utterance_features

MODS = ("audio", "text", "visual")
IN_DIMS = {"audio": 6, "text": 5, "visual": 4}
LATENT = 8


def _truth(n: int, seed: int = 0, frames: bool = False) -> ModalityBatch:
    g = torch.Generator().manual_seed(seed)
    shape = (lambda m: (n, 3, IN_DIMS[m])) if frames else (lambda m: (n, IN_DIMS[m]))
    inputs = {m: torch.randn(*shape(m), generator=g) for m in MODS}
    lengths = {m: torch.randint(1, 4, (n,), generator=g) for m in MODS} if frames else {}
    return ModalityBatch(inputs, torch.ones(n, 3, dtype=torch.bool), MODS,
                         torch.zeros(n, dtype=torch.long), None, lengths)


def _state(present, truth, reps=None, training=True) -> State:
    reps = reps or {m: torch.randn(truth.size, LATENT) for m in MODS}
    return State(reps=reps, present=present, modalities=MODS, training=training,
                 targets=Targets(truth, None) if training else None)  # type: ignore[arg-type]


@pytest.mark.parametrize("cls", [AEImpute, CRAImpute])
def test_recon_loss_counts_only_dropped_modalities(cls):
    torch.manual_seed(0)
    slot = cls(IN_DIMS, MODS, LATENT)
    present = torch.tensor([[1, 0, 0], [0, 1, 1], [1, 1, 0], [1, 1, 1]]).bool()
    truth = _truth(4)
    state = _state(present, truth)
    new, losses = slot(state)
    rebuilt = torch.cat([new.reps[m] for m in MODS], -1)
    expected, cells = 0.0, 0
    for i, m in enumerate(MODS):
        for row in range(4):
            if not present[row, i]:
                guess = slot.decoders[m](rebuilt[row])
                expected = expected + ((guess - truth.inputs[m][row]) ** 2).mean()
                cells += 1
    torch.testing.assert_close(losses["recon"], expected / cells)
    # changing the truth of present cells changes nothing; of a dropped cell, the loss
    changed = {m: torch.where(present[:, i:i + 1], truth.inputs[m] + 5.0, truth.inputs[m])
               for i, m in enumerate(MODS)}
    same = slot(_state(present, ModalityBatch(changed, truth.present, MODS, truth.labels), state.reps))[1]
    torch.testing.assert_close(same["recon"], losses["recon"])
    moved = dict(truth.inputs, audio=truth.inputs["audio"] + 5.0)
    other = slot(_state(present, ModalityBatch(moved, truth.present, MODS, truth.labels), state.reps))[1]
    assert not torch.allclose(other["recon"], losses["recon"])


def test_no_dropped_cell_gives_zero_loss_with_graph_and_data_gaps_are_skipped():
    slot = AEImpute(IN_DIMS, MODS, LATENT)
    truth = _truth(3)
    loss = slot(_state(torch.ones(3, 3, dtype=torch.bool), truth))[1]["recon"]
    assert loss.item() == 0.0 and loss.requires_grad
    # a modality the data itself lacks has no ground truth: not a reconstruction target
    lacking = ModalityBatch(truth.inputs, torch.tensor([[1, 1, 0]] * 3).bool(), MODS, truth.labels)
    present = torch.tensor([[1, 1, 0]] * 3).bool()
    assert slot(_state(present, lacking))[1]["recon"].item() == 0.0


def test_frame_targets_are_means_over_real_frames():
    x = torch.tensor([[[1.0], [3.0], [100.0]], [[2.0], [4.0], [6.0]]])
    torch.testing.assert_close(utterance_features(x, torch.tensor([2, 3])), torch.tensor([[2.0], [4.0]]))
    slot = CRAImpute(IN_DIMS, MODS, LATENT, blocks=3)
    truth = _truth(4, frames=True)
    present = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]]).bool()
    _, losses = slot(_state(present, truth))
    assert torch.isfinite(losses["recon"]) and losses["recon"] > 0


def test_classifier_reads_the_autoencoder_output_and_eval_has_no_loss():
    torch.manual_seed(0)
    slot = AEImpute(IN_DIMS, MODS, LATENT)
    slot.eval()
    state = _state(torch.tensor([[1, 0, 0]]).bool(), _truth(1), training=False)
    new, losses = slot(state)
    fused = torch.cat([state.reps[m] for m in MODS], -1)
    torch.testing.assert_close(torch.cat([new.reps[m] for m in MODS], -1), slot.net(fused)[0])
    assert losses == {}


def test_bad_layers_are_clear_errors():
    with pytest.raises(MmtkError, match="layers"):
        AEImpute(IN_DIMS, MODS, LATENT, layers=[0])
    with pytest.raises(MmtkError, match="blocks"):
        CRAImpute(IN_DIMS, MODS, LATENT, blocks=0)
    with pytest.raises(MmtkError, match="momentum"):
        MeanImpute(MODS, LATENT, momentum=0.0)


def test_mean_impute_uses_training_means_of_present_rows():
    slot = MeanImpute(MODS, LATENT, momentum=None)
    g = torch.Generator().manual_seed(0)
    seen = {m: [] for m in MODS}
    slot.train()
    for _ in range(3):
        present = torch.rand(5, 3, generator=g) > 0.4
        present[:, 2] = False                     # visual never present in training
        reps = {m: torch.randn(5, LATENT, generator=g) for m in MODS}
        for i, m in enumerate(MODS):
            seen[m].append(reps[m][present[:, i]])
        new, _ = slot(State(reps=reps, present=present, modalities=MODS, training=True))
        for i, m in enumerate(MODS):  # present rows untouched
            assert torch.equal(new.reps[m][present[:, i]], reps[m][present[:, i]])
    slot.eval()
    before = slot.means.clone()
    reps = {m: torch.randn(2, LATENT, generator=g) for m in MODS}
    present = torch.tensor([[1, 0, 0], [0, 0, 0]]).bool()
    new, _ = slot(State(reps=reps, present=present, modalities=MODS, training=False))
    assert torch.equal(slot.means, before), "evaluation must not update the means"
    torch.testing.assert_close(new.reps["text"], torch.cat(seen["text"]).mean(0).expand(2, -1))
    torch.testing.assert_close(new.reps["audio"][1], torch.cat(seen["audio"]).mean(0))
    assert torch.equal(new.reps["audio"][0], reps["audio"][0])
    assert torch.equal(new.reps["visual"], torch.zeros(2, LATENT))


def test_mean_impute_moving_average():
    slot = MeanImpute(("audio",), 2, momentum=0.5)
    present = torch.ones(1, 1, dtype=torch.bool)
    for value in (2.0, 4.0):
        slot(State(reps={"audio": torch.full((1, 2), value)}, present=present,
                   modalities=("audio",), training=True))
    torch.testing.assert_close(slot.means[0], torch.full((2,), 3.0))
