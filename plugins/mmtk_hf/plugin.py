"""Registers the Hugging Face encoders and the ``mmtk extract`` command.

Nothing here imports transformers: the encoders load it when built, ``extract`` when run.
"""
from __future__ import annotations

import mmtk

from . import encoders, extract


@mmtk.hookimpl
def mmtk_register_components(register):
    register("encoder", "hf_text", encoders.HFTextEncoder)
    register("encoder", "hf_audio", encoders.HFAudioEncoder)
    register("encoder", "hf_visual", encoders.HFVisualEncoder)


@mmtk.hookimpl
def mmtk_register_commands(register):
    register("extract", "features or model inputs from raw text/audio/frames with a local "
             "Hugging Face checkpoint", extract.configure, extract.run)
