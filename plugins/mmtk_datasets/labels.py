"""Class labels written as text (a ``labels.csv``): class indices or class names, never both.

The rule, so that one class is never read as two: when every label is a number, labels are
class indices and ``1``, ``1.0`` and ``01`` are the same class; a number that is not a whole
one (``1.5``) or is negative is a problem of that sample. When no label is a number, labels
are class names in sorted order. A file that mixes numbers and names is an error, unless
``class_names`` is given: then a label is one of those names or an index into them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from mmtk import DataError, did_you_mean


@dataclass
class ClassLabels:
    index: dict[str, int]                      # sample id -> class index (-1: see problems)
    names: list[str]
    rule: str                                  # how the names were found (for DataSplits.info)
    problems: dict[str, str] = field(default_factory=dict)   # sample id -> what is wrong

    def check(self, label: int, sample_id: str) -> str | None:
        """A ``label_check`` for :func:`mmtk_datasets.common.assemble`."""
        return self.problems.get(sample_id)


def _as_number(text: str) -> int | float | None:
    """``int`` for a whole number (``1``, ``1.0``, ``01``), ``float`` otherwise, None for a name."""
    if "_" in text:
        return None                            # Python reads '1_0' as 10; a label does not
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return None
    if not math.isfinite(value):
        return None                            # 'nan' / 'inf' are not class indices
    return int(value) if value.is_integer() else value


def parse(rows: list[tuple[int, str, str]], class_names: list[str] | None, path: Path,
          dataset: str) -> ClassLabels:
    """``rows`` are ``(line, sample id, label text)`` of ``path``."""
    numbers = {sid: _as_number(v) for _, sid, v in rows}
    if class_names:
        return _with_names(rows, numbers, list(class_names))
    named = [(line, sid, v) for line, sid, v in rows if numbers[sid] is None]
    numeric = [(line, sid, v) for line, sid, v in rows if numbers[sid] is not None]
    if named and numeric:
        (nl, ns, nv), (ml, ms, mv) = numeric[0], named[0]
        raise DataError(f"dataset '{dataset}': {path} mixes class indices and class names: "
                        f"'{nv}' (id '{ns}', line {nl}) is a number but '{mv}' (id '{ms}', line "
                        f"{ml}) is not ({len(numeric)} numeric and {len(named)} named label(s)). "
                        "Write every label the same way, or list the names in data.class_names "
                        "(numbers then index into that list).")
    if named:
        names = sorted({v for _, _, v in rows})
        position = {n: i for i, n in enumerate(names)}
        return ClassLabels({sid: position[v] for _, sid, v in rows}, names, "sorted names")
    problems: dict[str, str] = {}
    for _, sid, v in rows:
        value = numbers[sid]
        if isinstance(value, float):
            problems[sid] = (f"label {v!r} is not an integer class index (the labels of this "
                             "file are numbers, so they are class indices 0, 1, ...; a "
                             "regression target belongs in scores.csv)")
        elif value < 0:
            problems[sid] = f"label {v} is out of range (class indices are 0, 1, ...)"
    good = [numbers[sid] for _, sid, _ in rows if sid not in problems]
    names = [str(i) for i in range(max(good, default=-1) + 1)]
    index = {sid: (-1 if sid in problems else numbers[sid]) for _, sid, _ in rows}
    return ClassLabels(index, names, "integer labels", problems)


def _with_names(rows, numbers: dict, names: list[str]) -> ClassLabels:
    position = {n: i for i, n in enumerate(names)}
    index, problems = {}, {}
    for _, sid, v in rows:
        value = numbers[sid]
        if v in position:
            index[sid] = position[v]
        elif isinstance(value, int) and 0 <= value < len(names):
            index[sid] = value
        else:
            index[sid] = -1
            if isinstance(value, int):
                problems[sid] = (f"label {v} is out of range (classes are 0..{len(names) - 1}, "
                                 "data.class_names)")
            else:
                problems[sid] = (f"label {v!r} is not one of data.class_names "
                                 f"({', '.join(names)}){did_you_mean(v, names)}")
    return ClassLabels(index, names, "given", problems)
