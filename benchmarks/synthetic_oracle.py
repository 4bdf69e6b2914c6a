"""An upper bound on UAR per missing condition for the `synthetic` dataset.

The synthetic generator gives each modality a blurred view of a 2-d (arousal, valence)
affect vector; class information lives only there. A classifier that saw those views
directly (before the non-linear mixing and the added noise) and knew the generator is
Bayes-optimal; its UAR per condition bounds what ANY method — zero-filling, imputation,
reconstruction — can reach, since a missing modality's class information is, at best,
what the present views already contain. Monte Carlo, exact LDA posteriors. UAR (mean recall)
is maximised by the rule that ignores the class priors (argmax of the class likelihood);
accuracy (WAR) by the rule that uses them. Both are printed; the UAR bound is the one to read
against UAR tables. The dataset reports the UAR bound in closed form (``Synthetic.bayes_bound``,
printed last); this Monte Carlo is the independent check of it.

    python benchmarks/synthetic_oracle.py [--samples 200000]
"""
from __future__ import annotations

import argparse
import itertools

import numpy as np

from mmtk_basic.synthetic import BLUR, CENTRES, CLASS_SHARES, Synthetic


def oracle_uar(present: tuple[str, ...], n: int, separation: float, rng: np.random.Generator,
               use_priors: bool = False) -> float:
    """UAR of the Bayes rule on the present views; ``use_priors``: the accuracy-optimal rule
    (argmax posterior) instead of the UAR-optimal one (argmax likelihood)."""
    centres = np.array(CENTRES) * separation
    prior = np.array(CLASS_SHARES)
    y = rng.choice(len(prior), size=n, p=prior)
    affect = centres[y] + rng.normal(size=(n, 2))
    blur = np.array([BLUR[m] for m in present])                    # (S, 2)
    views = affect[:, None, :] + blur[None] * rng.normal(size=(n, len(present), 2))
    scores = (np.log(prior) if use_priors else np.zeros(len(prior)))[None, :].repeat(n, 0)
    for k in range(2):                                              # axes are independent
        cov = np.ones((len(present), len(present))) + np.diag(blur[:, k] ** 2)
        inv = np.linalg.inv(cov)
        for c in range(len(prior)):
            d = views[:, :, k] - centres[c, k]
            scores[:, c] -= 0.5 * np.einsum("ni,ij,nj->n", d, inv, d)
    pred = scores.argmax(1)
    recalls = [(pred[y == c] == c).mean() for c in range(len(prior))]
    return float(np.mean(recalls))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=200000)
    args = ap.parse_args()
    separation = Synthetic().separation
    mods = ("audio", "text", "visual")
    for use_priors, label in ((False, "UAR-optimal rule (no priors)"), (True, "accuracy-optimal rule (priors)")):
        rng = np.random.default_rng(0)
        rows = {}
        for k in (1, 2, 3):
            for subset in itertools.combinations(mods, k):
                code = "".join(m[0] for m in subset)
                rows[code] = oracle_uar(subset, args.samples, separation, rng, use_priors)
        six = [c for c in rows if len(c) < 3]
        rows["mean"] = float(np.mean([rows[c] for c in six]))
        print(f"UAR (%) of the {label}")
        print("| " + " | ".join(rows) + " |")
        print("|" + "---|" * len(rows))
        print("| " + " | ".join(f"{100 * v:.2f}" for v in rows.values()) + " |")
    closed = Synthetic().bayes_bound()
    print("UAR (%) of the UAR-optimal rule, closed form (what the dataset reports)")
    print("| " + " | ".join(f"{100 * closed[c]:.2f}" for c in rows) + " |")


if __name__ == "__main__":
    main()
