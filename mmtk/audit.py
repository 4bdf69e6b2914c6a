"""``mmtk audit RUN_DIR...``: check runs' protocol cards and recorded facts for the flaws this
field's reference code is known for (test-set selection, per-condition models, test read
during training, hyper-parameters chosen on test, unfinished or altered trials)."""
from __future__ import annotations

from pathlib import Path

import yaml

from .card import FILE
from .errors import MmtkError


def read_card(run_dir: Path) -> dict:
    path = run_dir / FILE
    if not path.is_file():
        raise MmtkError(f"{run_dir} has no {FILE}: it is not a finished mmtk run, or it was made "
                        "before mmtk wrote protocol cards (rerun it)")
    try:
        card = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise MmtkError(f"{path} is damaged ({exc}); rerun the run to write it again") from None
    if not isinstance(card, dict):
        raise MmtkError(f"{path} is not a protocol card")
    return card


def violations(run_dir: str | Path) -> list[str]:
    """Every problem found in one run, as a sentence; empty when the run is sound."""
    run_dir = Path(run_dir)
    card = read_card(run_dir)
    found = []
    selection = card.get("selection", {})
    if selection.get("split") != "val":
        found.append(f"checkpoints were selected on '{selection.get('split')}', not on the validation split")
    test = card.get("test split", {})
    for trial, n in (test.get("read while training") or {}).items():
        if n:
            found.append(f"trial {trial}: the test split was read {n} time(s) while training")
    for trial, n in (test.get("read at the end") or {}).items():
        if n != 1:
            found.append(f"trial {trial}: the test split was evaluated {n} time(s) at the end (expected once)")
    for trial, stages in (selection.get("selected epoch") or {}).items():
        for stage, epoch in (stages or {}).items():
            if epoch is None:
                found.append(f"trial {trial}: stage '{stage}' records no selected epoch")
    if card.get("evaluation", {}).get("one model per test condition"):
        found.append("one model per test condition: the model is trained and evaluated on one fixed "
                     "condition, so its numbers are not comparable with a model that serves every condition")
    tuning = str(card.get("tuning", ""))
    if "test" in tuning and not tuning.startswith("none"):
        found.append(f"hyper-parameters were chosen on the test split ({tuning})")
    trials = {p.name for p in (run_dir / "trials").glob("*") if (p / "metrics.json").is_file()}
    if card.get("trials") != len(trials):
        found.append(f"the card records {card.get('trials')} trial(s) but {len(trials)} finished trial(s) "
                     "are in the run folder")
    return found
