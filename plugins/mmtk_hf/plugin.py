"""Registers the Hugging Face encoders and the ``mmtk extract`` command.

Nothing here imports transformers, torch or numpy: the encoders are registered by import path
with their summary (the first line of their docstring), and ``extract`` imports what it needs
when it runs. The plugin refuses to load, naming the pip extra, without transformers.
"""
from __future__ import annotations

import mmtk
from mmtk.plugin_kit import register_by_path, require_packages

from . import extract

# kind, name, "module:attribute" in this package, summary (= the docstring's first line)
COMPONENTS = [
    ("encoder", "hf_text", "encoders:HFTextEncoder",
     "Text through a local Hugging Face checkpoint (BERT, MiniLM, RoBERTa ...) over token ids."),
    ("encoder", "hf_audio", "encoders:HFAudioEncoder",
     "Raw waveforms through a local wav2vec2 / HuBERT / WavLM checkpoint."),
    ("encoder", "hf_visual", "encoders:HFVisualEncoder",
     "Face/image frames through a local image-model checkpoint (ViT family)."),
]
NEEDS = {"transformers": "hf"}   # package -> the mmtk extra that installs it


@mmtk.hookimpl
def mmtk_register_components(register):
    require_packages("hf", NEEDS)
    register_by_path(register, __package__, COMPONENTS)


@mmtk.hookimpl
def mmtk_register_commands(register):
    register("extract", "features or model inputs from raw text/audio/frames with a local "
             "Hugging Face checkpoint", extract.configure, extract.run)
