"""A crafted data file never runs code: each reader refuses a file whose loading would call
something (a ``__reduce__`` payload that creates a marker file), through the CLI and directly."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from mmtk.cli import main
from mmtk.errors import DataError
from mmtk.lazy import open_npy
from mmtk_datasets.arrays import Arrays
from mmtk_datasets.mmin import MMINLayout
from mmtk_datasets.mmsa import MMSA


def _dry_run(recipe_path, capsys) -> str:
    assert main(["run", str(recipe_path), "--dry-run"]) == 2
    return capsys.readouterr().err


# --------------------------------------------------------------------- MMIN .npy files ---
@pytest.mark.parametrize("stem", ["trn_label", "val_int2name"])
def test_mmin_pickled_npy_is_refused_by_the_cli(fx, payload, recipe, tmp_path, capsys, stem):
    root = tmp_path / "iemocap"
    fx.mmin(root, folds=1)
    bad = payload.npy(root / "target" / "1" / f"{stem}.npy")
    err = _dry_run(recipe(tmp_path / "r.yaml", {"type": "mmin_layout", "root": str(root),
                                                "pool": "mean"}, ("audio", "text", "visual")),
                   capsys)
    assert str(bad) in err and "never unpickles .npy files" in err
    assert "Traceback" not in err
    assert not payload.marker.exists()


def test_mmin_object_ids_without_code_are_refused_too(fx, tmp_path):
    """Ids saved as an object array (harmless strings) still need pickle: refused, with how to
    save them instead."""
    root = tmp_path / "iemocap"
    truth = fx.mmin(root, folds=1)
    np.save(root / "target" / "1" / "tst_int2name.npy",
            np.array(truth["splits"][1]["tst"], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=r"tst_int2name\.npy holds Python objects.*dtype=str"):
        MMINLayout(root=root).load(1)


# ------------------------------------------------------------------------- MMSA pickle ---
def _mmsa_with_payload(fx, payload, path):
    fx.mmsa(path)
    data = pickle.loads(path.read_bytes())           # the test's own file
    data["train"]["audio_lengths"] = payload.obj
    path.write_bytes(pickle.dumps(data))
    return path


@pytest.mark.parametrize("command", [["--dry-run"], []])
def test_mmsa_pickle_with_code_is_refused_by_run_and_dry_run(fx, payload, recipe, tmp_path, capsys,
                                                            command):
    path = _mmsa_with_payload(fx, payload, tmp_path / "mosi.pkl")
    r = recipe(tmp_path / "r.yaml", {"type": "mmsa", "root": str(path)}, ("audio", "text", "visual"))
    assert main(["run", str(r), *command]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "asks for 'io.open'" in err
    assert "Traceback" not in err
    assert not payload.marker.exists()


def test_mmsa_pickle_asking_for_os_system_names_it(fx, tmp_path):
    import os

    marker = tmp_path / "MARKER"

    class Shell:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))
    path = tmp_path / "d.pkl"
    path.write_bytes(pickle.dumps({"train": Shell(), "valid": {}, "test": {}}))
    with pytest.raises(DataError, match=rf"asks for '{os.name}\.system'.*does not load it"):
        MMSA(root=path).load()
    assert not marker.exists()


def test_mmsa_restricted_unpickler_reads_every_protocol(fx, tmp_path):
    """The allow-list is enough for real MMSA pickles (object id arrays, lists, float32
    arrays), whatever protocol wrote them."""
    truth = fx.mmsa(tmp_path / "ref.pkl")
    ref = MMSA(root=tmp_path / "ref.pkl").load()
    for protocol in (0, 2, 4, 5):
        path = tmp_path / f"p{protocol}" / "d.pkl"
        path.parent.mkdir()
        path.write_bytes(pickle.dumps(truth, protocol=protocol))
        got = MMSA(root=path).load()
        assert got.train.ids == ref.train.ids
        assert got.test.inputs["audio"].equal(ref.test.inputs["audio"])


# ---------------------------------------------------------------------- arrays format ---
def test_arrays_pickled_npy_is_refused_by_the_cli(fx, payload, recipe, tmp_path, capsys):
    root = tmp_path / "data"
    fx.arrays(root)
    payload.npy(root / "text.npy")
    err = _dry_run(recipe(tmp_path / "r.yaml", {"type": "arrays", "root": str(root)},
                          ("audio", "text", "visual")), capsys)
    assert "text.npy holds Python objects" in err and "Traceback" not in err
    assert not payload.marker.exists()


def test_arrays_pickled_npy_is_refused_under_mmap(payload, tmp_path):
    np.save(tmp_path / "audio.npy", np.zeros((4, 3), np.float32))
    payload.npy(tmp_path / "text.npy")
    (tmp_path / "ids.txt").write_text("a\nb\nc\nd\n")
    (tmp_path / "labels.csv").write_text("id,label\na,0\nb,1\nc,0\nd,1\n")
    # two rows in text.npy against four ids: the refusal comes before any shape check
    with pytest.raises(DataError, match=r"text\.npy holds Python objects"):
        Arrays(root=tmp_path, mmap=True).load()
    assert not payload.marker.exists()


def test_arrays_pickled_npz_member_and_lengths_file_are_refused(payload, tmp_path):
    ids = ["a", "b"]
    (tmp_path / "ids.txt").write_text("\n".join(ids))
    (tmp_path / "labels.csv").write_text("id,label\na,0\nb,1\n")
    np.savez(tmp_path / "features.npz", audio=np.zeros((2, 3)),
             visual=np.array([payload.obj, payload.obj], dtype=object))
    with pytest.raises(DataError, match=r"features\.npz\[visual\] holds Python objects"):
        Arrays(root=tmp_path).load()
    (tmp_path / "features.npz").unlink()
    np.save(tmp_path / "audio.npy", np.zeros((2, 4, 3), np.float32))
    payload.npy(tmp_path / "audio.lengths.npy")
    with pytest.raises(DataError, match=r"audio\.lengths\.npy holds Python objects"):
        Arrays(root=tmp_path).load()
    assert not payload.marker.exists()


def test_memory_mapped_npy_of_the_core_is_never_unpickled(payload, tmp_path):
    with pytest.raises(DataError, match=r"bad\.npy holds Python objects"):
        open_npy(payload.npy(tmp_path / "bad.npy"))
    assert not payload.marker.exists()


def test_h5_sample_holding_pickle_bytes_is_data_never_unpickled(fx, payload, tmp_path):
    """h5py never unpickles: a sample stored as opaque pickle bytes is just a non-numeric
    array, reported as such."""
    import h5py

    truth = fx.arrays(tmp_path, kinds={"audio": "h5"})
    with h5py.File(tmp_path / "audio.h5", "a") as f:
        del f[truth["ids"][0]]
        f[truth["ids"][0]] = np.void(payload.bytes())
    with pytest.raises(DataError, match=rf"audio\.h5: sample '{truth['ids'][0]}' \((train|test) "
                                        r"split\): has non-numeric dtype"):
        Arrays(root=tmp_path).load()
    assert not payload.marker.exists()
