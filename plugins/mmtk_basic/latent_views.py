"""The ``latent_views`` dataset: synthetic multimodal data with controllable headroom and an
exact Bayes bound.

Every sample has a class ``y`` (balanced classes; the class centres ``mu_y`` are the
vertices of a regular simplex in ``K - 1`` dimensions, edge ``separation``). Modality ``m``
sees a *class view*

    v_m = mu_y + sqrt(rho) * e_shared + sqrt(1 - rho) * e_m + n_m / snr_m

(``e_shared``, ``e_m``, ``n_m`` independent standard normals in ``K - 1`` dimensions): the
within-class variation of the class signal is shared by every modality for ``rho = 1`` and
private to each for ``rho = 0``; ``n_m`` is the modality's own sensor noise. Its features
are ``x_m = warp(h_m @ Q_m)`` with ``h_m = [v_m, distractors, nuisance_m]``: a shared
class-irrelevant latent seen by every modality, private class-irrelevant dimensions that
fill the modality's width, a fixed random orthogonal mixing ``Q_m`` (seeded by data_seed)
and the elementwise ``warp(u) = asinh(w u) / w``. Mixing and warp are invertible
(:meth:`LatentViews.unmix`), so the Bayes rule on the features is the one on the views.

Within a class, the views of a set S of modalities are jointly Gaussian with covariance
``C_S (x) I`` where ``C_S = rho 11' + diag(1 - rho + 1 / snr_m^2)``: their sufficient
statistic is ``mu_y`` plus isotropic noise of variance ``tau_S^2 = 1 / (1' C_S^-1 1)``. The
UAR-optimal rule (class likelihood, priors ignored) is then the nearest class centre, and by
the simplex's symmetry every class has the recall ``E[Phi(a + Z)^(K - 1)]``, ``a =
separation / (sqrt(2) tau_S)``, ``Z ~ N(0, 1)``: a one-dimensional integral computed by
Gauss-Hermite quadrature (deterministic; error far below 1e-9), not by sampling.
"""
from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING, Literal

from mmtk import Dataset, MmtkError

from .bounds import subset_bounds
from .limits import ClassCount, NonNegative, NonNegativeInt, Positive, Probability, Seed, Size

DEFAULT_SNR = {"audio": 1.0, "text": 1.5, "visual": 0.7}   # other modality names: 1.0
QUADRATURE_NODES = 96   # Gauss-Hermite nodes: the integrand is smooth, 96 is exact to ~1e-12
STREAMS = ("labelled", "unlabelled", "val", "test", "mixing")   # each drawn from its own generator

if TYPE_CHECKING:
    import torch
    from torch import Tensor

    from mmtk import DataSplits, TensorData
# torch, numpy and the data classes are imported where samples or the bound are computed:
# building the dataset object (what `mmtk validate` does to learn its modalities) must not
# wait for them.


# The 4-class simplex (unit edge sqrt(2)) that every latent_views figure in the README was drawn
# with: the basis torch's LAPACK (MKL) returned for the sum-zero subspace on AVX2 / AVX-512 CPUs.
# That subspace's singular values are all equal, so every orthonormal basis of it is a correct
# SVD answer, and MKL's SSE4.2 path (other CPUs) returned a different one: the same recipe drew
# other samples on another machine. The rows are written out exactly (float64) so the default
# data are the same on every CPU; other class counts use the closed-form Helmert basis.
REFERENCE_SIMPLEX_4 = (
    (4.163336342344337e-17, -0.8660254037844388, -2.7755575615628914e-17),
    (-0.4510644871814077, 0.288675134594813, 0.6805934873846802),
    (0.8149434933160806, 0.2886751345948129, 0.05033656095175912),
    (-0.3638790061346729, 0.28867513459481287, -0.7309300483364392),
)


def helmert_simplex(k: int) -> list[list[float]]:
    """(k, k-1) coordinates of the centred corners ``e_i - 1/k`` in the Helmert basis of the
    sum-zero subspace, ``h_j = (1, ..., 1, -j, 0, ...) / sqrt(j (j + 1))``: closed form, no
    linear algebra library, the same numbers everywhere."""
    return [[(1.0 if i < j else -float(j) if i == j else 0.0) / math.sqrt(j * (j + 1)) for j in range(1, k)]
            for i in range(k)]


def simplex_centres(num_classes: int, edge: float) -> Tensor:
    """(K, K-1) vertices of a regular simplex centred at 0 with the given edge length."""
    import torch

    unit = REFERENCE_SIMPLEX_4 if num_classes == 4 else helmert_simplex(num_classes)
    return torch.tensor(unit, dtype=torch.float64) * (edge / math.sqrt(2))


def view_noise_variance(snr: list[float], rho: float) -> float:
    """tau_S^2: the within-class variance of the best combination of the views in S."""
    import numpy as np

    c = rho * np.ones((len(snr), len(snr))) + np.diag([1.0 - rho + 1.0 / s ** 2 for s in snr])
    return float(1.0 / np.linalg.solve(c, np.ones(len(snr))).sum())


def simplex_recall(edge: float, noise_variance: float, num_classes: int) -> float:
    """Per-class recall of the nearest centre rule for a regular simplex with isotropic
    Gaussian noise: E[Phi(a + Z)^(K-1)], a = edge / sqrt(2 noise_variance)."""
    import numpy as np

    a = edge / math.sqrt(2.0 * noise_variance)
    nodes, weights = np.polynomial.hermite_e.hermegauss(QUADRATURE_NODES)
    phi = np.array([0.5 * (1.0 + math.erf((a + z) / math.sqrt(2.0))) for z in nodes])
    return float((weights * phi ** (num_classes - 1)).sum() / math.sqrt(2.0 * math.pi))


def bayes_uar(modalities: tuple[str, ...], snr: dict[str, float], rho: float, separation: float,
              num_classes: int) -> dict[str, float]:
    """The UAR-optimal Bayes rate of every non-empty modality subset (by condition code), and
    ``mean``: their mean over the missing conditions (every non-empty proper subset)."""
    return subset_bounds(modalities, lambda present: simplex_recall(
        separation, view_noise_variance([snr[m] for m in present], rho), num_classes))


def sub_seed(seed: int, part: str, index: int = 0) -> int:
    """An independent stream per part (and modality), so e.g. the test set does not move with
    the label budget."""
    import numpy as np

    state = np.random.SeedSequence([seed, STREAMS.index(part), index]).generate_state(1, np.uint64)[0]
    return int(state >> 1)


def balanced_labels(n: int, num_classes: int, generator: torch.Generator) -> Tensor:
    """n labels, every class n // K or n // K + 1 times, in random order."""
    import torch

    labels = torch.arange(n) % num_classes
    return labels[torch.randperm(n, generator=generator)]


def incomplete_patterns(n: int, n_incomplete: int, num_modalities: int, generator: torch.Generator) -> Tensor:
    """(n, M) presence: n_incomplete random rows lose one or more (never all) modalities, the
    allowed patterns used in turn so that each appears about equally often."""
    import torch

    present = torch.ones(n, num_modalities, dtype=torch.bool)
    if n_incomplete == 0:
        return present
    patterns = torch.tensor([keep for keep in itertools.product([False, True], repeat=num_modalities)
                             if any(keep) and not all(keep)], dtype=torch.bool)
    rows = torch.randperm(n, generator=generator)[:n_incomplete]
    order = torch.randperm(n_incomplete, generator=generator)
    present[rows] = patterns[order % len(patterns)]
    return present


class LatentViews(Dataset):
    """Synthetic Gaussian class views: tunable headroom, exact Bayes bound.

    Modalities are named by dims; labelled training samples (classes balanced), an optional
    unlabelled pool (label -1), an optional generated validation set, and a large test set.
    The task (class geometry, mixing) is fixed by data_seed; the samples by sample_seed.
    The UAR-optimal Bayes bound of every condition goes into the splits' info
    (``bayes_bound``), and mmtk prints it with the results.

    Parameters:
        labels: labelled training samples (the label budget), classes balanced; fewer labels =
            more room for methods that learn from unlabelled or incomplete data. With n_val
            null the validation split is carved from these by the core (data.val_fraction)
        unlabeled: complete training samples without a label (label -1): cross-modal structure
            for methods whose losses need no label; no effect on the task loss
        complete_fraction: share of the labelled training samples that have every modality
            (exactly round(share * labels)); each of the others loses one or more modalities,
            never all, the patterns used about equally often; missing cells are zeros with
            present False. The unlabelled pool and the test set are always complete
        shared_signal: rho in [0, 1], how much of the class signal's within-class variation
            the modalities share: 0 = each modality carries its own private class signal
            (modalities complement each other, fusion gains most), 1 = one shared class latent
            seen by every modality (a missing view is predictable from the others)
        snr: signal-to-noise ratio per modality (keys = dims' keys): the view is the class
            latent plus sensor noise of std 1 / snr; larger = that modality alone is more
            informative (default audio 1.0, text 1.5, visual 0.7, any other name 1.0)
        separation: edge length of the simplex of class centres in units of the class
            latent's within-class std; larger = every condition is easier
        num_classes: number of classes (the class latent has num_classes - 1 dimensions)
        dims: feature width per modality, which also names the modalities (default audio 48,
            text 64, visual 40); must be at least num_classes - 1 + distractor_dims
        distractor_dims: dimensions of a class-irrelevant latent shared by every modality:
            cross-modal structure that does not help classification
        distractor_scale: std of the shared distractors (larger = they dominate what the
            modalities have in common)
        nuisance_scale: std of the private class-irrelevant dimensions that fill each
            modality's width (larger = the class signal is harder to find in the features)
        warp: strength w of the elementwise non-linearity asinh(w u) / w applied after the
            mixing (0 = purely linear features; larger = more curved class boundaries)
        n_val: generate this many labelled validation samples (drawn like the labelled
            training ones, incompleteness included) in addition to the label budget; null:
            the core carves validation from the labelled training samples
        n_test: complete test samples, classes balanced (large, so the test-sample error of a
            score is small)
        data_seed: seed of the task: the mixing of every modality
        sample_seed: seed of the samples; 'trial' (the default) ties them to the trial seed,
            so the seeds of a comparison also sample training and test variance
    """

    def __init__(self, labels: Size = 500, unlabeled: NonNegativeInt = 0, complete_fraction: Probability = 1.0,
                 shared_signal: Probability = 0.5, snr: dict[str, Positive] | None = None,
                 separation: Positive = 2.5, num_classes: ClassCount = 4,
                 dims: dict[str, Size] | None = None, distractor_dims: NonNegativeInt = 4,
                 distractor_scale: NonNegative = 1.0, nuisance_scale: NonNegative = 1.0,
                 warp: NonNegative = 1.0, n_val: Size | None = None, n_test: Size = 10000,
                 data_seed: Seed = 0, sample_seed: Seed | Literal["trial"] = "trial", seed: int = 0):
        self.labels, self.unlabeled, self.complete_fraction = labels, unlabeled, complete_fraction
        self.rho, self.separation, self.num_classes = shared_signal, separation, num_classes
        self.dims = dims or {"audio": 48, "text": 64, "visual": 40}
        self.snr = snr or {m: DEFAULT_SNR.get(m, 1.0) for m in self.dims}
        self.distractor_dims, self.distractor_scale = distractor_dims, distractor_scale
        self.nuisance_scale, self.warp = nuisance_scale, warp
        self.n_val, self.n_test, self.data_seed = n_val, n_test, data_seed
        self.sample_seed = seed if sample_seed == "trial" else sample_seed
        self._mixings: dict[str, Tensor] = {}
        self._check()

    def _check(self) -> None:
        where = "dataset 'latent_views'"
        if set(self.snr) != set(self.dims):
            raise MmtkError(f"{where}: snr names {sorted(self.snr)} but dims name {sorted(self.dims)}; "
                            "give one snr per modality of dims")
        narrow = {m: d for m, d in self.dims.items() if d < self.class_dims + self.distractor_dims}
        if narrow:
            raise MmtkError(f"{where}: dims {narrow} are narrower than the class latent plus the shared "
                            f"distractors ({self.class_dims} + {self.distractor_dims}); widen them or "
                            "lower num_classes / distractor_dims")
        if self.complete_fraction < 1 and len(self.dims) < 2:
            raise MmtkError(f"{where}: complete_fraction {self.complete_fraction} < 1 needs at least two "
                            "modalities (a sample never loses every modality)")

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(sorted(self.dims))

    @property
    def class_dims(self) -> int:
        return self.num_classes - 1

    def class_centres(self) -> Tensor:
        return simplex_centres(self.num_classes, self.separation).float()

    def mixing(self, modality: str) -> Tensor:
        """The fixed orthogonal (D, D) mixing of a modality, drawn from data_seed."""
        import torch

        if modality in self._mixings:
            return self._mixings[modality]
        g = torch.Generator().manual_seed(sub_seed(self.data_seed, "mixing", self.modalities.index(modality)))
        q, r = torch.linalg.qr(torch.randn(self.dims[modality], self.dims[modality], generator=g,
                                           dtype=torch.float64))
        self._mixings[modality] = (q * torch.sign(torch.diagonal(r))).float()   # sign fix: Haar-uniform
        return self._mixings[modality]

    def unmix(self, modality: str, x: Tensor) -> Tensor:
        """The latent h = [view, distractors, nuisance] behind features x (exact inverse)."""
        import torch

        u = x.double() if self.warp == 0 else torch.sinh(self.warp * x.double()) / self.warp
        return (u @ self.mixing(modality).double().T).float()

    def bayes_bound(self) -> dict[str, float]:
        return bayes_uar(self.modalities, self.snr, self.rho, self.separation, self.num_classes)

    def draw(self, labels: Tensor, present: Tensor, generator: torch.Generator) -> dict[str, Tensor]:
        """Features of samples with these classes; cells not present are zeros."""
        import torch

        n, d = len(labels), self.class_dims
        centres = self.class_centres()[labels]
        shared = torch.randn(n, d, generator=generator)
        distractors = self.distractor_scale * torch.randn(n, self.distractor_dims, generator=generator)
        inputs = {}
        for i, m in enumerate(self.modalities):
            private = torch.randn(n, d, generator=generator)
            sensor = torch.randn(n, d, generator=generator)
            view = centres + math.sqrt(self.rho) * shared + math.sqrt(1 - self.rho) * private + sensor / self.snr[m]
            nuisance = self.nuisance_scale * torch.randn(n, self.dims[m] - d - self.distractor_dims,
                                                         generator=generator)
            u = torch.cat([view, distractors, nuisance], 1) @ self.mixing(m)
            x = u if self.warp == 0 else torch.asinh(self.warp * u) / self.warp
            inputs[m] = torch.where(present[:, i:i + 1], x, torch.zeros(()))
        return inputs

    def part(self, name: str, n: int, labelled: bool, complete_fraction: float) -> TensorData:
        import torch

        from mmtk import TensorData

        g = torch.Generator().manual_seed(sub_seed(self.sample_seed, name))
        classes = balanced_labels(n, self.num_classes, g)
        n_incomplete = n - int(round(complete_fraction * n))
        present = incomplete_patterns(n, n_incomplete, len(self.modalities), g)
        inputs = self.draw(classes, present, g)
        ids = [f"lv-{name}-{i:05d}" for i in range(n)]
        labels = classes if labelled else torch.full((n,), TensorData.UNLABELED)
        return TensorData(inputs, labels, ids, present=present)

    def load(self, fold: int | None = None) -> DataSplits:
        from mmtk import DataSplits

        train = self.part("labelled", self.labels, True, self.complete_fraction)
        if self.unlabeled:
            train = concat(train, self.part("unlabelled", self.unlabeled, False, 1.0))
        val = self.part("val", self.n_val, True, self.complete_fraction) if self.n_val else None
        test = self.part("test", self.n_test, True, 1.0)
        return DataSplits(train=train, val=val, test=test, num_classes=self.num_classes,
                          class_names=[f"class{k}" for k in range(self.num_classes)],
                          info={"dataset": "latent_views", "note": "synthetic data, not real",
                                "task seed": self.data_seed, "sample seed": self.sample_seed,
                                "labelled train samples": self.labels, "unlabelled train samples": self.unlabeled,
                                "test samples": self.n_test,
                                "bayes_bound": {"uar": self.bayes_bound()},
                                "bayes_bound_method": "exact: Gauss-Hermite quadrature of the nearest-"
                                                      "centre recall of the class-view simplex"})


def concat(a: TensorData, b: TensorData) -> TensorData:
    import torch

    from mmtk import TensorData

    return TensorData({m: torch.cat([a.inputs[m], b.inputs[m]]) for m in a.inputs},
                      torch.cat([a.labels, b.labels]), a.ids + b.ids, torch.cat([a.present, b.present]))
