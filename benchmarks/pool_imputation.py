"""Would a reconstruction learned from the unlabelled pool beat modality dropout? (#15 §4)

A diagnostic of the default benchmark's headroom, between the reference and the oracle: each
trial of a finished run (e.g. ``mmtk run modality-dropout --seeds 0 1 2 3 4``) is evaluated
again, its network unchanged, with every missing modality *imputed* instead of zero-filled
and then shown to the network as present. The imputer is a ridge regression from the observed
modalities' features (standardised, as the network sees them) to the missing ones, one per
observed/missing pattern, fitted in closed form on complete training samples only (the ridge
strength by generalised cross-validation on those samples; no label, validation or test
sample is read): the ``ridge_impute`` component of ``recipes/ridge-impute.yaml`` itself.

- ``ridge (pool)``: every complete training sample, the unlabelled pool included;
- ``ridge (labelled)``: the complete labelled training samples alone (what a method that cannot
  use the pool has);
- ``oracle``: the true features of the missing modalities (the headroom script's oracle
  reconstruction, per condition).

The first rows reproduce the run's own six-condition scores from its model (checked against
its kept predictions, prediction for prediction). Every variant is compared with the run's
zero-filled scores by the paired t-test over seeds that ``mmtk compare`` uses when each seed
has its own test set, Holm-adjusted over all comparisons printed; with ``--against RUN`` every
variant is compared with another method's run on the same seeds and test sets instead (e.g.
CM-ARR's, whose reconstruction is learned from the same pool).

    mmtk run modality-dropout --seeds 0 1 2 3 4 --jobs 2
    mmtk run cmarr --seeds 0 1 2 3 4 --jobs 2
    python benchmarks/pool_imputation.py runs/modality-dropout/<time> [--against runs/cmarr/<time>] --out OUT
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from mmtk.data import TensorData
from mmtk.errors import MmtkError
from mmtk.plugins import load_plugins
from mmtk.predictions import FILE as PREDICTIONS
from mmtk.predictions import load_predictions
from mmtk.recipe import resolve
from mmtk.rundir import read_json
from mmtk.stats import holm, t_interval, t_test_p
from mmtk.trial_model import rebuild_trial
from mmtk_baselines.ridge_impute import RidgeImpute

METRIC = "uar"


def fitted_imputer(train: TensorData, in_dims: dict[str, int], unlabeled: bool) -> RidgeImpute:
    """The ``ridge_impute`` component itself (the recipe ``ridge-impute``'s imputer), fitted on
    the complete training samples, the unlabelled ones included or not."""
    imputer = RidgeImpute(in_dims, train.modalities, unlabeled=unlabeled)
    imputer.fit(train)
    return imputer


def imputed_inputs(test: TensorData, shown: np.ndarray, imputer: RidgeImpute | None) -> TensorData:
    """The test split with every sample's hidden modalities filled in by ``imputer`` (None: the
    true features, the oracle) and every modality marked present."""
    inputs = dict(test.inputs)
    if imputer is not None:
        batch = test.batch(torch.arange(len(test))).masked(torch.as_tensor(shown))
        inputs = dict(imputer.impute(batch).inputs)
    return replace(test, inputs=inputs, present=torch.ones_like(test.present))


def trial_scores(recipe, registry, trial_dir: Path) -> dict[str, dict[str, float]]:
    """{variant: {condition: UAR}} of one trial (variants: as run, ridge (pool), ridge
    (labelled), oracle), with the run's own predictions reproduced first."""
    trial = rebuild_trial(recipe, registry, trial_dir)
    kept = load_predictions(trial_dir / PREDICTIONS).splits["test"]
    train, test = trial.splits.train, trial.splits.test
    fits = {"ridge (pool)": fitted_imputer(train, trial.splits.in_dims, unlabeled=True),
            "ridge (labelled)": fitted_imputer(train, trial.splits.in_dims, unlabeled=False),
            "oracle": None}
    ev, model = trial.evaluator, trial.model
    out: dict[str, dict[str, float]] = {"as run (zero-filled)": {}, **{v: {} for v in fits}}
    for c, cond in enumerate(kept.conditions):
        shown = kept.mask[c]
        mask = torch.as_tensor(shown)
        pred, prob = (t.cpu() for t in ev.outputs(model, test.to(trial.device), mask))
        if not np.array_equal(pred.numpy(), kept.pred[c]):
            raise MmtkError(f"{trial_dir}: the rebuilt model does not reproduce its kept predictions under "
                            f"{cond} ({int((pred.numpy() != kept.pred[c]).sum())} differ): the run is not "
                            "the one its files describe")
        scored = mask.any(1)
        out["as run (zero-filled)"][cond] = ev.score(pred, test, scored, prob)[METRIC]
        for variant, imputer in fits.items():
            data = imputed_inputs(test, shown, imputer)
            full = torch.ones_like(mask)
            pred, prob = (t.cpu() for t in ev.outputs(model, data.to(trial.device), full))
            out[variant][cond] = ev.score(pred, test, scored, prob)[METRIC]
    for scores in out.values():
        scores["mean"] = float(np.mean([scores[c] for c in kept.mean_over]))
    lams = {v: sorted({float(f"{float(getattr(f, f'strength_{i}')):.3g}") for i in range(len(f.patterns))})
            for v, f in fits.items() if f is not None}
    print(f"{trial_dir.name}: ridge strengths chosen (λ / n per pattern): {lams}", file=sys.stderr)
    return out


def run_scores(run_dir: Path, system) -> tuple[list[str], dict[str, dict[str, list[float]]], list[str]]:
    results = read_json(run_dir / "metrics.json", "results file")
    recipe = resolve(run_dir / "recipe.yaml", system)
    per_trial = [trial_scores(recipe, system.registry, run_dir / "trials" / key) for key in results["trials"]]
    conditions = list(per_trial[0]["as run (zero-filled)"])
    table = {v: {c: [t[v][c] for t in per_trial] for c in conditions} for v in per_trial[0]}
    return list(results["trials"]), table, conditions


def other_run_scores(run_dir: Path, keys: list[str], ids: dict[str, list[str]],
                     conditions: list[str]) -> dict[str, list[float]]:
    """Another run's own test scores per condition, trial by trial, on the same test samples."""
    results = read_json(run_dir / "metrics.json", "results file")
    out: dict[str, list[float]] = {c: [] for c in conditions}
    for key in keys:
        if key not in results.get("trials", {}):
            raise MmtkError(f"--against {run_dir} has no trial {key}; it needs the same seeds and folds")
        kept = load_predictions(run_dir / "trials" / key / PREDICTIONS).splits["test"]
        if kept.ids != ids[key]:
            raise MmtkError(f"--against {run_dir}: trial {key} was tested on other samples than the imputed run")
        for c in conditions:
            out[c].append(float(results["trials"][key]["test"][c][METRIC]))
    return out


def markdown(run_dir: Path, keys: list[str], table: dict, conditions: list[str],
             against: tuple[str, dict[str, list[float]]] | None = None) -> str:
    """The variants' scores, then each variant minus the run as it ran (or minus ``against``:
    (name, another run's scores on the same test sets))."""
    ref_name, ref = against or ("as run", table["as run (zero-filled)"])
    rows = {**table, **({f"{ref_name} (its own run)": ref} if against else {})}
    tests = []
    for variant in list(table)[0 if against else 1:]:
        for c in conditions:
            diff = np.array(table[variant][c]) - np.array(ref[c])
            tests.append((variant, c, diff.mean(), *t_interval(diff), t_test_p(diff)))
    adjusted = holm([t[-1] for t in tests])
    lines = [f"{run_dir} ({len(keys)} trials: {', '.join(keys)}); test {METRIC.upper()} (%), mean over trials; "
             f"below it each variant − {ref_name}, points, 95 % t CI over trials, p, Holm p over "
             f"the {len(tests)} comparisons (* < 0.05)", "",
             "| variant | " + " | ".join(conditions) + " |", "|---|" + "---|" * len(conditions)]
    for variant, row in rows.items():
        lines.append(f"| {variant} | " + " | ".join(f"{100 * np.mean(row[c]):.2f}" for c in conditions) + " |")
    lines += ["", f"| variant − {ref_name} | condition | difference | 95 % CI | p | p (Holm) |",
              "|---|---|---|---|---|---|"]
    for (variant, c, d, lo, hi, p), ph in zip(tests, adjusted):
        lines.append(f"| {variant} | {c} | {100 * d:+.2f}{' *' if ph < 0.05 else ''} | "
                     f"[{100 * lo:+.2f}, {100 * hi:+.2f}] | {p:.3f} | {ph:.3f} |")
    return "\n".join(lines) + "\n"


def report(run: Path, system, against: Path | None) -> str:
    keys, table, conditions = run_scores(run, system)
    if against is None:
        return markdown(run, keys, table, conditions)
    ids = {k: load_predictions(run / "trials" / k / PREDICTIONS).splits["test"].ids for k in keys}
    other = other_run_scores(against, keys, ids, conditions)
    name = read_json(against / "metrics.json", "results file").get("name", against.name)
    return markdown(run, keys, table, conditions, (str(name), other))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="finished run folders of latent_views recipes")
    ap.add_argument("--against", type=Path, help="another finished run on the same data and seeds (e.g. "
                    "cmarr): every variant, the run as it ran included, minus its own test scores")
    ap.add_argument("--out", type=Path, help="folder for pool-imputation.md (default: print only)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    system = load_plugins()
    text = "\n".join(report(run, system, args.against) for run in args.runs)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "pool-imputation.md").write_text(text, encoding="utf-8")
        print(f"wrote {args.out / 'pool-imputation.md'}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except MmtkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
