"""The Hugging Face encoders' parameters declare their limits (``layer``'s range depends on the
checkpoint and is checked when it loads, see test_encoders.py)."""
from __future__ import annotations

from pathlib import Path

RECIPE = Path(__file__).resolve().parents[3] / "recipes" / "baseline.yaml"


def test_frame_chunk_is_at_least_one(check_limit, tmp_path):
    # the recipe check reads the signature only: no checkpoint is loaded
    setup = (f"model.encoders.visual={{type: hf_visual, model: {tmp_path}}}",)
    check_limit(RECIPE, "model.encoders.visual.frame_chunk", "1", "0", "must be >= 1", setup)
