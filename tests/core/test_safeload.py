"""mmtk.safeload: the restricted unpickler admits data (builtins, numpy arrays) and nothing
that could run code; .npy/.npz are never unpickled; text files are UTF-8 or a named error."""
from __future__ import annotations

import collections
import os
import pickle

import numpy as np
import pytest

from mmtk.errors import DataError
from mmtk.safeload import UnsafeFileError, load_npy, load_pickle, npz_member, open_npz, read_text

WHO = "test"


class _Payload:
    """Pickles to ``call(*args)``; built here, so the test knows exactly what a file asks for."""

    def __init__(self, call, *args):
        self.call, self.args = call, args

    def __reduce__(self):
        return (self.call, self.args)


def _payloads(marker):
    return {
        "os.system": _Payload(os.system, f"touch {marker}"),
        "open": _Payload(open, str(marker), "w"),
        "eval": _Payload(eval, f"open({str(marker)!r}, 'w')"),
        "getattr": _Payload(getattr, "text", "upper"),  # the usual way out of a weak allow-list
        "subclass": _Payload(np.ma.MaskedArray, [1]),  # numpy, but not array reconstruction
    }


@pytest.mark.parametrize("name", ["os.system", "open", "eval", "getattr", "subclass"])
@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_pickle_asking_for_a_callable_is_refused_and_runs_nothing(tmp_path, name, protocol):
    marker = tmp_path / "MARKER"
    path = tmp_path / "bad.pkl"
    path.write_bytes(pickle.dumps({"train": {"x": [1, _payloads(marker)[name]]}}, protocol=protocol))
    with pytest.raises(UnsafeFileError, match=r"bad\.pkl asks for '[\w.]+' while being unpickled"):
        load_pickle(path, WHO)
    assert not marker.exists()


def test_the_refusal_names_what_the_file_asked_for(tmp_path):
    path = tmp_path / "bad.pkl"
    path.write_bytes(pickle.dumps(_Payload(os.system, "true")))
    with pytest.raises(UnsafeFileError, match=rf"^test: .*bad\.pkl asks for '{os.name}\.system'"):
        load_pickle(path, WHO)
    assert issubclass(UnsafeFileError, DataError)        # the CLI prints it and exits 2


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_data_pickles_load_under_every_protocol(tmp_path, protocol):
    data = {"f32": np.arange(6, dtype=np.float32).reshape(2, 3), "ids": np.array(["a", "b"], dtype=object),
            "bytes": np.array([b"x"]), "str": np.array(["y"]), "scalar": np.float64(1.5),
            "int": np.int64(3), "dtype": np.dtype("<f4"), "struct": np.zeros(2, dtype=[("a", "f4")]),
            "list": [1, 2.0, "three", None, True], "set": {1, 2}, "frozen": frozenset({3}),
            "complex": 1j, "tuple": (1, (2,)), "ordered": collections.OrderedDict(a=1),
            "noncontiguous": np.arange(12.0).reshape(3, 4)[:, ::2]}
    path = tmp_path / "ok.pkl"
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    got = load_pickle(path, WHO)
    assert got.keys() == data.keys()
    for key, value in data.items():
        if isinstance(value, np.ndarray):
            assert got[key].dtype == value.dtype and np.array_equal(got[key], value), key
        else:
            assert got[key] == value, key


def test_codecs_encode_is_admitted_for_latin1_only(tmp_path):
    import codecs
    path = tmp_path / "bad.pkl"
    path.write_bytes(pickle.dumps(_Payload(codecs.encode, "abc", "rot13"), protocol=2))
    assert b"_codecs" in path.read_bytes()
    with pytest.raises(DataError, match=r"cannot read .*bad\.pkl .*encoding 'rot13'"):
        load_pickle(path, WHO)


def test_corrupt_or_missing_pickles_are_data_errors(tmp_path):
    path = tmp_path / "cut.pkl"
    path.write_bytes(pickle.dumps({"a": np.zeros(100)})[:50])
    with pytest.raises(DataError, match=r"cannot read .*cut\.pkl as a pickle \(corrupt"):
        load_pickle(path, WHO)
    with pytest.raises(DataError, match=r"cannot open .*absent\.pkl"):
        load_pickle(tmp_path / "absent.pkl", WHO)


# --------------------------------------------------------------------------------- numpy ---
@pytest.mark.parametrize("mmap", [False, True])
def test_pickled_npy_is_refused_and_runs_nothing(tmp_path, mmap):
    marker = tmp_path / "MARKER"
    path = tmp_path / "bad.npy"
    np.save(path, np.array([_Payload(open, str(marker), "w")], dtype=object), allow_pickle=True)
    with pytest.raises(UnsafeFileError, match=r"bad\.npy holds Python objects .*never unpickles"):
        load_npy(path, WHO, mmap=mmap)
    raw_pickle = tmp_path / "raw.npy"           # a bare pickle under a .npy name
    raw_pickle.write_bytes(pickle.dumps(_Payload(open, str(marker), "w")))
    with pytest.raises(UnsafeFileError, match=r"raw\.npy holds Python objects"):
        load_npy(raw_pickle, WHO, mmap=mmap)
    assert not marker.exists()


def test_npy_round_trip_corrupt_and_npz_named_npy(tmp_path):
    ids = np.array(["a", "bb"])                 # fixed-width strings need no pickle
    np.save(tmp_path / "ids.npy", ids)
    assert load_npy(tmp_path / "ids.npy", WHO).tolist() == ["a", "bb"]
    assert isinstance(load_npy(tmp_path / "ids.npy", WHO, mmap=True), np.memmap)
    (tmp_path / "cut.npy").write_bytes((tmp_path / "ids.npy").read_bytes()[:20])
    with pytest.raises(DataError, match=r"cannot read .*cut\.npy as a \.npy file"):
        load_npy(tmp_path / "cut.npy", WHO)
    np.savez(tmp_path / "z.npz", a=np.zeros(2))
    os.rename(tmp_path / "z.npz", tmp_path / "z.npy")
    with pytest.raises(DataError, match=r"z\.npy is an \.npz archive"):
        load_npy(tmp_path / "z.npy", WHO)


def test_npz_member_with_objects_is_refused(tmp_path):
    marker = tmp_path / "MARKER"
    np.savez(tmp_path / "f.npz", good=np.ones(3), bad=np.array([_Payload(open, str(marker), "w")],
                                                               dtype=object))
    with open_npz(tmp_path / "f.npz", WHO) as npz:
        assert npz_member(npz, "good", tmp_path / "f.npz", WHO).tolist() == [1.0, 1.0, 1.0]
        with pytest.raises(UnsafeFileError, match=r"f\.npz\[bad\] holds Python objects"):
            npz_member(npz, "bad", tmp_path / "f.npz", WHO)
    assert not marker.exists()


# ---------------------------------------------------------------------------------- text ---
def test_read_text_accepts_a_bom_and_names_the_line_of_a_bad_byte(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"\xef\xbb\xbfid,label\na,1\n")
    assert read_text(path, WHO) == "id,label\na,1\n"
    path.write_bytes(b"id,label\na,1\ncaf\xe9,2\n")
    with pytest.raises(DataError, match=r"t\.csv is not UTF-8 text \(line 3, byte b'\\xe9'\)"):
        read_text(path, WHO)
