"""Loading files that could carry code, without ever running it (and text without crashing).

A pickle (and a ``.npy`` holding Python objects, which is a pickle inside) can name any
callable and have it called while it loads: a crafted data file would run code on
``mmtk run`` or ``--dry-run``. Every reader in mmtk therefore goes through this module:

* :func:`load_npy` / :func:`open_npz` never unpickle (``allow_pickle=False``); an object
  array is refused with a message saying how to save it without pickle;
* :func:`load_pickle` unpickles with an allow-list: the Python builtins and the numpy array
  reconstruction that a pickle of dicts, lists, strings and numpy arrays needs, nothing else;
  a file that asks for anything else is refused, naming what it asked for.

:func:`read_text` reads a UTF-8 text file (a byte-order mark is accepted); another encoding
is an error naming the line, not a ``UnicodeDecodeError``.

Plugins use these through the public core (``from mmtk.safeload import ...``).
"""
from __future__ import annotations

import codecs
import collections
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DataError


class UnsafeFileError(DataError):
    """A file would need code to be run to load it; mmtk refuses to load it."""


def shown(path: Path | str) -> str:
    """The absolute path for messages; never raises (a symlink loop cannot be resolved)."""
    try:
        return str(Path(path).resolve())
    except (OSError, RuntimeError):
        return str(Path(path).absolute())


# --------------------------------------------------------------------------------- text ---
def read_text(path: Path, who: str) -> str:
    """A UTF-8 text file (a BOM is dropped); other encodings are an error naming the line."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise DataError(f"{who}: cannot read {shown(path)}: {exc.strerror or exc}.") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise DataError(f"{who}: {shown(path)} is not UTF-8 text (line {line}, byte "
                        f"{data[exc.start:exc.start + 1]!r}); save it as UTF-8, e.g. "
                        f"iconv -f latin1 -t utf-8 {Path(path).name}.") from None


# ------------------------------------------------------------------------------ pickles ---
def _numpy_part(*names: str) -> Any:
    """numpy's private module ``_core`` (numpy 2) or ``core`` (numpy 1), without warnings."""
    import importlib
    for base in ("numpy._core", "numpy.core"):
        try:
            module = importlib.import_module(f"{base}.{names[0]}")
            return getattr(module, names[1])
        except (ImportError, AttributeError):
            continue
    raise ImportError(f"numpy has no {'.'.join(names)}")


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    # pickles of protocol < 3 store an array's raw bytes as a latin-1 string
    if codecs.lookup(encoding).name != "iso8859-1":
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, "latin1")


def _allowed_globals() -> dict[tuple[str, str], Any]:
    reconstruct = _numpy_part("multiarray", "_reconstruct")
    scalar = _numpy_part("multiarray", "scalar")
    frombuffer = _numpy_part("numeric", "_frombuffer")
    table: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
        ("collections", "OrderedDict"): collections.OrderedDict,
    }
    for base in ("numpy.core", "numpy._core"):      # files written by numpy 1 or numpy 2
        table[(f"{base}.multiarray", "_reconstruct")] = reconstruct
        table[(f"{base}.multiarray", "scalar")] = scalar
        table[(f"{base}.numeric", "_frombuffer")] = frombuffer
    for module in ("builtins", "__builtin__"):      # protocol 0-2 pickles say __builtin__
        for name, obj in (("set", set), ("frozenset", frozenset), ("complex", complex),
                          ("bytearray", bytearray), ("slice", slice), ("range", range)):
            table[(module, name)] = obj
    return table


class _RestrictedUnpickler(pickle.Unpickler):
    allowed: dict[tuple[str, str], Any] = {}

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise _Refused(f"{module}.{name}") from None

    def persistent_load(self, pid: Any) -> Any:
        raise _Refused(f"persistent id {pid!r}")


class _Refused(pickle.UnpicklingError):
    def __init__(self, wanted: str):
        super().__init__(wanted)
        self.wanted = wanted


def load_pickle(path: Path | str, who: str, what: str = "pickle") -> Any:
    """Unpickle ``path`` admitting only builtins and numpy arrays (see the module docstring).

    ``who`` starts every message (e.g. ``"dataset 'mmsa'"``), ``what`` names the kind of file.
    """
    path = Path(path)
    if not _RestrictedUnpickler.allowed:
        _RestrictedUnpickler.allowed = _allowed_globals()
    try:
        with open(path, "rb") as f:
            return _RestrictedUnpickler(f).load()
    except _Refused as exc:
        raise UnsafeFileError(
            f"{who}: {shown(path)} asks for '{exc.wanted}' while being unpickled. A {what} needs "
            "only Python builtins (dicts, lists, strings, numbers) and numpy arrays; anything else "
            "could run code on this machine, so mmtk does not load it. If you made this file, "
            "save it again with only dicts, lists and numpy arrays; if you got it from someone "
            "else, do not use it.") from None
    except OSError as exc:
        raise DataError(f"{who}: cannot open {shown(path)}: {exc.strerror or exc}.") from None
    except Exception as exc:  # truncated/corrupt pickles raise many types
        raise DataError(f"{who}: cannot read {shown(path)} as a {what} (corrupt, truncated or "
                        f"not a pickle): {type(exc).__name__}: {exc}") from None


# --------------------------------------------------------------------------------- numpy ---
def _object_array_refusal(path: Path, who: str) -> UnsafeFileError:
    return UnsafeFileError(
        f"{who}: {shown(path)} holds Python objects (a pickled object array), and mmtk never "
        "unpickles .npy files: that could run code on this machine. Save it again as a plain "
        "array: numbers as a numeric dtype, ids as fixed-width strings "
        "(np.save(path, np.asarray(ids, dtype=str))).")


def _is_pickle_refusal(exc: Exception) -> bool:
    text = str(exc)
    return isinstance(exc, ValueError) and ("allow_pickle" in text or "Python objects" in text
                                            or "Object arrays" in text)


def load_npy(path: Path | str, who: str, mmap: bool = False) -> np.ndarray:
    """A ``.npy`` array (memory-mapped read-only with ``mmap``), never unpickled."""
    path = Path(path)
    try:
        array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except Exception as exc:  # numpy raises ValueError/OSError/EOFError for broken files
        if _is_pickle_refusal(exc):
            raise _object_array_refusal(path, who) from None
        raise DataError(f"{who}: cannot read {shown(path)} as a .npy file (corrupt, truncated or "
                        f"not .npy): {type(exc).__name__}: {exc}") from None
    if not isinstance(array, np.ndarray):
        if hasattr(array, "close"):
            array.close()
        raise DataError(f"{who}: {shown(path)} is an .npz archive, not a .npy array; rename it "
                        "or save the array with np.save.")
    return array


def open_npz(path: Path | str, who: str) -> Any:
    """An open ``.npz`` archive (``NpzFile``) whose members are read with :func:`npz_member`."""
    path = Path(path)
    try:
        return np.load(path, allow_pickle=False)
    except Exception as exc:
        raise DataError(f"{who}: cannot read {shown(path)} as an .npz file (corrupt, truncated or "
                        f"not .npz): {type(exc).__name__}: {exc}") from None


def npz_member(npz: Any, key: str, path: Path | str, who: str) -> np.ndarray:
    """Array ``key`` of an open ``.npz``, never unpickled."""
    try:
        return npz[key]
    except Exception as exc:
        if _is_pickle_refusal(exc):
            raise _object_array_refusal(Path(f"{path}[{key}]"), who) from None
        raise DataError(f"{who}: cannot read array '{key}' of {shown(path)} (corrupt?): "
                        f"{type(exc).__name__}: {exc}") from None
