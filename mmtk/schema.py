"""A component's constructor signature is its schema: parameters, types, defaults, limits.

Context values are injected by the toolkit only where a constructor names them, and only the
ones that exist for the kind being built (:data:`CONTEXT_BY_KIND`); recipes may not set them.
A parameter's limits are declared next to it: ``Annotated[int, Ge(1)]``, ``Annotated[float,
Gt(0), Lt(1)]`` (see :mod:`mmtk.constraints`). The core's own recipe sections are checked by
the same functions (:func:`check_params`).
"""
from __future__ import annotations

import inspect
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Union

from .constraints import Constraint
from .errors import Problem, accepted, did_you_mean
from .static_signature import StaticComponent

# Values the toolkit passes to constructors that ask for them by name (all kinds together).
CONTEXT_NAMES = frozenset({
    "in_dim",        # input feature size of this encoder's modality / of the head's input
    "in_dims",       # {modality: input feature size}
    "modality",      # the modality an encoder serves
    "modalities",    # sorted tuple of modality names
    "num_classes",   # number of classes of the data's labels
    "out_dim",       # a head's output size: num_classes, or 1 for a regression task loss
    "latent_dim",    # the model's shared representation size
    "seed",
    "build_encoder",  # build_encoder(modality) -> a fresh encoder as in model.encoders (slots)
    "params",        # the trainable parameters (optimizers)
    "optimizer",     # the optimizer (schedulers)
    "epochs",        # the stage's epoch budget (schedulers)
})

_MODEL_PART = frozenset({"modalities", "num_classes", "latent_dim", "in_dims", "seed"})
# What each kind is given: an encoder may have a user parameter named `epochs`, and an
# encoder asking for `optimizer` asks for something the toolkit never supplies to encoders.
CONTEXT_BY_KIND: dict[str, frozenset[str]] = {
    "encoder": _MODEL_PART | {"in_dim", "modality"},
    "aligner": _MODEL_PART | {"build_encoder"},
    "reconstructor": _MODEL_PART | {"build_encoder"},
    "refiner": _MODEL_PART | {"build_encoder"},
    "fuser": _MODEL_PART | {"build_encoder"},
    "head": _MODEL_PART | {"in_dim", "out_dim"},
    "optimizer": frozenset({"params"}),
    "scheduler": frozenset({"optimizer", "epochs"}),
    "dataset": frozenset({"seed"}),
    "missing": frozenset({"seed"}),
    "loss": frozenset(),
    "metric": frozenset(),
}


def context_names(kind: str | None) -> frozenset[str]:
    """The context values supplied to a component of ``kind`` (all of them if unknown)."""
    return CONTEXT_BY_KIND.get(kind, CONTEXT_NAMES) if kind else CONTEXT_NAMES

_MISSING = inspect.Parameter.empty


@dataclass(frozen=True)
class Param:
    name: str
    annotation: Any
    default: Any = _MISSING

    @property
    def required(self) -> bool:
        return self.default is _MISSING

    @property
    def type_name(self) -> str:
        return type_name(self.annotation)


def _hints(obj: Callable) -> dict[str, Any]:
    if isinstance(obj, StaticComponent):   # read from source: its hints are already evaluated
        return obj.hints
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        return typing.get_type_hints(target, include_extras=True)
    except Exception:
        return getattr(target, "__annotations__", {})


def signature_params(obj: Callable) -> list[Param]:
    """Parameters of a component's constructor (``self`` and ``*args``/``**kwargs`` skipped)."""
    sig = inspect.signature(obj)
    hints = _hints(obj)
    out = []
    for p in sig.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        out.append(Param(p.name, hints.get(p.name, Any), p.default))
    return out


def user_params(obj: Callable, kind: str | None = None) -> list[Param]:
    names = context_names(kind)
    return [p for p in signature_params(obj) if p.name not in names]


def type_name(tp: Any) -> str:
    if tp is Any or tp is _MISSING:
        return "any"
    base, limits = split_annotated(tp)
    if limits:
        return f"{type_name(base)} ({', '.join(map(str, limits))})"
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        args = ", ".join(type_name(a) for a in typing.get_args(tp))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def split_annotated(tp: Any) -> tuple[Any, tuple[Constraint, ...]]:
    """``Annotated[int, Ge(1)]`` -> (int, (Ge(1),)); other hints -> (hint, ())."""
    if typing.get_origin(tp) is typing.Annotated:
        base, *extra = typing.get_args(tp)
        return base, tuple(e for e in extra if isinstance(e, Constraint))
    return tp, ()


def check_type(value: Any, tp: Any) -> bool:
    """Does a YAML value fit a type hint and its limits? (int fits float; bool never fits int.)"""
    return value_problem(value, tp) is None


def value_problem(value: Any, tp: Any) -> str | None:
    """Why ``value`` does not fit ``tp`` (its type, or a declared limit), or None."""
    base, limits = split_annotated(tp)
    if limits:
        if not _fits(value, base):
            return f"expected {type_name(base)}, got {type(value).__name__} {value!r}"
        for limit in limits:
            why = limit.problem(value)
            if why:
                return f"{why}, got {value!r}"
        return _inner_problem(value, base)
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        options = typing.get_args(tp)
        if any(_fits(value, split_annotated(a)[0]) for a in options):
            # the value has a fitting type: report the limit it breaks, if every option does
            reasons = [value_problem(value, a) for a in options if _fits(value, split_annotated(a)[0])]
            return None if None in reasons else reasons[0]
        return f"expected {type_name(tp)}, got {type(value).__name__} {value!r}"
    if not _fits(value, tp):
        return f"expected {type_name(tp)}, got {type(value).__name__} {value!r}"
    return _inner_problem(value, tp)


def _inner_problem(value: Any, tp: Any) -> str | None:
    """Limits of the items of a list or the values of a mapping."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is tuple and args and isinstance(value, (list, tuple)):
        item_types = [args[0]] * len(value) if args[-1] is Ellipsis else list(args)
        for i, (v, t) in enumerate(zip(value, item_types)):
            why = value_problem(v, t)
            if why:
                return f"item {i}: {why}"
        return None
    if origin in (list, typing.Sequence, set) and args and isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            why = value_problem(v, args[0])
            if why:
                return f"item {i}: {why}"
    if origin in (dict, typing.Mapping) and len(args) == 2 and isinstance(value, dict):
        for k, v in value.items():
            why = value_problem(v, args[1])
            if why:
                return f"'{k}': {why}"
    return None


def _fits(value: Any, tp: Any) -> bool:
    """The type check alone (limits ignored)."""
    if tp is Any or tp is _MISSING:
        return True
    if typing.get_origin(tp) is typing.Annotated:
        return _fits(value, typing.get_args(tp)[0])
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Literal:
        return value in args
    if origin in (Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    if tp is type(None) or tp is None:
        return value is None
    if origin in (list, tuple, typing.Sequence, set) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(args) == len(value) and all(_fits(v, a) for v, a in zip(value, args))
        inner = args[0] if args else Any
        return all(_fits(v, inner) for v in value)
    if origin in (dict, typing.Mapping) or tp is dict:
        if not isinstance(value, dict):
            return False
        kt, vt = args if args else (Any, Any)
        return all(_fits(k, kt) and _fits(v, vt) for k, v in value.items())
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if tp is Path:
        return isinstance(value, str)
    if inspect.isclass(tp):
        return isinstance(value, tp)
    return True


def check_params(declared: list[Param], params: dict[str, Any], path: str,
                 accepts_kwargs: bool = False, what: str = "parameter") -> list[Problem]:
    """Unknown, missing, mistyped and out-of-limits values of ``params`` against ``declared``
    (a component's settable parameters, or a core recipe section's fields)."""
    problems = []
    settable = {p.name: p for p in declared}
    def at(key: str) -> str:
        return f"{path}.{key}" if path else key

    for key, value in params.items():
        if key not in settable:
            if not accepts_kwargs:
                problems.append(Problem(at(key), f"unknown {what} '{key}'"
                                        f"{did_you_mean(key, settable)}; {accepted(settable)}"))
            continue
        why = value_problem(value, settable[key].annotation)
        if why:
            problems.append(Problem(at(key), why))
    for name, p in settable.items():
        if p.required and name not in params:
            problems.append(Problem(at(name), f"missing required {what} '{name}' "
                                    f"({p.type_name})"))
    return problems


def validate_params(obj: Callable, params: dict[str, Any], path: str,
                    kind: str | None = None) -> list[Problem]:
    """All problems with ``params`` for a component ``obj`` of ``kind``, each with its path."""
    supplied = context_names(kind)
    declared = signature_params(obj)
    problems = [Problem(f"{path}.{p.name}", f"'{p.name}' is supplied by the toolkit and cannot "
                        "be set in a recipe") for p in declared if p.name in supplied and p.name in params]
    accepts_kwargs = any(p.kind is p.VAR_KEYWORD for p in inspect.signature(obj).parameters.values())
    settable = [p for p in declared if p.name not in supplied]
    given = {k: v for k, v in params.items() if k not in supplied}
    return problems + check_params(settable, given, path, accepts_kwargs)


def build(obj: Callable, params: dict[str, Any], context: dict[str, Any],
          base_dir: Path | None = None, kind: str | None = None) -> Any:
    """Instantiate ``obj`` with recipe params plus the context values its signature names."""
    kwargs = dict(params)
    declared = {p.name: p for p in signature_params(obj)}
    supplied = context_names(kind)
    for name in declared:
        if name in supplied and name in context:
            kwargs[name] = context[name]
    for name, p in declared.items():
        if name in kwargs and _wants_path(p.annotation) and isinstance(kwargs[name], str):
            path = Path(kwargs[name]).expanduser()
            kwargs[name] = path if path.is_absolute() or base_dir is None else base_dir / path
    return obj(**kwargs)


def _wants_path(tp: Any) -> bool:
    tp = split_annotated(tp)[0]
    if tp is Path:
        return True
    return Path in typing.get_args(tp)


def path_params(obj: Callable) -> set[str]:
    """Names of the parameters that take a file system path (resolved against the recipe)."""
    return {p.name for p in signature_params(obj) if _wants_path(p.annotation)}
