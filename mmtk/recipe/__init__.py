"""Recipes: YAML files naming registry entries, resolved once into a typed :class:`Recipe`.

``resolve(path_or_mapping, plugin_system, overrides)`` is the only way in: it reads the file
(:mod:`.loading`: YAML 1.2 scalars, duplicate keys refused, ``extends``, ``--set``,
``${env:NAME}``), fills the defaults (core defaults are the dataclass fields of
:mod:`.sections`; component defaults come from plugins), checks everything at once
(:mod:`.checks`) and returns the dataclasses. Consumers never read recipe dicts.
"""
from .loading import apply_overrides, deep_merge, parse_value, parse_yaml, read_recipe_tree, set_path
from .resolve import Report, check, plugin_defaults, resolve
from .sections import (
                       SCHEMA_VERSION,
                       Component,
                       Data,
                       Eval,
                       InitFrom,
                       Losses,
                       Missing,
                       Model,
                       Output,
                       Recipe,
                       Stage,
                       Train,
)

__all__ = ["Component", "Data", "Eval", "InitFrom", "Losses", "Missing", "Model", "Output", "Recipe",
           "Report", "SCHEMA_VERSION", "Stage", "Train", "apply_overrides", "check", "deep_merge",
           "parse_value", "parse_yaml", "plugin_defaults", "read_recipe_tree", "resolve", "set_path"]
