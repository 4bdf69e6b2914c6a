"""Everything a tuning process builds before its first trial: the study's definition (from the
command line, checked), its folder, its storage and the per-trial recipe maker."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .engine import TuneError, require_optuna
from .objective import TrialSetup
from .recipe_values import check_space, overrides_for
from .space import load_space, parse_space
from .storage import open_storage
from .study import open_study


@dataclass
class OpenedStudy:
    optuna: Any
    storage: Any
    study: Any
    definition: dict
    setup: TrialSetup
    folder: Path
    system: Any


def base_recipe(definition: dict, system: Any, extra: tuple[str, ...] | list[str] = ()) -> Any:
    """The study's recipe (with ``extra`` overrides), resolved and checked."""
    from ..recipe import resolve

    return resolve(definition["tree"], system, list(definition["overrides"]) + list(extra),
                   base_dir=definition["base_dir"])


def tune_folder(recipe: Any, name: str) -> Path:
    return Path(recipe.output.dir) / recipe.name / f"tune-{name}"


DEFAULTS = {"sampler": "tpe", "pruner": "median", "prune_after": 5}


def search_settings(given: dict, tune: Any) -> tuple[dict, dict]:
    """(sampler, pruner) specs: the command line's value, else the recipe's ``tune:``, else
    the default."""
    def pick(key: str) -> Any:
        if given.get(key) is not None:
            return given[key]
        from_recipe = getattr(tune, key, None) if tune is not None else None
        return DEFAULTS[key] if from_recipe is None else from_recipe

    return ({"type": pick("sampler"), "seed": given.get("sampler_seed", 0)},
            {"type": pick("pruner"), "startup_trials": pick("prune_after")})


def _space_of(space_file: str | None, base: Any) -> tuple[list, dict, str]:
    """(parameters, mapping, where they come from): the file, else the recipe's tune.space."""
    if space_file is not None:
        params, raw = load_space(space_file)
        return params, raw, str(Path(space_file).resolve())
    raw = base.tune.space if base.tune is not None else None
    if not raw:
        raise TuneError("mmtk tune needs a search space: --space FILE.yaml, or a tune.space section "
                        f"in the recipe {base.source or ''} (see mmtk tune --help)")
    where = f"the tune.space section of {base.source}"
    return parse_space(raw, where), raw, where


def build_definition(source: str, overrides: list[str], space_file: str | None, system: Any,
                     given: dict) -> tuple[dict, Any]:
    """The study's definition from the command line (``given``: sampler, sampler_seed, pruner,
    prune_after, None where not given) and the recipe's ``tune:``, every space key checked
    against the recipe (nothing trains before this passes). Returns it and the base recipe."""
    from ..builder import Builder
    from ..recipe import apply_overrides, check
    from ..recipe.loading import find_recipe, read_recipe_tree

    named = {name: entry.path for name, entry in system.recipes.items()}
    path = find_recipe(source, named)
    tree = read_recipe_tree(path, named)
    tree.setdefault("name", path.stem)
    definition: dict = {"tree": tree, "base_dir": str(path.parent), "recipe": str(path),
                        "overrides": list(overrides)}
    base = base_recipe(definition, system)
    params, raw, where = _space_of(space_file, base)
    sampler, pruner = search_settings(given, base.tune)
    # the study is defined by the space and settings, not by how the recipe's tune: wrote them
    # (so a new tune.trials continues the same study); trials never read that section
    tree.pop("tune", None)
    monitor = base.last_stage.train.monitor
    metric = Builder(system.registry).metrics(base.eval.metrics)[monitor]
    definition.update(space=raw, space_file=where, monitor=monitor, sampler=sampler, pruner=pruner,
                      direction="maximize" if metric.higher_is_better else "minimize")

    def problems(extra: list[str]) -> list[str]:
        report = check(tree, system, list(overrides) + extra, base_dir=path.parent)
        return [str(p) for p in report.problems]

    check_space(params, where, problems, apply_overrides(tree, list(overrides)))
    return definition, base


def trial_setup(definition: dict, system: Any, folder: Path, device: str | None) -> TrialSetup:
    from ..recipe import apply_overrides

    params = parse_space(definition["space"], definition["space_file"])
    base_tree = apply_overrides(definition["tree"], list(definition["overrides"]))

    def make_recipe(values: dict) -> Any:
        return base_recipe(definition, system, overrides_for(params, values, base_tree))

    return TrialSetup(params, make_recipe, system.registry, system, folder / "trials",
                      definition["monitor"], device)


def open_shared_study(url: str, name: str, folder: Path | None, device: str | None,
                      plugins_dir: str | None, worker: int = 0, system: Any = None) -> OpenedStudy:
    """An existing study (a ``--jobs`` worker, or ``--join``): everything from its storage."""
    from .workers import make_pruner, make_sampler

    optuna = require_optuna()
    if system is None:
        from ..plugins import load_plugins
        system = load_plugins(plugins_dir=plugins_dir)
    storage = open_storage(url, optuna)
    study, definition, _ = open_study(optuna, storage, url, name, None, None, None, None)
    if "tree" not in definition or "space" not in definition:
        raise TuneError(f"study '{name}' has an incomplete stored definition; it cannot be joined")
    study.sampler = make_sampler(optuna, definition["sampler"], worker, len(study.trials))
    study.pruner = make_pruner(optuna, definition["pruner"])
    folder = folder or tune_folder(base_recipe(definition, system), name)
    return OpenedStudy(optuna, storage, study, definition, trial_setup(definition, system, folder, device),
                       folder, system)
