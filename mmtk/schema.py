"""A component's constructor signature is its schema: parameters, types, defaults.

Context values (:data:`CONTEXT_NAMES`) are injected by the toolkit only where a constructor
names them; recipes may not set them.
"""
from __future__ import annotations

import inspect
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Union

from .errors import Problem, accepted, did_you_mean

# Values the toolkit passes to constructors that ask for them by name.
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
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        return typing.get_type_hints(target)
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


def user_params(obj: Callable) -> list[Param]:
    return [p for p in signature_params(obj) if p.name not in CONTEXT_NAMES]


def type_name(tp: Any) -> str:
    if tp is Any or tp is _MISSING:
        return "any"
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


def check_type(value: Any, tp: Any) -> bool:
    """Does a YAML value fit a type hint? (int fits float; bool never fits int.)"""
    if tp is Any or tp is _MISSING:
        return True
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Literal:
        return value in args
    if origin in (Union, types.UnionType):
        return any(check_type(value, a) for a in args)
    if tp is type(None) or tp is None:
        return value is None
    if origin in (list, tuple, typing.Sequence, set) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(args) == len(value) and all(check_type(v, a) for v, a in zip(value, args))
        inner = args[0] if args else Any
        return all(check_type(v, inner) for v in value)
    if origin in (dict, typing.Mapping) or tp is dict:
        if not isinstance(value, dict):
            return False
        kt, vt = args if args else (Any, Any)
        return all(check_type(k, kt) and check_type(v, vt) for k, v in value.items())
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


def validate_params(obj: Callable, params: dict[str, Any], path: str,
                    provided_context: frozenset[str] = CONTEXT_NAMES) -> list[Problem]:
    """All problems with ``params`` for component ``obj``, each with its dotted path."""
    problems = []
    declared = {p.name: p for p in signature_params(obj)}
    settable = {n: p for n, p in declared.items() if n not in CONTEXT_NAMES}
    accepts_kwargs = any(p.kind is p.VAR_KEYWORD for p in inspect.signature(obj).parameters.values())
    for key, value in params.items():
        if key in CONTEXT_NAMES and key in declared:
            problems.append(Problem(f"{path}.{key}", f"'{key}' is supplied by the toolkit and "
                                    "cannot be set in a recipe"))
        elif key not in settable:
            if accepts_kwargs:
                continue
            problems.append(Problem(f"{path}.{key}", f"unknown parameter '{key}'"
                                    f"{did_you_mean(key, settable)}; {accepted(settable)}"))
        elif not check_type(value, settable[key].annotation):
            problems.append(Problem(f"{path}.{key}", f"expected {settable[key].type_name}, "
                                    f"got {type(value).__name__} {value!r}"))
    for name, p in settable.items():
        if p.required and name not in params:
            problems.append(Problem(f"{path}.{name}", f"missing required parameter '{name}' "
                                    f"({p.type_name})"))
    for name, p in declared.items():
        if name in CONTEXT_NAMES and p.required and name not in provided_context:
            problems.append(Problem(path, f"needs context value '{name}', which is not "
                                    "available for this slot"))
    return problems


def build(obj: Callable, params: dict[str, Any], context: dict[str, Any],
          base_dir: Path | None = None) -> Any:
    """Instantiate ``obj`` with recipe params plus the context values its signature names."""
    kwargs = dict(params)
    declared = {p.name: p for p in signature_params(obj)}
    for name in declared:
        if name in CONTEXT_NAMES and name in context:
            kwargs[name] = context[name]
    for name, p in declared.items():
        if name in kwargs and _wants_path(p.annotation) and isinstance(kwargs[name], str):
            path = Path(kwargs[name]).expanduser()
            kwargs[name] = path if path.is_absolute() or base_dir is None else base_dir / path
    return obj(**kwargs)


def _wants_path(tp: Any) -> bool:
    if tp is Path:
        return True
    return Path in typing.get_args(tp)
