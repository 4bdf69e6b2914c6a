"""Encoders over raw inputs through local Hugging Face checkpoints (text, audio, visual).

Each wraps a backbone (see ``backbones``), pools the chosen layer and projects the model's
hidden size to ``latent_dim`` with a linear layer. ``freeze: true`` (default) keeps the
backbone's weights fixed and in eval mode (no dropout) and runs it without gradients; only
the projection trains. ``freeze: false`` fine-tunes the whole model.

Input formats (what ``mmtk extract --raw`` writes into the generic arrays format):

* text: token ids, int64 ``(B, T)`` or ``(B, T, 1)`` zero-padded, ``lengths`` = tokens;
* audio: float waveforms at the checkpoint's sampling rate (16 kHz unless its
  preprocessor_config.json says otherwise), ``(B, S)`` or ``(B, S, 1)`` zero-padded,
  ``lengths`` = samples;
* visual: frames ``(B, T, C*S*S)`` flattened (``lengths`` = frames), or one image per
  sample ``(B, C*S*S)``, or unflattened ``(B, T, C, S, S)`` / ``(B, C, S, S)``; pixels
  already resized to the model's ``image_size`` S and normalised with its image mean/std.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated, Literal

import torch
from torch import Tensor, nn

from mmtk import DataError, Ge
from mmtk.ops import frame_mask, masked_mean

from .backbones import AudioBackbone, Backbone, TextBackbone, VisualBackbone, masked_pool


def _full_lengths(x: Tensor, lengths: Tensor | None) -> Tensor:
    if lengths is None:
        return torch.full((x.shape[0],), x.shape[1], dtype=torch.long, device=x.device)
    return lengths.to(x.device).long()


class _HFEncoder(nn.Module):
    """Common part: a backbone, freezing, and the projection to latent_dim."""

    def __init__(self, backbone: Backbone, latent_dim: int, freeze: bool):
        super().__init__()
        self.backbone = backbone
        self.freeze = freeze
        if freeze:
            for p in self.backbone.parameters():
                p.requires_grad_(False)
            self.backbone.eval()
        self.proj = nn.Linear(backbone.hidden_size, latent_dim)

    def train(self, mode: bool = True) -> "_HFEncoder":
        super().train(mode)
        if self.freeze:
            self.backbone.eval()   # a frozen backbone never runs dropout
        return self

    def _context(self) -> contextlib.AbstractContextManager:
        return torch.no_grad() if self.freeze else contextlib.nullcontext()


class HFTextEncoder(_HFEncoder):
    """Text through a local Hugging Face checkpoint (BERT, MiniLM, RoBERTa ...) over token ids.

    Input: int64 token ids ``(B, T)`` or ``(B, T, 1)`` with ``lengths`` (write them with
    ``mmtk extract --modality text --raw``, using the same checkpoint's tokenizer).
    ``layer`` indexes the hidden states (0 = embeddings, -1 = last); ``pooling`` is the
    mean over real tokens or the first ([CLS]) token.

    Parameters:
        model: folder of a local Hugging Face checkpoint (config.json and weights); nothing is
            downloaded
        pooling: mean over the real tokens, or cls (the first token)
        layer: which hidden state: 0 = embeddings, 1..L = layers, -1 = last
        freeze: keep the checkpoint's weights fixed (only the projection trains)
    """

    def __init__(self, in_dim: int, latent_dim: int, model: Path,
                 pooling: Literal["mean", "cls"] = "mean", layer: int = -1, freeze: bool = True):
        super().__init__(TextBackbone(model, layer), latent_dim, freeze)
        self.pooling = pooling
        self.vocab_size = int(getattr(self.backbone.model.config, "vocab_size", 0) or 0)

    @staticmethod
    def example_params(workdir: Path) -> dict:
        """A tiny random checkpoint (for the registry-wide contract tests)."""
        from .examples import cached, tiny_text_model
        return {"model": str(cached(workdir, "hf_tiny_text", tiny_text_model))}

    @staticmethod
    def example_input(n: int, in_dim: int) -> tuple[Tensor, Tensor]:
        lengths = torch.randint(1, 8, (n,))
        ids = torch.randint(5, 26, (n, 8))
        ids[~frame_mask(lengths, 8)] = 0
        return ids.unsqueeze(-1), lengths

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        if x.dim() == 3 and x.shape[-1] == 1:
            x = x.squeeze(-1)
        if x.dim() != 2:
            raise DataError(f"hf_text expects token ids (B, T) or (B, T, 1), got shape {tuple(x.shape)}; "
                            "write token ids with `mmtk extract --modality text --raw`")
        if x.is_floating_point():
            if not torch.equal(x, x.round()):
                raise DataError("hf_text received non-integer values instead of token ids; the text "
                                "modality must hold int64 token ids and must not be normalised "
                                "(leave it out of data.normalize)")
            x = x.long()
        if self.vocab_size and (x.min() < 0 or x.max() >= self.vocab_size):
            raise DataError(f"hf_text: token id {int(x.max())} is outside the vocabulary of "
                            f"'{self.backbone.path}' ({self.vocab_size}); were the ids written with "
                            "another model's tokenizer?")
        with self._context():
            hidden, mask = self.backbone(x.long(), _full_lengths(x, lengths))
            pooled = masked_pool(hidden, mask, self.pooling)
        return self.proj(pooled)


class HFAudioEncoder(_HFEncoder):
    """Raw waveforms through a local wav2vec2 / HuBERT / WavLM checkpoint.

    Input: float waveforms ``(B, S)`` or ``(B, S, 1)`` at the checkpoint's sampling rate
    (16 kHz by default), zero-padded, with ``lengths`` in samples (``mmtk extract
    --modality audio --raw`` writes them). ``normalize`` (default: the checkpoint's
    ``do_normalize``, else true) scales each clip to zero mean and unit variance, so keep the
    audio modality out of ``data.normalize``. ``pooling`` is mean or max over real frames.

    Parameters:
        model: folder of a local Hugging Face checkpoint (config.json and weights); nothing is
            downloaded
        pooling: mean or max over the real frames
        layer: which hidden state: 0 = embeddings, 1..L = layers, -1 = last
        freeze: keep the checkpoint's weights fixed (only the projection trains)
        normalize: scale each clip to zero mean and unit variance; null: as the checkpoint's
            do_normalize says
    """

    def __init__(self, in_dim: int, latent_dim: int, model: Path,
                 pooling: Literal["mean", "max"] = "mean", layer: int = -1, freeze: bool = True,
                 normalize: bool | None = None):
        super().__init__(AudioBackbone(model, layer, normalize), latent_dim, freeze)
        self.pooling = pooling

    @staticmethod
    def example_params(workdir: Path) -> dict:
        from .examples import cached, tiny_audio_model
        return {"model": str(cached(workdir, "hf_tiny_audio", tiny_audio_model))}

    @staticmethod
    def example_input(n: int, in_dim: int) -> tuple[Tensor, Tensor]:
        lengths = torch.randint(50, 1600, (n,))
        wave = torch.randn(n, 1600, 1) * frame_mask(lengths, 1600)[..., None]
        return wave, lengths

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        if x.dim() == 3 and x.shape[-1] == 1:
            x = x.squeeze(-1)
        if x.dim() != 2 or not x.is_floating_point():
            raise DataError(f"hf_audio expects float waveforms (B, S) or (B, S, 1), got "
                            f"{x.dtype} of shape {tuple(x.shape)}; write them with "
                            "`mmtk extract --modality audio --raw`")
        with self._context():
            hidden, mask = self.backbone(x, _full_lengths(x, lengths))
            pooled = masked_pool(hidden, mask, self.pooling)
        return self.proj(pooled)


class HFVisualEncoder(_HFEncoder):
    """Face/image frames through a local image-model checkpoint (ViT family).

    Input: frames ``(B, T, C*S*S)`` flattened with ``lengths`` (frames), one image
    ``(B, C*S*S)``, or ``(B, T, C, S, S)`` / ``(B, C, S, S)``; S is the checkpoint's
    ``image_size`` and pixels are already normalised (``mmtk extract --modality visual
    --raw`` writes them), so keep the visual modality out of ``data.normalize``. Each frame
    is pooled over patches (``patch_pooling``: [CLS] token or mean), then frames are averaged.

    Parameters:
        model: folder of a local Hugging Face checkpoint (config.json and weights); nothing is
            downloaded
        patch_pooling: how a frame's patch states become one vector: cls (first token) or mean
        layer: which hidden state: 0 = embeddings, 1..L = layers, -1 = last
        freeze: keep the checkpoint's weights fixed (only the projection trains)
        frame_chunk: frames per forward pass of the backbone (lower it to save memory)
    """

    def __init__(self, in_dim: int, latent_dim: int, model: Path,
                 patch_pooling: Literal["cls", "mean"] = "cls", layer: int = -1, freeze: bool = True,
                 frame_chunk: Annotated[int, Ge(1)] = 64):
        super().__init__(VisualBackbone(model, layer), latent_dim, freeze)
        self.patch_pooling = patch_pooling
        self.frame_chunk = max(1, frame_chunk)

    @staticmethod
    def example_params(workdir: Path) -> dict:
        from .examples import cached, tiny_visual_model
        return {"model": str(cached(workdir, "hf_tiny_visual", tiny_visual_model))}

    @staticmethod
    def example_input(n: int, in_dim: int) -> tuple[Tensor, Tensor]:
        lengths = torch.randint(1, 4, (n,))
        return torch.randn(n, 3, 3 * 16 * 16), lengths

    def _frames(self, x: Tensor) -> Tensor:
        """Any accepted layout -> (B, T, C, S, S)."""
        b = self.backbone
        shape = (b.channels, b.image_size, b.image_size)
        if x.dim() == 2 and x.shape[1] == b.flat_dim:
            return x.view(x.shape[0], 1, *shape)
        if x.dim() == 3 and x.shape[2] == b.flat_dim:
            return x.view(x.shape[0], x.shape[1], *shape)
        if x.dim() == 4 and tuple(x.shape[1:]) == shape:
            return x.unsqueeze(1)
        if x.dim() == 5 and tuple(x.shape[2:]) == shape:
            return x
        raise DataError(f"hf_visual expects frames of {b.channels}x{b.image_size}x{b.image_size} "
                        f"(flattened: {b.flat_dim} values) for the model '{b.path}', got shape "
                        f"{tuple(x.shape)}; write them with `mmtk extract --modality visual --raw` "
                        "using the same model")

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        if not x.is_floating_point():
            raise DataError(f"hf_visual expects float pixels, got {x.dtype}")
        frames = self._frames(x)
        bsz, t = frames.shape[:2]
        lengths = _full_lengths(frames, lengths if x.dim() in (3, 5) else None).clamp(1, t)
        valid = frame_mask(lengths, t)                                              # (B, T)
        flat = frames[valid]                                                        # (N, C, S, S)
        with self._context():
            pooled = []
            for start in range(0, flat.shape[0], self.frame_chunk):
                hidden, mask = self.backbone(flat[start:start + self.frame_chunk])
                pooled.append(masked_pool(hidden, mask, self.patch_pooling))
            per_frame = torch.cat(pooled)                                           # (N, H)
            out = per_frame.new_zeros(bsz, t, per_frame.shape[-1])
            out[valid] = per_frame
            video = masked_mean(out, valid)
        return self.proj(video)

