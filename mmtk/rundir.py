"""Run directories: unique, never overwritten; files written atomically."""
from __future__ import annotations

import io
import json
import os
import pickle
import platform
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from .errors import MmtkError
from .safeload import UnsafeFileError, shown


def new_run_dir(root: str | Path, name: str) -> Path:
    """``root/name/<timestamp>``; an existing directory is never reused."""
    base = Path(root) / name
    base.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for i in range(1000):
        candidate = base / (stamp if i == 0 else f"{stamp}-{i}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a fresh run directory under {base}")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_MODE = 0o666 & ~_umask()   # what open() would give: the user's normal permissions


class WriteError(MmtkError):
    """A run file could not be written (disk full, file too large, no permission)."""


def atomic_write_bytes(path: Path, data: bytes, durable: bool = True) -> None:
    """Write to a temporary file, then rename: readers see the old or the new file, never a
    torn one. ``durable`` also fsyncs (survives an OS crash, not just a killed process);
    per-epoch resume snapshots skip it, as it costs ~10 % of a short epoch on slow disks.
    A failed write (e.g. a full disk) leaves the old file in place and says which file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise _write_error(path, exc) from None
    try:
        os.fchmod(fd, _MODE)  # mkstemp makes 0600; run files get the user's umask
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _write_error(path, exc) from None
        raise


def _write_error(path: Path, exc: OSError) -> WriteError:
    return WriteError(f"could not write {path}: {exc.strerror or exc} (errno {exc.errno}). The "
                      "files written before it are intact; free space (or fix the permission) "
                      "and resume the run.")


def remove_temporary_files(directory: Path) -> int:
    """Delete the ``.NAME.*.tmp`` files an interrupted atomic write left behind."""
    count = 0
    for tmp in Path(directory).rglob(".*.tmp"):
        tmp.unlink(missing_ok=True)
        count += 1
    return count


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def read_json(path: Path, what: str = "run file") -> Any:
    """A JSON file mmtk wrote, or an error naming it when it is corrupt or truncated."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise MmtkError(f"the {what} {path} is corrupt or truncated ({exc}); delete it and run "
                        "again (for a trial's metrics.json, --resume then redoes that trial)") from None


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def write_yaml(path: Path, obj: Any) -> None:
    atomic_write_text(path, yaml.safe_dump(obj, sort_keys=False))


def save_torch(path: Path, obj: Any) -> None:
    """torch.save to a temporary file, then rename: a crash never leaves a torn checkpoint."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


class BackgroundWriter:
    """Serialises checkpoints at once (a consistent snapshot) and writes them to disk in a
    background thread, in order, so per-epoch checkpoints do not stall training.
    ``wait()`` blocks until everything submitted is on disk and re-raises a write error."""

    def __init__(self) -> None:
        from concurrent.futures import ThreadPoolExecutor
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mmtk-ckpt")
        self._pending: list[Any] = []

    def save_torch(self, path: Path, obj: Any, durable: bool = True) -> None:
        buf = io.BytesIO()
        torch.save(obj, buf)
        self._pending.append(self._pool.submit(atomic_write_bytes, path, buf.getvalue(), durable))

    def wait(self) -> None:
        pending, self._pending = self._pending, []
        for fut in pending:
            fut.result()


def load_torch(path: Path) -> Any:
    """A checkpoint mmtk wrote: tensors and plain containers only (``weights_only=True``).

    Anything else is refused with an mmtk error naming the file; torch's own message is not
    passed on, as it suggests ``weights_only=False``, which would run the file's code."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        wanted = re.search(r"GLOBAL ([\w.]+)", str(exc))
        asks = f" (it asks for '{wanted.group(1)}')" if wanted else ""
        raise UnsafeFileError(
            f"{shown(path)} is not a checkpoint mmtk wrote: loading it would need more than "
            f"tensors and plain containers{asks}. It may be corrupt, or unsafe (a crafted file can "
            "run code), so mmtk does not load it. Delete it and run again (for a resume "
            "snapshot, start the run afresh instead of --resume); do not load a checkpoint you "
            "did not make.") from None
    except (RuntimeError, EOFError, ValueError, OSError) as exc:
        first = str(exc).split(". ")[0].strip()
        if "weights_only" in first:      # never pass on torch's advice to disable the check
            first = "unreadable"
        raise MmtkError(f"cannot read the checkpoint {shown(path)}: it is corrupt or truncated "
                        f"({type(exc).__name__}: {first}). Delete it and run again (for a resume "
                        "snapshot, start the run afresh instead of --resume).") from None


def cpu_description() -> dict:
    """The processor, as far as it can change a result: torch and MKL pick their kernels by
    the vector instructions they find (``capability``, ``MKL_ENABLE_INSTRUCTIONS``), which
    changes float summation order; on MKL's SSE4.2 path the quick start selects another epoch
    (README, *Quick start*)."""
    model, flags = None, []
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:   # the first processor's entries describe them all
                key, _, value = (part.strip() for part in line.partition(":"))
                if key == "model name" and model is None:
                    model = value
                elif key == "flags":
                    flags = sorted(f for f in value.split() if f.startswith(("avx", "amx", "fma", "sse4")))
                    break
    except OSError:   # not Linux
        pass
    try:
        capability = torch.backends.cpu.get_cpu_capability()
    except (AttributeError, RuntimeError):   # older torch
        capability = None
    return {"model": model or platform.processor() or None, "logical_cores": os.cpu_count(), "capability": capability,
            "vector_flags": flags,
            # MKL picks its own kernels by CPU (and by this variable): a different path changes
            # float sums, which early stopping on a small validation split can amplify
            "mkl_enable_instructions": os.environ.get("MKL_ENABLE_INSTRUCTIONS")}


def environment(plugin_statuses: dict) -> dict:
    import importlib.metadata as md

    def version(dist: str) -> str | None:
        try:
            return md.version(dist)
        except md.PackageNotFoundError:
            return None

    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "threads": torch.get_num_threads(),
        "cpu": cpu_description(),
        "packages": {d: version(d) for d in ("mmtk", "numpy", "pluggy", "pyyaml", "normflows",
                                            "transformers", "einops", "rich", "h5py")},
        "plugins": {n: {"status": s.status, "distribution": s.distribution,
                        "version": s.version, "source": s.source, "error": s.error}
                    for n, s in plugin_statuses.items()},
        "command": sys.argv,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
