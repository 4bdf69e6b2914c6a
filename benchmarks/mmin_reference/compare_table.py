"""Per-condition test WA / UA of MMIN's own code and of mmtk runs, as one Markdown table.

    python benchmarks/mmin_reference/compare_table.py [--reference NAME=OUT_DIR ...]
        [--mmtk NAME=RUN_DIR ...]

OUT_DIR is a run_reference.sh output folder (it reads the fold-1 row of
logs/mmin_IEMOCAP_block_5_run1/results/result_<condition>.tsv); RUN_DIR an mmtk run folder
(every trial's test metrics, averaged over the trials, i.e. the seeds). The mean is the mean
of the six per-condition figures, as papers report it.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

# mmtk's condition codes and the reference's (a/v/l availability, z = zero-filled)
CONDITIONS = {"a": "azz", "v": "zvz", "t": "zzl", "av": "avz", "at": "azl", "tv": "zvl"}
RESULTS = Path("logs/mmin_IEMOCAP_block_5_run1/results")


def reference_rates(out_dir: Path) -> dict[str, tuple[float, float]]:
    rates = {}
    for ours, theirs in CONDITIONS.items():
        lines = (out_dir / RESULTS / f"result_{theirs}.tsv").read_text().splitlines()
        acc, uar, _ = (float(v) for v in lines[1].split("\t"))   # row 1 = fold 1
        rates[ours] = (100 * acc, 100 * uar)
    return rates


def mmtk_rates(run_dir: Path) -> dict[str, tuple[float, float]]:
    trials = sorted(run_dir.glob("trials/*/metrics.json"))
    if not trials:
        raise SystemExit(f"no trials/*/metrics.json under {run_dir}")
    tests = [json.loads(p.read_text())["test"] for p in trials]
    return {c: (100 * sum(t[c]["war"] for t in tests) / len(tests),
                100 * sum(t[c]["uar"] for t in tests) / len(tests)) for c in CONDITIONS}


def table(rows: dict[str, dict[str, tuple[float, float]]]) -> str:
    head = "| run | " + " | ".join(CONDITIONS) + " | mean |"
    lines = [head, "|" + "---|" * (len(CONDITIONS) + 2)]
    for name, rates in rows.items():
        cells = [f"{rates[c][0]:.1f} / {rates[c][1]:.1f}" for c in CONDITIONS]
        wa = sum(rates[c][0] for c in CONDITIONS) / len(CONDITIONS)
        ua = sum(rates[c][1] for c in CONDITIONS) / len(CONDITIONS)
        lines.append(f"| {name} | " + " | ".join(cells) + f" | **{wa:.1f} / {ua:.1f}** |")
    return "\n".join(lines)


def named(spec: str) -> tuple[str, Path]:
    name, _, path = spec.partition("=")
    if not path:
        raise SystemExit(f"expected NAME=PATH, got {spec!r}")
    return name, Path(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reference", action="append", default=[], type=named)
    ap.add_argument("--mmtk", action="append", default=[], type=named)
    args = ap.parse_args()
    rows = {name: reference_rates(p) for name, p in args.reference}
    rows.update({name: mmtk_rates(p) for name, p in args.mmtk})
    print("test WA / UA (%) per condition, fold 1\n")
    print(table(rows))


if __name__ == "__main__":
    main()
