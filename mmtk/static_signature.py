"""A component's constructor signature read from its source, without importing it.

Checking a recipe needs every component's parameters (names, defaults, typed limits), and
importing the component modules to learn them imports torch (~1 s; ``mmtk validate`` should
answer in well under that). Component modules use ``from __future__ import annotations``, so
an annotation is a string that can be evaluated against the few light modules it names (the
plugin's ``limits``, :mod:`typing`, :mod:`mmtk`'s constraints). :class:`StaticComponent`
stands in for the class in :mod:`mmtk.schema`; anything it cannot answer from the source (an
inherited ``__init__``, a default that is an expression, an attribute defined elsewhere)
imports the real object, so a check is never answered wrongly, only sometimes slower.
"""
from __future__ import annotations

import ast
import builtins
import importlib
import importlib.util
import inspect
import typing
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

# modules an annotation may be evaluated from without importing anything heavy
_LIGHT_MODULES = ("typing", "pathlib", "collections.abc", "mmtk.constraints")

def _light_mmtk_names() -> frozenset[str]:
    """mmtk's lazy exports that come from its constraints module (Ge, NonEmpty, Matches, ...)."""
    from . import _LAZY
    return frozenset(n for n, module in _LAZY.items() if module == "mmtk.constraints")

# The class attributes the recipe check reads, with their values on the bases components
# derive from (tests/core/test_static_signature.py checks them against the real classes):
# a component that does not set one in its own body inherits it from there. An attribute
# the base does not have is absent (None here).
_SLOT_DEFAULTS = {"aux_losses": (), "needs_labels": False, "needs_targets": False}
_KNOWN_BASES: dict[str, dict[str, Any]] = {
    **dict.fromkeys(["mmtk.Slot", "mmtk.Fuser", "mmtk.pipeline.Slot", "mmtk.pipeline.Fuser"], _SLOT_DEFAULTS),
    "torch.nn.Module": dict.fromkeys(_SLOT_DEFAULTS),
}
# core bases without an __init__ of their own: a subclass that defines none takes no parameters
_NO_INIT_BASES = frozenset(["mmtk.MissingProtocol", "mmtk.protocols.MissingProtocol", "mmtk.Dataset",
                            "mmtk.dataset.Dataset"])


UNKNOWN = object()   # a class attribute the source sets to something other than a literal


class NotStatic(Exception):
    """The source does not say it plainly; the caller imports the real object instead."""


class StaticComponent:
    """Signature and literal class attributes of a class read from source; other attribute
    reads and calls go to the imported class."""

    def __init__(self, target: str, signature: inspect.Signature, hints: dict[str, Any],
                 attributes: dict[str, Any], load: Callable[[], Any], bases: tuple[str, ...] = ()):
        self.target, self.__signature__, self.hints = target, signature, hints
        self._attributes, self._load, self._bases = attributes, load, bases

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_attributes", "_load", "_bases"):
            raise AttributeError(name)
        if name in self._attributes and self._attributes[name] is not UNKNOWN:
            return self._attributes[name]
        if name in self._attributes:
            return getattr(self._load(), name)
        known = [_KNOWN_BASES.get(b) for b in self._bases]
        if name in _SLOT_DEFAULTS and known and all(k is not None for k in known):
            value = next((k[name] for k in known if k[name] is not None), None)
            if value is None:
                raise AttributeError(name)
            return value
        return getattr(self._load(), name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._load()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<{self.target} (read from source)>"


def static_component(target: str, load: Callable[[], Any]) -> StaticComponent | None:
    """The stand-in for ``"module:Class"``, or None when the source cannot answer."""
    try:
        return _read(target, load)
    except NotStatic:
        return None


def _read(target: str, load: Callable[[], Any]) -> StaticComponent:
    module, _, attr = target.partition(":")
    tree, package = _parse(module)
    node = next((n for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and n.name == attr),
                None)
    if node is None or node.decorator_list or not _future_annotations(tree):
        raise NotStatic(target)   # absent, or a decorator may change the signature
    namespace = _Namespace(_imports(tree, package))
    if isinstance(node, ast.FunctionDef):   # a factory
        params, hints = _parameters(node, namespace, skip_first=False)
        return StaticComponent(target, inspect.Signature(params), hints, {}, load)
    init, literals, bases = _class_chain(node, tree, namespace.imports)
    params, hints = _parameters(init, namespace) if init is not None else ([], {})
    return StaticComponent(target, inspect.Signature(params), hints, literals, load, bases)


def _class_chain(node: ast.ClassDef, tree: ast.Module, imports: dict[str, tuple[str, str]],
                 ) -> tuple[ast.FunctionDef | None, dict[str, Any], tuple[str, ...]]:
    """(the __init__ in force, literal class attributes, the bases outside this module),
    following single inheritance through classes of the same module."""
    local = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    literals: dict[str, Any] = {}
    init = None
    while True:
        literals = {**_class_literals(node), **literals}   # a subclass's own value wins
        init = init or next((n for n in node.body if isinstance(n, ast.FunctionDef)
                             and n.name == "__init__"), None)
        bases = tuple(_dotted(b, imports) for b in node.bases)
        if len(bases) != 1 or bases[0] not in local:
            break
        node = local[bases[0]]
        if node.decorator_list:
            raise NotStatic(node.name)
    if init is None and not (len(bases) == 1 and bases[0] in _NO_INIT_BASES):
        raise NotStatic(node.name)   # inherited from elsewhere: only the real class knows
    return init, literals, bases


def _dotted(node: ast.expr, imports: dict[str, tuple[str, str]]) -> str:
    """A base class expression as an absolute dotted name (``nn.Module`` -> ``torch.nn.Module``)."""
    text = ast.unparse(node)
    head, _, rest = text.partition(".")
    if head in imports:
        module, attr = imports[head]
        head = f"{module}.{attr}" if attr else module
    return f"{head}.{rest}" if rest else head


@lru_cache(maxsize=None)
def _parse(module: str) -> tuple[ast.Module, str]:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        raise NotStatic(module) from None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        raise NotStatic(module)
    try:
        tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        raise NotStatic(module) from None
    return tree, module.rpartition(".")[0] if not spec.submodule_search_locations else module


def _future_annotations(tree: ast.Module) -> bool:
    return any(isinstance(n, ast.ImportFrom) and n.module == "__future__"
               and any(a.name == "annotations" for a in n.names) for n in tree.body)


def _imports(tree: ast.Module, package: str) -> dict[str, tuple[str, str]]:
    """Top-level ``from X import a as b`` of the module: {b: (absolute X, a)}."""
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Import):   # import a.b as c -> {c: (a.b, "")}; import a.b -> {a: (a, "")}
            for alias in node.names:
                name = alias.asname or alias.name.partition(".")[0]
                found[name] = (alias.name if alias.asname else name, "")
        if isinstance(node, ast.ImportFrom) and node.module != "__future__":
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), package) \
                if node.level else node.module or ""
            for alias in node.names:
                found[alias.asname or alias.name] = (base, alias.name)
    return found


class _Namespace(dict):
    """Names an annotation uses, each imported on first use and only from a light module."""

    def __init__(self, imports: dict[str, tuple[str, str]]):
        super().__init__(vars(typing))
        self.update(vars(builtins))
        self.imports = imports

    def __missing__(self, name: str) -> Any:
        if name not in self.imports:
            raise NotStatic(name)
        module, attr = self.imports[name]
        if not attr:   # a plain `import x`: x's attributes are not looked at here
            raise NotStatic(module)
        light = module in _LIGHT_MODULES or module.endswith(".limits") or \
            (module == "mmtk" and attr in _light_mmtk_names())
        if not light:
            raise NotStatic(f"{module}.{attr}")
        value = getattr(importlib.import_module(module), attr)
        self[name] = value
        return value


def _parameters(func: ast.FunctionDef, namespace: _Namespace,
                skip_first: bool = True) -> tuple[list[inspect.Parameter], dict]:
    from .schema import CONTEXT_NAMES

    args = func.args
    if args.posonlyargs:
        raise NotStatic("positional-only parameters")
    positional = args.args[1:] if skip_first else args.args  # self
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    entries: list[tuple[ast.arg, ast.expr | None, inspect._ParameterKind]] = [
        (a, d, inspect.Parameter.POSITIONAL_OR_KEYWORD) for a, d in zip(positional, defaults)]
    entries += [(a, d, inspect.Parameter.KEYWORD_ONLY) for a, d in zip(args.kwonlyargs, args.kw_defaults)]
    params, hints = [], {}
    for arg, default, kind in entries:
        value = inspect.Parameter.empty if default is None else _literal(default)
        params.append(inspect.Parameter(arg.arg, kind, default=value))
        if arg.annotation is not None:
            try:
                hints[arg.arg] = _annotation(arg.annotation, namespace)
            except NotStatic:
                if arg.arg not in CONTEXT_NAMES:   # a context value's type is never checked
                    raise
    if args.vararg:
        params.append(inspect.Parameter(args.vararg.arg, inspect.Parameter.VAR_POSITIONAL))
    if args.kwarg:
        params.append(inspect.Parameter(args.kwarg.arg, inspect.Parameter.VAR_KEYWORD))
    return params, hints


def _literal(node: ast.expr) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError):
        raise NotStatic(ast.unparse(node)) from None


def _annotation(node: ast.expr, namespace: _Namespace) -> Any:
    text = ast.unparse(node)
    try:  # the component's own source, evaluated as importing it would (no data involved)
        return eval(compile(text, "<annotation>", "eval"), {"__builtins__": {}}, namespace)  # noqa: S307
    except NotStatic:
        raise
    except Exception:
        raise NotStatic(text) from None


def _class_literals(cls: ast.ClassDef) -> dict[str, Any]:
    """Class attributes assigned a literal in the class body (e.g. ``aux_losses = (...)``)."""
    found = {}
    for node in cls.body:
        target, value = None, None
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target, value = node.targets[0].id, node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            target, value = node.target.id, node.value
        if target is not None:
            try:
                found[target] = ast.literal_eval(value)
            except (ValueError, SyntaxError, TypeError):
                found[target] = UNKNOWN   # set here, but not to a literal: ask the real class
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found[node.name] = UNKNOWN    # e.g. a property of that name
    return found
