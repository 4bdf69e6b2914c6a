"""The data contract, splitting, normalisation, the synthetic data and missing protocols."""
import pytest
import torch

from mmtk.batch import ModalityBatch, condition_code, parse_condition
from mmtk.data import Standardizer, TensorData, stratified_split
from mmtk.errors import MmtkError
from mmtk.protocols import MissingProtocol, training_masks

MODS = ("audio", "text", "visual")


def test_masked_zeroes_absent_values_even_nan():
    x = {"audio": torch.full((2, 3), float("nan")), "text": torch.ones(2, 4, 5), "visual": torch.ones(2, 2)}
    b = ModalityBatch(x, torch.ones(2, 3, dtype=torch.bool), MODS)
    keep = torch.tensor([[False, True, True], [True, False, True]])
    m = b.masked(keep)
    assert torch.equal(m.inputs["audio"][0], torch.zeros(3))
    assert torch.equal(m.inputs["text"][1], torch.zeros(4, 5))
    assert torch.equal(m.present, keep)
    data_absent = ModalityBatch(x, torch.tensor([[True, True, False], [True, True, True]]), MODS)
    assert not data_absent.masked(torch.ones(2, 3, dtype=torch.bool)).present[0, 2]


def test_condition_codes():
    assert condition_code(MODS, (True, True, False)) == "at"
    assert parse_condition("tv", MODS) == (False, True, True)
    with pytest.raises(ValueError, match="initials"):
        parse_condition("ax", MODS)
    views = ("fac", "fou", "kar")
    assert condition_code(views, (True, False, True)) == "fac+kar"
    assert parse_condition("fou", views) == (False, True, False)


def test_stratified_split_and_carving():
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    keep, out = stratified_split(labels, 0.2, seed=3)
    assert len(set(keep.tolist()) & set(out.tolist())) == 0 and len(keep) + len(out) == 100
    assert torch.bincount(labels[out]).tolist() == [10, 6, 4]
    again = stratified_split(labels, 0.2, seed=3)[1]
    assert torch.equal(out, again)


def test_standardizer_uses_present_rows_and_real_frames_only():
    x = torch.tensor([[[1.0], [3.0], [0.0]], [[5.0], [0.0], [0.0]], [[100.0], [100.0], [100.0]]])
    data = TensorData({"a": x}, torch.tensor([0, 1, 0]), ["x", "y", "z"],
                      present=torch.tensor([[True], [True], [False]]), lengths={"a": torch.tensor([2, 1, 3])})
    s = Standardizer.fit(data)
    assert s.mean["a"].item() == pytest.approx(3.0)     # frames 1, 3, 5 only
    out = s.apply(data).inputs["a"]
    assert out[0, 2].item() == 0.0 and out[2].abs().sum() == 0   # padding and absent stay zero


def test_training_masks_checks_a_protocols_table():
    class Broken(MissingProtocol):
        def train_table(self, n, modalities):
            return torch.ones(n, 2)
    with pytest.raises(MmtkError, match=r"train_table gave \(5, 2\)"):
        training_masks(Broken(), 5, MODS)


def _tensor_data(seed: int = 0, n: int = 12) -> TensorData:
    g = torch.Generator().manual_seed(seed)
    return TensorData({"audio": torch.randn(n, 3, generator=g), "text": torch.randn(n, 5, 2, generator=g)},
                      torch.randint(0, 3, (n,), generator=g), [f"s{i}" for i in range(n)],
                      lengths={"text": torch.full((n,), 5)})


def test_the_fingerprint_names_the_samples_exactly():
    """Equal data hash equal; any change of ids, labels, masks, lengths or features shows."""
    a, b = _tensor_data(), _tensor_data()
    assert a.fingerprint() == b.fingerprint() and len(a.fingerprint()) == 64
    changes = {
        "ids": lambda d: d.ids.reverse(),
        "labels": lambda d: d.labels.__setitem__(0, (d.labels[0] + 1) % 3),
        "present": lambda d: d.present.__setitem__((1, 0), False),
        "lengths": lambda d: d.lengths["text"].__setitem__(2, 4),
        "features": lambda d: d.inputs["audio"].__setitem__((3, 1), 0.5),
        "bf16 features": lambda d: d.inputs.__setitem__("audio", d.inputs["audio"].bfloat16()),
    }
    for what, change in changes.items():
        d = _tensor_data()
        change(d)
        assert d.fingerprint() != a.fingerprint(), what
    assert _tensor_data(seed=1).fingerprint() != a.fingerprint()
