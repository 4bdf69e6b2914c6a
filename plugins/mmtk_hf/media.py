"""Reading raw media for ``mmtk extract``: transcripts (CSV), WAV files, frame folders.

File-level problems (a missing input, a CSV without the right columns, duplicate ids) raise
``DataError``. Problems with one sample raise :class:`BadSample`; extraction reports them
per id and carries on, so nothing is silently dropped.
"""
from __future__ import annotations

import csv
import re
import wave
from pathlib import Path

import numpy as np

from mmtk import DataError

AUDIO_SUFFIXES = {".wav", ".wave"}
OTHER_AUDIO = {".mp3", ".flac", ".ogg", ".m4a", ".aac", ".opus", ".wma", ".aiff", ".aif"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff"}


class BadSample(Exception):
    """One sample cannot be used; the message says why (the caller adds the id)."""


def check_id(sample_id: str, where: str) -> str:
    if not sample_id or sample_id in (".", "..") or "/" in sample_id or sample_id != sample_id.strip():
        raise DataError(f"{where}: id {sample_id!r} cannot be used as a sample id (it must be "
                        "non-empty, contain no '/' and no surrounding spaces)")
    return sample_id


def natural_key(name: str) -> list:
    """Sort 'frame2' before 'frame10'."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


# ----------------------------------------------------------------------------- CSV files

def read_table(path: str | Path, columns: tuple[str, str], what: str) -> list[tuple[str, str]]:
    """Rows (first column, second column) of a CSV with a header naming ``columns``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} file '{path}' does not exist")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in columns if c not in header]
            if missing:
                raise DataError(f"{what} file '{path}' must be a CSV with the header "
                                f"'{','.join(columns)}'; it has columns {header or 'none'} "
                                f"(missing: {', '.join(missing)})")
            reader.fieldnames = header
            rows, seen = [], {}
            for line, row in enumerate(reader, start=2):
                key = (row.get(columns[0]) or "").strip()
                check_id(key, f"{what} file '{path}' line {line}")
                if key in seen:
                    raise DataError(f"{what} file '{path}': id '{key}' appears twice (lines "
                                    f"{seen[key]} and {line}); ids must be unique")
                seen[key] = line
                rows.append((key, row.get(columns[1]) or ""))
    except UnicodeDecodeError as exc:
        raise DataError(f"{what} file '{path}' is not UTF-8 text: {exc}") from exc
    except csv.Error as exc:
        raise DataError(f"{what} file '{path}' is not a valid CSV: {exc}") from exc
    return rows


def read_transcripts(path: str | Path) -> list[tuple[str, str]]:
    """``id,text`` rows; empty texts are kept (extraction reports them per id)."""
    return read_table(path, ("id", "text"), "transcripts")


# ----------------------------------------------------------------------------- audio

def list_audio(folder: str | Path) -> tuple[list[tuple[str, Path]], dict[str, str]]:
    """(``[(id, wav path)]`` sorted by id, ``{id: problem}`` for audio files that are not WAV)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"audio input '{folder}' is not a folder; give a folder of <id>.wav files")
    found, problems = [], {}
    for path in sorted(folder.iterdir(), key=lambda p: natural_key(p.name)):
        if path.name.startswith(".") or not path.is_file():
            continue
        suffix = path.suffix.lower()
        if suffix in AUDIO_SUFFIXES:
            found.append((check_id(path.stem, f"audio file '{path}'"), path))
        elif suffix in OTHER_AUDIO:
            problems[path.stem] = (f"'{path.name}' is {suffix[1:]}, not WAV; convert it to PCM WAV "
                                   "(e.g. ffmpeg -i in.mp3 -ar 16000 -ac 1 out.wav)")
    if not found and not problems:
        raise DataError(f"audio input '{folder}' contains no .wav files")
    return found, problems


def read_wav(path: str | Path, sample_rate: int) -> tuple[np.ndarray, int]:
    """(mono float32 waveform in [-1, 1] at ``sample_rate``, the file's own rate).

    Channels are averaged; other rates are resampled (band-limited, via the FFT).
    """
    try:
        with wave.open(str(path), "rb") as w:
            channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            raw = w.readframes(w.getnframes())
    except (wave.Error, EOFError, OSError, ValueError) as exc:
        raise BadSample(f"cannot read '{path}' as a PCM WAV file ({exc}); 8/16/24/32-bit integer "
                        "PCM is supported, convert other encodings (float, mp3) first") from exc
    usable = len(raw) - len(raw) % (width * channels)
    raw = raw[:usable]
    if width == 1:
        x = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        x = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = (np.where(v >= 1 << 23, v - (1 << 24), v)).astype(np.float32) / float(1 << 23)
    elif width == 4:
        x = np.frombuffer(raw, "<i4").astype(np.float32) / float(1 << 31)
    else:
        raise BadSample(f"'{path}' has {width}-byte samples, which is not supported")
    x = x.reshape(-1, channels).mean(1) if channels > 1 else x
    if x.size == 0:
        raise BadSample(f"'{path}' contains no audio samples")
    return resample(x, rate, sample_rate).astype(np.float32), rate


def resample(x: np.ndarray, source: int, target: int) -> np.ndarray:
    """Band-limited resampling by zero-padding/truncating the spectrum (as scipy's resample)."""
    if source == target:
        return x
    n_out = max(1, int(round(len(x) * target / source)))
    spectrum = np.fft.rfft(x.astype(np.float64))
    out = np.zeros(n_out // 2 + 1, dtype=complex)
    k = min(len(out), len(spectrum))
    out[:k] = spectrum[:k]
    return np.fft.irfft(out, n_out) * (n_out / len(x))


# ----------------------------------------------------------------------------- frames

def list_frame_dirs(folder: str | Path) -> list[tuple[str, Path]]:
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"visual input '{folder}' is not a folder; give a folder with one <id>/ "
                        "subfolder of frame images (or .npy frames) per sample")
    dirs = [(check_id(p.name, f"frame folder '{p}'"), p)
            for p in sorted(folder.iterdir(), key=lambda p: natural_key(p.name))
            if p.is_dir() and not p.name.startswith(".")]
    if not dirs:
        raise DataError(f"visual input '{folder}' has no <id>/ subfolders of frames")
    return dirs


def _to_chw(a: np.ndarray, name: str) -> np.ndarray:
    """One frame (H, W) or (H, W, C) as float32 (C, H, W) in [0, 1]."""
    if a.dtype == np.uint8:
        a = a.astype(np.float32) / 255.0
    elif np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float32)
        if not np.isfinite(a).all() or a.min() < -1e-3 or a.max() > 1 + 1e-3:
            raise BadSample(f"frame '{name}' has float values outside [0, 1] (or NaN); store uint8 "
                            "pixels (0-255) or floats in [0, 1]")
    else:
        raise BadSample(f"frame '{name}' has dtype {a.dtype}; store uint8 pixels or floats in [0, 1]")
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise BadSample(f"frame '{name}' has shape {a.shape}; expected (H, W) or (H, W, C) with "
                        "C = 1, 3 or 4 (channels last)")
    return np.ascontiguousarray(a.transpose(2, 0, 1))


def read_frames(folder: Path) -> list[np.ndarray]:
    """Every frame of one sample, in natural name order, each (C, H, W) float32 in [0, 1].

    ``.npy`` files hold one frame (H, W[, C]) or a stack (T, H, W, C); image files
    (png, jpg, ...) are read with Pillow when it is installed.
    """
    files = [p for p in sorted(folder.iterdir(), key=lambda p: natural_key(p.name))
             if p.is_file() and not p.name.startswith(".")
             and (p.suffix.lower() == ".npy" or p.suffix.lower() in IMAGE_SUFFIXES)]
    if not files:
        raise BadSample(f"frame folder '{folder}' contains no frames (.npy or image files)")
    frames = []
    for path in files:
        if path.suffix.lower() == ".npy":
            try:
                a = np.load(path, allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise BadSample(f"cannot read frame '{path}': {exc}") from exc
            stack = a if a.ndim == 4 else a[None]
            frames.extend(_to_chw(f, str(path)) for f in stack)
        else:
            try:
                from PIL import Image
            except ImportError as exc:
                raise BadSample(f"frame '{path}' is an image but Pillow is not installed; "
                                "`pip install pillow`, or store frames as .npy arrays") from exc
            try:
                with Image.open(path) as im:
                    a = np.asarray(im.convert("RGB"))
            except (OSError, ValueError) as exc:
                raise BadSample(f"cannot read frame '{path}': {exc}") from exc
            frames.append(_to_chw(a, str(path)))
    return frames
