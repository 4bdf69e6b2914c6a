"""Per-sample predictions of a trial, kept so any analysis can be redone without retraining.

Each trial writes ``predictions.npz`` next to its ``metrics.json``: for the validation and the
test split, under every evaluation condition, the prediction, the class probabilities (or the
score, for regression), which modalities were shown, the label and the sample id. Only plain
arrays are stored (ids as fixed-width unicode), so the file loads with
``numpy.load(..., allow_pickle=False)``. :func:`score_predictions` recomputes every metric
from it, exactly as the evaluator did.
"""
from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import MmtkError
from .metrics import Metric, confusion_matrix, score_all

FILE = "predictions.npz"
SPLITS = ("val", "test")


@dataclass
class SplitPredictions:
    """One split's predictions under every evaluation condition (C conditions, N samples)."""

    ids: list[str]
    labels: np.ndarray             # (N,) int64
    scores: np.ndarray | None      # (N,) float32 true regression scores, when the data has them
    conditions: list[str]
    mean_over: list[str]
    mask: np.ndarray               # (C, N, M) bool: modalities shown
    pred: np.ndarray               # (C, N) int64 class, or float32 score
    prob: np.ndarray | None        # (C, N, K) float32 softmax (classification only)

    def condition(self, name: str) -> tuple[np.ndarray, np.ndarray | None]:
        i = self.conditions.index(name)
        return self.pred[i], None if self.prob is None else self.prob[i]


@dataclass
class TrialPredictions:
    modalities: list[str]
    target: str
    num_classes: int
    class_names: list[str]
    splits: dict[str, SplitPredictions]


def split_arrays(split: str, sp: SplitPredictions) -> dict[str, np.ndarray]:
    """One split's arrays under the ``{split}.`` keys of the file format."""
    arrays = {f"{split}.ids": np.array(sp.ids, dtype=str), f"{split}.labels": sp.labels.astype(np.int64),
              f"{split}.conditions": np.array(sp.conditions, dtype=str),
              f"{split}.mean_over": np.array(sp.mean_over, dtype=str),
              f"{split}.mask": sp.mask.astype(bool), f"{split}.pred": sp.pred}
    if sp.scores is not None:
        arrays[f"{split}.scores"] = sp.scores.astype(np.float32)
    if sp.prob is not None:
        arrays[f"{split}.prob"] = sp.prob.astype(np.float32)
    return arrays


def write_npz(path: Path, arrays: dict[str, Any]) -> None:
    """Compressed, plain arrays only, written atomically."""
    from .rundir import atomic_write_bytes

    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(Path(path), buf.getvalue())


def save_predictions(path: Path, trial: TrialPredictions) -> None:
    arrays: dict[str, Any] = {"modalities": np.array(trial.modalities, dtype=str),
                              "target": np.array(trial.target), "num_classes": np.array(trial.num_classes),
                              "class_names": np.array(trial.class_names or [], dtype=str)}
    for split, sp in trial.splits.items():
        arrays.update(split_arrays(split, sp))
    write_npz(path, arrays)


def load_predictions(path: Path) -> TrialPredictions:
    """A trial's predictions; a missing or damaged file is an error naming it."""
    path = Path(path)
    if not path.is_file():
        raise MmtkError(f"{path} does not exist: this trial kept no per-sample predictions (runs "
                        "made before mmtk kept them, or an unfinished trial); rerun it")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
        splits = {}
        for split in SPLITS:
            if f"{split}.ids" not in data:
                continue
            splits[split] = SplitPredictions(
                ids=[str(i) for i in data[f"{split}.ids"]], labels=data[f"{split}.labels"],
                scores=data.get(f"{split}.scores"), conditions=[str(c) for c in data[f"{split}.conditions"]],
                mean_over=[str(c) for c in data[f"{split}.mean_over"]], mask=data[f"{split}.mask"],
                pred=data[f"{split}.pred"], prob=data.get(f"{split}.prob"))
        return TrialPredictions([str(m) for m in data["modalities"]], str(data["target"]),
                                int(data["num_classes"]), [str(c) for c in data["class_names"]], splits)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise MmtkError(f"{path} is damaged or not an mmtk predictions file ({type(exc).__name__}: "
                        f"{exc}); rerun the trial to write it again") from None


def score_predictions(split: SplitPredictions, metrics: dict[str, Metric],
                      num_classes: int) -> dict[str, dict[str, float]]:
    """Every metric under every condition (and their ``mean``), as the evaluator computes them
    (the same :func:`mmtk.metrics.score_all`; a sample shown nothing is not scored)."""
    labels = torch.from_numpy(split.labels)
    scores = None if split.scores is None else torch.from_numpy(split.scores)
    out = {cond: score_all(metrics, num_classes, torch.from_numpy(split.pred[i]), labels, scores,
                           torch.from_numpy(split.mask[i].any(-1)),
                           None if split.prob is None else torch.from_numpy(split.prob[i]))
           for i, cond in enumerate(split.conditions)}
    if split.mean_over:
        out["mean"] = {n: float(np.mean([out[c][n] for c in split.mean_over])) for n in metrics}
    return out


def confusion_matrices(split: SplitPredictions, num_classes: int) -> dict[str, np.ndarray]:
    """(true class x predicted class) counts per condition (classification only)."""
    labels = torch.from_numpy(split.labels)
    return {cond: confusion_matrix(labels, torch.from_numpy(split.pred[i]).long(), num_classes).numpy()
                  .round().astype(np.int64)
            for i, cond in enumerate(split.conditions)}
