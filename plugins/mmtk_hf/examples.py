"""Tiny random checkpoints built from configs and saved with ``save_pretrained``.

Nothing is downloaded: these exist so that the encoders and ``mmtk extract`` can be
exercised anywhere (the contract tests, this plugin's tests, a demo). They are untrained.
"""
from __future__ import annotations

from pathlib import Path

import torch

from .backbones import quiet_transformers

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["i", "am", "so", "happy", "glad", "great", "wonderful", "joy", "sad", "awful", "terrible",
         "cry", "gloomy", "today", "this", "is", "news", "the", "a", "very", "feel"]
SMALL = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}


def tiny_text_model(folder: str | Path, words: list[str] = WORDS, seed: int = 0) -> Path:
    """A 2-layer BERT with a word-level vocabulary (``words``) and its tokenizer."""
    t = quiet_transformers()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(SPECIAL + list(words)) + "\n")
    t.BertTokenizer(str(vocab)).save_pretrained(folder)   # positional: vocab_file (4.x) / vocab (5.x)
    torch.manual_seed(seed)
    cfg = t.BertConfig(vocab_size=len(SPECIAL) + len(words), max_position_embeddings=64, **SMALL)
    t.BertModel(cfg).save_pretrained(folder)
    return folder


def tiny_audio_model(folder: str | Path, feat_extract_norm: str = "group", model_type: str = "wav2vec2",
                     seed: int = 0) -> Path:
    """wav2vec2 / HuBERT / WavLM with a 3-layer conv front end (receptive field 105 samples)."""
    t = quiet_transformers()
    cls = {"wav2vec2": t.Wav2Vec2Config, "hubert": t.HubertConfig, "wavlm": t.WavLMConfig}[model_type]
    extra = {"do_stable_layer_norm": True} if feat_extract_norm == "layer" else {}
    cfg = cls(conv_dim=(32, 32, 32), conv_stride=(5, 4, 4), conv_kernel=(10, 8, 4),
              num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
              feat_extract_norm=feat_extract_norm, **SMALL, **extra)
    torch.manual_seed(seed)
    t.AutoModel.from_config(cfg).save_pretrained(folder)
    return Path(folder)


def tiny_visual_model(folder: str | Path, image_size: int = 16, seed: int = 0) -> Path:
    """A 2-layer ViT on 16x16 RGB images with 8x8 patches."""
    t = quiet_transformers()
    cfg = t.ViTConfig(image_size=image_size, patch_size=8, num_channels=3, **SMALL)
    torch.manual_seed(seed)
    t.ViTModel(cfg).save_pretrained(folder)
    return Path(folder)


def cached(workdir: str | Path, name: str, build) -> Path:
    folder = Path(workdir) / name
    if not (folder / "config.json").is_file():
        build(folder)
    return folder
