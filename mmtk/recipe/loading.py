"""Reading recipe files into one plain tree: YAML, ``extends``, ``--set`` and ``${env:...}``.

Nothing here runs code from a recipe: YAML is read with a safe loader, and ``imports:`` are
only paths at this stage. Every problem is a :class:`RecipeError` naming the file and place.
"""
from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any

import yaml

from ..errors import MmtkError, Problem, RecipeError, did_you_mean


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema scalars (``1e-4`` is a float, ``on``/``no`` are
    strings) and mappings that refuse a key written twice."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: let the base class report it
                continue
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key}' (first on line {first}, again on line {line})",
                    key_node.start_mark)
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag not in ("tag:yaml.org,2002:float", "tag:yaml.org,2002:bool")]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_FLOAT = re.compile(r"""^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?
                     |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""", re.X)
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))


def _construct_float(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    text = loader.construct_scalar(node)
    if re.fullmatch(r"[-+]?[0-9]+", text):
        return int(text)
    return float(re.sub(r"\.(inf|Inf|INF)", "inf", re.sub(r"\.(nan|NaN|NAN)", "nan", text)))


_Loader.add_constructor("tag:yaml.org,2002:float", _construct_float)


def parse_yaml(text: str, source: str = "<string>") -> Any:
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise RecipeError([Problem("", f"invalid YAML{where}: {problem}")], source) from None


def parse_value(text: str) -> Any:
    """A ``--set`` value, read as a YAML scalar or flow collection."""
    value = parse_yaml(text, "--set")
    return "" if value is None and text.strip() not in ("null", "~", "") else value


_ENV = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def interpolate_env(tree: dict) -> tuple[dict, list[Problem]]:
    """Resolve ``${env:NAME}`` (or ``${env:NAME:-default}``) everywhere; unset ones are problems."""
    problems: list[Problem] = []

    def walk(node: Any, path: str) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, f"{path}.{k}" if path else str(k)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, f"{path}[{i}]") for i, v in enumerate(node)]
        if isinstance(node, str) and "${env:" in node:
            def sub(match: re.Match) -> str:
                name, default = match.group(1), match.group(2)
                if name in os.environ:
                    return os.environ[name]
                if default is not None:
                    return default
                problems.append(Problem(path, f"environment variable {name} is not set "
                                        f"(the recipe uses ${{env:{name}}})"))
                return match.group(0)
            return _ENV.sub(sub, node)
        return node

    return walk(tree, ""), problems


def deep_merge(base: Any, override: Any) -> Any:
    """Dicts merge key by key; anything else (lists, scalars, null) replaces. A component
    block whose ``type`` changes is replaced whole: the old type's parameters do not leak."""
    if isinstance(base, dict) and isinstance(override, dict):
        if "type" in base and "type" in override and base["type"] != override["type"]:
            return copy.deepcopy(override)
        out = dict(base)
        for k, v in override.items():
            out[k] = deep_merge(base.get(k), v) if k in base else copy.deepcopy(v)
        return out
    return copy.deepcopy(override)


def set_path(tree: dict, dotted: str, value: Any) -> None:
    """Set ``a.b.c`` (a numeric part indexes a list: ``stages.1.train.epochs``)."""
    keys = dotted.split(".")
    node: Any = tree
    for i, k in enumerate(keys):
        last = i == len(keys) - 1
        if isinstance(node, list):
            if not k.isdigit() or int(k) >= len(node):
                raise RecipeError([Problem(dotted, f"'{k}' is not an index of a list of "
                                           f"{len(node)} item(s)")], "--set")
            if last:
                node[int(k)] = value
            else:
                node = node[int(k)]
            continue
        if not isinstance(node, dict):
            raise RecipeError([Problem(dotted, f"'{'.'.join(keys[:i])}' is a "
                                       f"{type(node).__name__}, not a mapping")], "--set")
        if last:
            node[k] = value
        else:
            if not isinstance(node.get(k), (dict, list)):
                node[k] = {}
            node = node[k]


def apply_overrides(tree: dict, overrides: list[str]) -> dict:
    tree = copy.deepcopy(tree)
    for item in overrides:
        if "=" not in item:
            raise RecipeError([Problem(item, "--set expects KEY.PATH=VALUE")], given_as(item))
        key, value = item.split("=", 1)
        try:
            set_path(tree, key.strip(), parse_value(value))
        except RecipeError as exc:   # name the option as typed, not just "--set"
            raise RecipeError(exc.problems, given_as(item)) from None
    return tree


def read_text(path: Path, what: str = "recipe") -> str:
    """A recipe file's text, or an error saying why it cannot be one."""
    if path.is_dir():
        raise MmtkError(f"{what} '{path}' is a directory; give a recipe file (.yaml)")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MmtkError(f"{what} '{path}' cannot be read: {exc.strerror or exc}") from None
    if b"\x00" in data:
        raise MmtkError(f"{what} '{path}' is a binary file, not a YAML recipe")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MmtkError(f"{what} '{path}' is not UTF-8 text (byte {exc.start}); save it as "
                        "UTF-8") from None


def find_recipe(name: str | Path, named: dict[str, Path], relative_to: Path | None = None,
                what: str = "recipe") -> Path:
    """A recipe file by path (relative to ``relative_to`` when given, else the working
    directory) or by registered name."""
    path = Path(name)
    if relative_to is not None and not path.is_absolute():
        path = relative_to / path
    # absolute, not resolved: a recipe reached through a link keeps the link's folder as the
    # base of its relative paths (recipes/ holds links to the plugins' recipe files)
    if path.exists():
        return Path(os.path.abspath(path))
    if str(name) in named:
        return Path(os.path.abspath(named[str(name)]))
    hint = did_you_mean(str(name), named)
    where = f"{path}" if relative_to is None else f"{path} (relative to the recipe that names it)"
    raise MmtkError(f"{what} '{name}' not found (looked for the file {where} and for a "
                    f"registered recipe of that name{hint})")


def read_recipe_tree(path: str | Path, named: dict[str, Path] | None = None,
                     _chain: tuple[Path, ...] = ()) -> dict:
    """A recipe file (a path, or a registered name) with its ``extends`` chain merged in.
    A parent is found relative to the file that names it (or by registered name), never
    relative to the working directory."""
    named = named or {}
    path = Path(path) if _chain else find_recipe(path, named)
    if path in _chain:
        raise RecipeError([Problem("extends", "circular extends: " +
                                   " -> ".join(str(p) for p in _chain + (path,)))], str(path))
    tree = parse_yaml(read_text(path, "extends" if _chain else "recipe"), str(path))
    if tree is None:
        tree = {}
    if not isinstance(tree, dict):
        raise RecipeError([Problem("", f"a recipe must be a mapping, got {type(tree).__name__}")],
                          str(path))
    parent = tree.pop("extends", None)
    if parent is None:
        return tree
    if not isinstance(parent, str):
        raise RecipeError([Problem("extends", f"expected one recipe file or name, got "
                                   f"{type(parent).__name__} {parent!r}")], str(path))
    parent_path = find_recipe(parent, named, relative_to=path.parent, what="extends")
    base = read_recipe_tree(parent_path, named, _chain + (path,))
    imports = _relative_imports(base, parent_path.parent) + _as_list(tree.get("imports"))
    merged = deep_merge(base, tree)
    if imports:
        merged["imports"] = imports
    return merged


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, list) else [] if value is None else [value]


def _relative_imports(tree: dict, base_dir: Path) -> list:
    """A parent's ``imports:`` made absolute, since the child may live elsewhere."""
    return [str(base_dir / item) if isinstance(item, str) and not Path(item).is_absolute() else item
            for item in _as_list(tree.get("imports"))]


_DESCRIPTION_KEY = re.compile(r"(?m)^description:")
SHORT_DESCRIPTION = 100   # characters; `mmtk list recipes` shows one line per recipe


def recipe_description(path: Path) -> str:
    """A recipe's one-line description: its ``description:`` key, else the first sentence of
    its leading comment, cut at a clause (or word) boundary when long."""
    try:
        text = read_text(Path(path))
    except MmtkError:
        return ""
    if _DESCRIPTION_KEY.search(text):   # parse only recipes that have the key (listing stays fast)
        try:
            tree = parse_yaml(text, str(path))
        except RecipeError:
            tree = None
        if isinstance(tree, dict) and isinstance(tree.get("description"), str) and tree["description"].strip():
            return _one_line(tree["description"])
    comment = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        comment.append(line.lstrip("#").strip())
    return _one_line(" ".join(comment))


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    text = re.split(r"(?<=\.)\s", text, maxsplit=1)[0]   # the first sentence
    if len(text) <= SHORT_DESCRIPTION:
        return text
    head = text[:SHORT_DESCRIPTION]
    clause = max(head.rfind(": "), head.rfind("; "), head.rfind(" ("))
    if clause >= 20:
        return head[:clause]
    return head.rsplit(" ", 1)[0] + " …"


class Override(str):
    """A ``KEY=VALUE`` override that remembers the option it came from (``--folds 7`` is
    ``data.folds=[7]``), so a problem with it names what the user typed."""

    given: str

    def __new__(cls, item: str, given: str) -> "Override":
        obj = super().__new__(cls, item)
        obj.given = given
        return obj


def given_as(item: str) -> str:
    return getattr(item, "given", None) or f"--set {item}"


def _stage_free(path: str) -> str:
    """``stages[1].train.epochs`` -> ``train.epochs``: a top-level --set reaches every stage."""
    return re.sub(r"^stages(\[\d+\]|\.\d+)\.", "", path)


def _in_tree(tree: Any, dotted: str) -> bool:
    node = tree
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


def override_of(path: str, overrides: list[str], file_tree: dict | None = None) -> tuple[str, bool] | None:
    """The override behind a problem at ``path``: (how it was given, whether it alone is the
    cause: it set that place, or created it); None when the recipe file alone is at fault."""
    for item in reversed(overrides):   # the last override of a key is the one that holds
        key = item.split("=", 1)[0].strip()
        for p in {path, _stage_free(path)}:
            if p == key or p.startswith((key + ".", key + "[")):
                return given_as(item), True
    for item in reversed(overrides):
        key = item.split("=", 1)[0].strip()
        if path and key.startswith(path + "."):
            return given_as(item), file_tree is not None and not _in_tree(file_tree, path)
    return None


def attribute_to_overrides(problems: list[Problem], overrides: list[str],
                           file_tree: dict | None = None) -> tuple[list[Problem], bool]:
    """Problems that an override caused say so; also whether every problem came from one.
    ``file_tree`` is the recipe before the overrides (to tell a key an override created)."""
    out, all_given = [], bool(problems)
    for p in problems:
        found = override_of(p.path, overrides, file_tree)
        if found is None:
            all_given = False
            out.append(p)
            continue
        given, exact = found
        all_given = all_given and exact
        note = f"given by {given}, not by the recipe file" if exact else f"with {given}"
        out.append(Problem(p.path, f"{p.message} ({note})"))
    return out, all_given
