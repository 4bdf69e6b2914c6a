"""The search space: a YAML mapping from recipe paths to distributions, parsed and checked.

```yaml
losses.weights.aligner/w2_nce: {float: [0.01, 10], log: true}
train.optimizer.lr: {float: [1e-4, 1e-2], log: true}
model.fuser.heads: {int: [2, 8], step: 2}
model.refiner.type: {categorical: [null, supcon]}
```

Every problem of the file is reported at once, each naming the file and the key. Whether the
paths and values fit the recipe is checked by :mod:`mmtk.tune.recipe_values`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import did_you_mean
from .engine import TuneError

KINDS = ("float", "int", "categorical")
OPTIONS = {"float": ("log", "step"), "int": ("log", "step"), "categorical": ()}


@dataclass(frozen=True)
class Param:
    """One searched recipe value."""

    path: str
    kind: str                       # float | int | categorical
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple = ()

    @property
    def is_type_switch(self) -> bool:
        """A choice among component types (``model.refiner.type``): applied as a new block."""
        return self.kind == "categorical" and self.path.endswith(".type")

    def probes(self) -> list[Any]:
        """The values that bound this parameter: every choice, or both ends of the range."""
        if self.kind == "categorical":
            return list(self.choices)
        if self.kind == "int":
            return [self.low, self.reachable_high()]
        # floats, and one value off any integer grid: an int parameter cannot take a float range
        assert self.low is not None and self.high is not None
        inside = self.low + (self.high - self.low) * 0.37 if self.step is None else self.low + self.step
        return [float(self.low), float(self.reachable_high() or self.high), float(inside)]

    def reachable_high(self) -> float | int | None:
        """The highest value on the ``step`` grid (Optuna never draws above it)."""
        if self.step is None or self.low is None or self.high is None:
            return self.high
        count = int((self.high - self.low) // self.step + 1e-9)
        top = self.low + count * self.step
        return int(top) if self.kind == "int" else float(top)


def load_space(path: str | Path) -> tuple[list[Param], dict]:
    """The parameters of a space file, and the file's mapping as written."""
    from ..recipe import parse_yaml
    from ..recipe.loading import read_text

    path = Path(path)
    if not path.is_file():
        raise TuneError(f"search space file '{path}' not found; pass --space FILE.yaml "
                        "(the format is shown by: mmtk tune --help)")
    raw = parse_yaml(read_text(path, "search space"), str(path))
    return parse_space(raw, str(path)), raw


def parse_space(raw: Any, source: str) -> list[Param]:
    """Every key of a space mapping as a :class:`Param`; all problems in one error."""
    if not isinstance(raw, dict) or not raw:
        raise TuneError(f"search space {source}: expected a non-empty mapping of recipe paths to "
                        "distributions, e.g. 'train.optimizer.lr: {float: [1e-4, 1e-2], log: true}'")
    params, problems = [], []
    for key, spec in raw.items():
        found: list[str] = []
        param = _parse_entry(key, spec, found)
        problems += [f"{key}: {p}" for p in found]
        if param is not None and not found:
            params.append(param)
    if problems:
        raise TuneError(f"{len(problems)} problem(s) in the search space {source}:\n" +
                        "\n".join(f"  - {p}" for p in problems))
    return params


def _parse_entry(key: Any, spec: Any, problems: list[str]) -> Param | None:
    if not isinstance(key, str) or not key or any(not part for part in key.split(".")):
        problems.append("a key must be a dotted recipe path such as train.optimizer.lr")
        return None
    if not isinstance(spec, dict):
        problems.append(f"expected a mapping such as {{float: [low, high]}}, got {spec!r}")
        return None
    kinds = [k for k in spec if k in KINDS]
    if len(kinds) != 1:
        problems.append(f"give exactly one of {', '.join(KINDS)} (got {', '.join(map(str, spec)) or 'none'})")
        return None
    kind = kinds[0]
    for option in spec:
        if option != kind and option not in OPTIONS[kind]:
            allowed = ", ".join(OPTIONS[kind]) or "no option"
            problems.append(f"unknown option '{option}' for a {kind} parameter"
                            f"{did_you_mean(str(option), OPTIONS[kind])}; {allowed} accepted")
    if kind == "categorical":
        return _categorical(key, spec[kind], problems)
    return _numeric(key, kind, spec, problems)


def _categorical(key: str, choices: Any, problems: list[str]) -> Param | None:
    if not isinstance(choices, list) or not choices:
        problems.append("categorical takes a non-empty list of choices")
        return None
    if any(c is not None and not isinstance(c, (bool, int, float, str)) for c in choices):
        problems.append("categorical choices must be plain values (strings, numbers, booleans or "
                        "null), not lists or mappings")
        return None
    if len({repr(c) for c in choices}) != len(choices):
        problems.append(f"categorical choices repeat a value: {choices}")
    return Param(key, "categorical", choices=tuple(choices))


def _is_number(value: Any, kind: str) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) if kind == "int" else isinstance(value, (int, float))


def _numeric(key: str, kind: str, spec: dict, problems: list[str]) -> Param | None:
    bounds = spec[kind]
    if (not isinstance(bounds, list) or len(bounds) != 2
            or not all(_is_number(b, kind) for b in bounds)):
        whole = "whole numbers" if kind == "int" else "numbers"
        problems.append(f"{kind} takes [low, high], two {whole}; got {bounds!r}")
        return None
    low, high = bounds
    log, step = spec.get("log", False), spec.get("step")
    if low >= high:
        problems.append(f"empty or inverted range [{low}, {high}]: low must be below high (to fix a "
                        "value, set it in the recipe or with --set instead)")
    if not isinstance(log, bool):
        problems.append(f"log must be true or false, got {log!r}")
    elif log and low <= 0:
        problems.append(f"log: true needs low > 0, got {low}")
    if step is not None:
        if not _is_number(step, kind) or step <= 0:
            problems.append(f"step must be a positive {'whole ' if kind == 'int' else ''}number, got {step!r}")
        elif log and (kind == "float" or step != 1):
            problems.append("log: true cannot be combined with a step (Optuna samples a log scale "
                            "without a grid); drop one of them")
        elif low < high and step > high - low:
            problems.append(f"step {step} is wider than the range [{low}, {high}]")
    return Param(key, kind, low, high, bool(log) if isinstance(log, bool) else False, step)


def suggest(trial: Any, param: Param) -> Any:
    """Draws ``param``'s value for an Optuna trial (its name is the recipe path)."""
    if param.kind == "categorical":
        return trial.suggest_categorical(param.path, list(param.choices))
    if param.kind == "int":
        return trial.suggest_int(param.path, int(param.low), int(param.high),
                                 step=int(param.step or 1), log=param.log)
    return trial.suggest_float(param.path, float(param.low), float(param.high),
                               step=None if param.step is None else float(param.step), log=param.log)
