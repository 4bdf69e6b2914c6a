"""Regression imputation of absent modalities' input features, fitted before training.

The classical "impute, then classify" baseline with the simplest imputer that can use a pool of
unlabelled complete recordings: one ridge regression per observed/absent pattern, in closed
form, on the normalised input features. It is an :class:`mmtk.InputImputer`: the core fits it
on the training split once per stage and runs it on every batch before the encoders, so the
network trains and is evaluated on the same imputed inputs.
"""
from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Literal

import torch
from torch import Tensor

from mmtk import InputImputer, MmtkError, ModalityBatch, TensorData

from .impute import utterance_features
from .limits import RidgeStrength

# candidate ridge strengths (λ / n, n = fitted samples) for generalised cross-validation
GCV_GRID = torch.logspace(-4, 3, 36, dtype=torch.float64)


def ridge_fit(x: Tensor, y: Tensor, strength: float | None) -> tuple[Tensor, Tensor, Tensor, float]:
    """(coefficients, x mean, y mean, λ / n) of a multi-output ridge regression with an
    intercept, in float64; ``strength`` None: λ by generalised cross-validation."""
    n = x.shape[0]
    x_mean, y_mean = x.mean(0), y.mean(0)
    xc, yc = x - x_mean, y - y_mean
    u, s, vt = torch.linalg.svd(xc, full_matrices=False)
    uty = u.T @ yc
    outside = float((yc ** 2).sum() - (uty ** 2).sum())   # the part of y no λ can fit
    best_gcv, best = float("inf"), float(GCV_GRID[0])
    for rel in (GCV_GRID.tolist() if strength is None else [strength]):
        shrink = s ** 2 / (s ** 2 + rel * n)
        rss = outside + float((((1 - shrink)[:, None] * uty) ** 2).sum())
        gcv = n * rss / max(n - float(shrink.sum()), 1e-9) ** 2
        if gcv < best_gcv:
            best_gcv, best = gcv, rel
    coef = vt.T @ ((s / (s ** 2 + best * n))[:, None] * uty)
    return coef, x_mean, y_mean, best


class RidgeImpute(InputImputer):
    """Regression imputation: absent input features predicted from the observed ones by ridge.

    For every pattern of observed modalities (each non-empty proper subset) one ridge
    regression from their features to the absent modalities' features, fitted in closed form
    before training on the complete training samples, the unlabelled pool included (the point:
    cross-modal structure learnt from unlabelled recordings); the ridge strength of each pattern
    by generalised cross-validation on the same samples unless fixed. At training and at test
    time an absent modality's features are the regression's prediction and the encoders see
    every modality. Frame sequences are mean-pooled to predict from, and a predicted modality
    repeats its predicted feature vector over its frames. No learnable parameter; the fitted
    regressions are saved with the model.

    Parameters:
        unlabeled: fit on the unlabelled training samples too; false = the complete labelled
            training samples only (what a method without the pool could do)
        ridge: ridge strength λ as a multiple of the fitted sample count (λ / n); null = chosen
            per pattern by generalised cross-validation over 1e-4 … 1e3
        fit_on: complete = each pattern's regression on the complete samples only; available =
            one regression per pattern and absent modality, on every sample that has both (for
            data where few samples are complete, e.g. many views missing at random)
    """

    def __init__(self, in_dims: dict[str, int], modalities: tuple[str, ...], unlabeled: bool = True,
                 ridge: RidgeStrength | None = None, fit_on: Literal["complete", "available"] = "complete"):
        super().__init__()
        self.modalities = tuple(modalities)
        missing = [m for m in self.modalities if m not in in_dims]
        if missing:
            raise MmtkError(f"reconstructor 'ridge_impute': no input size known for modalities {missing} "
                            f"(in_dims has {sorted(in_dims)})")
        self.dims = {m: int(in_dims[m]) for m in self.modalities}
        self.unlabeled, self.ridge, self.fit_on = unlabeled, ridge, fit_on
        self.patterns = [obs for k in range(1, len(self.modalities))
                         for obs in itertools.combinations(self.modalities, k)]
        for i, observed in enumerate(self.patterns):
            p = sum(self.dims[m] for m in observed)
            q = sum(self.dims[m] for m in self.modalities if m not in observed)
            self.register_buffer(f"coef_{i}", torch.zeros(p, q))
            self.register_buffer(f"x_mean_{i}", torch.zeros(p))
            self.register_buffer(f"y_mean_{i}", torch.zeros(q))
            self.register_buffer(f"strength_{i}", torch.zeros(()))
        self.register_buffer("fitted_on", torch.zeros((), dtype=torch.long))   # samples; 0 = not fitted
        # (P, M) which modalities each pattern observes; derived, so not saved with the model
        self.register_buffer("observes", torch.tensor([[m in obs for m in self.modalities] for obs in self.patterns]),
                             persistent=False)

    def fit(self, train: TensorData) -> None:
        present = train.present.cpu()
        allowed = torch.ones(len(train), dtype=torch.bool) if self.unlabeled else train.labeled.cpu()
        if self.fit_on == "available":
            self._fit_available(train, present, allowed)
            return
        idx = (present.all(1) & allowed).nonzero().flatten()
        if len(idx) < 2:
            which = "complete training samples" if self.unlabeled else "complete labelled training samples"
            raise MmtkError(f"reconstructor 'ridge_impute' needs at least 2 {which} to fit its regressions, "
                            f"the training split has {len(idx)} (fit_on: available also uses incomplete ones)")
        feats = self._features(train, idx)
        for i, observed in enumerate(self.patterns):
            absent = [m for m in self.modalities if m not in observed]
            coef, x_mean, y_mean, rel = ridge_fit(torch.cat([feats[m] for m in observed], 1),
                                                  torch.cat([feats[m] for m in absent], 1), self.ridge)
            self._store(i, coef, x_mean, y_mean, rel)
        self.fitted_on.fill_(len(idx))

    def _fit_available(self, train: TensorData, present: Tensor, allowed: Tensor) -> None:
        """One regression per (pattern, absent modality), each on every sample that has the
        pattern's modalities and that one; a pair with fewer than 2 such samples keeps the zero
        fill (the training mean of standardised features)."""
        idx = (allowed & (present.sum(1) >= 2)).nonzero().flatten()
        feats, present = self._features(train, idx), present[idx]
        fitted = 0
        for i, observed in enumerate(self.patterns):
            cols = [self.modalities.index(m) for m in observed]
            base = present[:, cols].all(1)
            x = torch.cat([feats[m] for m in observed], 1)
            x_center = x[base].mean(0) if bool(base.any()) else torch.zeros(x.shape[1], dtype=x.dtype)
            coefs, y_means, strengths = [], [], []
            for m in self.modalities:
                if m in observed:
                    continue
                rows = base & present[:, self.modalities.index(m)]
                if int(rows.sum()) < 2:
                    coefs.append(torch.zeros(x.shape[1], self.dims[m], dtype=x.dtype))
                    y_means.append(torch.zeros(self.dims[m], dtype=x.dtype))
                    continue
                coef, x_mean, y_mean, rel = ridge_fit(x[rows], feats[m][rows], self.ridge)
                coefs.append(coef)
                y_means.append(y_mean + (x_center - x_mean) @ coef)   # the same centre for every target
                strengths.append(rel)
                fitted += 1
            self._store(i, torch.cat(coefs, 1), x_center, torch.cat(y_means),
                        sum(strengths) / len(strengths) if strengths else 0.0)
        if fitted == 0:
            raise MmtkError("reconstructor 'ridge_impute' (fit_on: available) found no modality that at least "
                            "2 training samples share with another one: there is nothing to regress")
        self.fitted_on.fill_(len(idx))

    def _features(self, train: TensorData, idx: Tensor) -> dict[str, Tensor]:
        return {m: utterance_features(self._rows(train.inputs[m], idx).double(),
                                      self._rows(train.lengths[m], idx) if m in train.lengths else None)
                for m in self.modalities}

    def _store(self, i: int, coef: Tensor, x_mean: Tensor, y_mean: Tensor, strength: float) -> None:
        getattr(self, f"coef_{i}").copy_(coef)
        getattr(self, f"x_mean_{i}").copy_(x_mean)
        getattr(self, f"y_mean_{i}").copy_(y_mean)
        getattr(self, f"strength_{i}").fill_(strength)

    @staticmethod
    def _rows(x: Tensor, idx: Tensor) -> Tensor:
        """Rows ``idx`` on the host, of a tensor on any device or of memory-mapped features."""
        return (x[idx.to(x.device)] if isinstance(x, Tensor) else x[idx]).cpu()

    def impute(self, batch: ModalityBatch) -> ModalityBatch:
        present = batch.present
        inputs = dict(batch.inputs)
        pooled = {m: utterance_features(inputs[m], batch.lengths.get(m)) for m in self.modalities}
        filled = present.clone()
        for i, observed in enumerate(self.patterns):
            rows = (present == self.observes[i]).all(1)
            if not bool(rows.any()):
                continue
            x = torch.cat([pooled[m][rows] for m in observed], 1).to(getattr(self, f"coef_{i}").dtype)
            guess = (x - getattr(self, f"x_mean_{i}")) @ getattr(self, f"coef_{i}") + getattr(self, f"y_mean_{i}")
            start = 0
            for m in self.modalities:
                if m in observed:
                    continue
                vec = guess[:, start:start + self.dims[m]].to(inputs[m].dtype)
                start += self.dims[m]
                x_m = inputs[m].clone() if inputs[m] is batch.inputs[m] else inputs[m]
                x_m[rows] = vec if x_m.dim() == 2 else vec[:, None, :].expand(-1, x_m.shape[1], -1)
                inputs[m] = x_m
            filled[rows] = True
        return replace(batch, inputs=inputs, present=filled)
