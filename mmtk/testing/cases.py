"""Selecting and running contract cases: one per check of each component of the chosen plugins,
plus one ``load`` case per plugin."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import MmtkError
from ..registry import ComponentSpec
from . import kind_checks as k
from . import label_checks as u
from . import model_checks as m
from .common import CHECKS, ContractSkip, NoGradient


@dataclass(frozen=True)
class Case:
    """One check of one component, or the ``load`` check of one plugin."""

    check: str
    plugin: str
    spec: ComponentSpec | None = None
    problem: str | None = None  # why the plugin cannot be tested (``load`` cases)

    @property
    def id(self) -> str:
        if self.spec is None:
            return f"plugin/{self.plugin}::{self.check}"
        return f"{self.spec.kind}/{self.spec.qualified_name}::{self.check}"


# -- selecting what to test ----------------------------------------------------------------
def contract_cases(*plugins: str, distribution: str | None = None,
                   system: Any = None) -> list[Case]:
    """The cases for the named plugins (or those of ``distribution``; or every plugin)."""
    if system is None:
        from ..plugins import load_plugins
        system = load_plugins()
    statuses = system.statuses
    if plugins:
        chosen = list(dict.fromkeys(plugins))
    elif distribution is not None:
        chosen = [n for n, s in statuses.items() if s.distribution == distribution]
        if not chosen:
            return [Case("load", distribution, problem=f"no installed plugin comes from the "
                         f"distribution '{distribution}'; is it installed in this environment?")]
    else:
        chosen = list(statuses)
    cases = []
    for name in chosen:
        status = statuses.get(name)
        if status is None:
            cases.append(Case("load", name, problem=f"no plugin named '{name}' is installed "
                              f"(installed: {', '.join(sorted(statuses)) or 'none'}); check the "
                              "entry point in your pyproject.toml and reinstall the package"))
        elif status.status != "ok":
            why = (status.error if status.status == "failed"
                   else "it is disabled by MMTK_LOAD_PLUGINS/MMTK_DISABLE_PLUGINS")
            cases.append(Case("load", name, problem=f"plugin '{name}' ({status.source}) "
                              f"{'failed to load' if status.status == 'failed' else 'did not load'}: {why}"))
        else:
            cases.append(Case("load", name))
            for spec in system.registry.list():
                if spec.provider.plugin == name:
                    cases += [Case(check, name, spec) for check in ("parameter_docs",) + CHECKS.get(spec.kind, ())]
    return cases


def contract_test(*plugins: str, distribution: str | None = None,
                  allow_no_gradient: NoGradient | None = None, system: Any = None) -> Callable:
    """A pytest test function parametrized over the components of ``plugins``; assign it to
    a ``test_*`` name in a test module. See the module docstring."""
    import pytest

    if system is None:
        from ..plugins import load_plugins
        system = load_plugins()
    allow = _checked_allowance(allow_no_gradient or {}, system)
    cases = contract_cases(*plugins, distribution=distribution, system=system)

    @pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in cases])
    def test_contract(case: Case, tmp_path: Path) -> None:
        try:
            run_case(case, tmp_path, system, allow)
        except ContractSkip as skip:
            pytest.skip(str(skip))

    return test_contract


def _checked_allowance(allow: NoGradient, system: Any) -> dict[str, dict[str, str]]:
    known = {f"{s.kind}/{s.qualified_name}" for s in system.registry.list()}
    for key, prefixes in allow.items():
        if key not in known:
            raise MmtkError(f"allow_no_gradient names '{key}', which is not a registered component; "
                            "write 'kind/provider:name', e.g. 'reconstructor/myplugin:distill'")
        for prefix, reason in prefixes.items():
            if not isinstance(reason, str) or not reason.strip():
                raise MmtkError(f"allow_no_gradient['{key}']['{prefix}'] needs a reason: say why "
                                "these parameters get no gradient in a training step")
    return {k: dict(v) for k, v in allow.items()}


# -- running one case ----------------------------------------------------------------------
def run_case(case: Case, workdir: Path, system: Any, allow_no_gradient: NoGradient = {}) -> None:
    """Run one check; raises AssertionError naming what is wrong, or :class:`ContractSkip`."""
    if case.check == "load":
        assert case.problem is None, case.problem
        return
    spec = case.spec
    checker = _CHECKERS[case.check]
    try:
        checker(spec, Path(workdir), system, allow_no_gradient)
    except (AssertionError, MmtkError) as exc:  # an MmtkError here is mmtk naming the fault
        raise AssertionError(f"{spec.kind} '{spec.qualified_name}' ({spec.provider}) fails "
                             f"'{case.check}': {exc}") from exc


_CHECKERS: dict[str, Callable[[ComponentSpec, Path, Any, NoGradient], None]] = {
    "train_step": m.check_train_step, "absent_modality": m.check_absent_modality,
    "encoder_output": m.check_encoder_output, "padding": m.check_padding, "loss": k.check_loss,
    "metric": k.check_metric, "optimizer": k.check_optimizer, "scheduler": k.check_scheduler,
    "protocol": k.check_protocol, "dataset": k.check_dataset, "parameter_docs": k.check_parameter_docs,
    "unlabelled": u.check_unlabelled, "input_imputer": m.check_input_imputer,
}
