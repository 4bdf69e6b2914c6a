"""mmtk.rundir.load_torch: a checkpoint mmtk wrote loads; a crafted or broken one is an mmtk
error naming the file, never torch's advice to load it with weights_only=False."""
from __future__ import annotations

import os

import pytest
import torch

from mmtk.errors import MmtkError
from mmtk.rundir import load_torch, save_torch
from mmtk.safeload import UnsafeFileError


class _Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_checkpoint_mmtk_wrote_loads(tmp_path):
    state = {"model": {"w": torch.arange(3.0)}, "stage_index": 1, "history": [{"loss": 0.5}]}
    save_torch(tmp_path / "ok.pt", state)
    got = load_torch(tmp_path / "ok.pt")
    assert got["model"]["w"].tolist() == [0.0, 1.0, 2.0] and got["history"] == state["history"]


def test_malicious_checkpoint_is_refused_without_suggesting_weights_only_false(tmp_path):
    marker = tmp_path / "MARKER"
    path = tmp_path / "resume.pt"
    torch.save({"model": {"w": torch.zeros(1)}, "extra": _Payload(marker)}, path)
    with pytest.raises(UnsafeFileError) as err:
        load_torch(path)
    text = str(err.value)
    assert str(path) in text and "not a checkpoint mmtk wrote" in text
    assert f"'{os.name}.system'" in text and "Delete it" in text
    assert "weights_only" not in text
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_broken_checkpoint_is_an_mmtk_error_naming_the_file(tmp_path, damage):
    path = tmp_path / "stage-main.pt"
    save_torch(path, {"w": torch.zeros(100)})
    data = path.read_bytes()
    path.write_bytes(b"not a checkpoint" if damage == "garbage" else data[:len(data) // 2])
    with pytest.raises(MmtkError, match=r"stage-main\.pt") as err:
        load_torch(path)
    assert "weights_only" not in str(err.value)
