"""mmtk compare: one protocol, one table; refusals name the differing field; failures reported."""
from __future__ import annotations

import json

import pytest

from conftest import RECIPES
from mmtk.cli import main
from mmtk.compare import Entry, check_same_protocol
from mmtk.errors import MmtkError


def test_refuses_different_protocols(system, tmp_path):
    from mmtk.recipe import resolve
    a = resolve(RECIPES / "baseline.yaml", system)
    b = resolve(RECIPES / "baseline.yaml", system, ["data.n_samples=500"])
    with pytest.raises(MmtkError, match=r"differ in data.n_samples \(3000 vs 500\)"):
        check_same_protocol([Entry("a.yaml", a, "a"), Entry("b.yaml", b, "b")], system.registry)
    c = resolve(RECIPES / "baseline.yaml", system, ["missing.eval={type: fixed, condition: at}"])
    with pytest.raises(MmtkError, match="missing.eval.type"):
        check_same_protocol([Entry("a.yaml", a, "a"), Entry("c.yaml", c, "c")], system.registry)


@pytest.mark.slow
def test_compare_runs_reuses_and_reports_failures(tmp_path, capsys):
    other = tmp_path / "small-head.yaml"
    other.write_text(f"extends: {RECIPES / 'baseline.yaml'}\nname: small-head\n"
                     "model:\n  head: {type: mlp, hidden: [16]}\n")
    broken = tmp_path / "broken.yaml"
    broken.write_text(f"extends: {RECIPES / 'baseline.yaml'}\nname: broken\n"
                      "train:\n  optimizer: {type: adam, lr: 1.0e+30}\n  grad_clip: null\n")
    common = ["--set", "train.epochs=1", "--set", "data.n_samples=200", "--set", f"output.dir={tmp_path / 'runs'}",
              "--seeds", "0", "1"]
    code = main(["compare", str(RECIPES / "baseline.yaml"), str(other), str(broken), "--jobs", "2", "--json", *common])
    out = json.loads(capsys.readouterr().out)
    assert code == 1                                          # one run failed ...
    assert out["runs"]["broken"]["error"] and "non-finite loss" in out["runs"]["broken"]["error"]
    assert out["runs"]["small-head"]["summary"]["test"]["mean"]["uar"]["n"] == 2   # ... the others finished
    table = (tmp_path / "runs").glob("compare/*/comparison.md")
    text = next(table).read_text()
    assert "| baseline |" in text and "| small-head |" in text and "failed" in text
    first_dir = out["runs"]["baseline"]["directory"]
    assert main(["compare", str(RECIPES / "baseline.yaml"), str(other), "--json", *common]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["runs"]["baseline"]["directory"] == first_dir   # finished run reused, not redone
