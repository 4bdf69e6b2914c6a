"""The embedded ``synthetic`` dataset: SYNTHETIC tri-modal data for quick starts and tests.

It is not real emotion data. Four classes sit in the quadrants of an arousal/valence plane.
``audio`` sees arousal clearly and valence blurred, ``text`` the reverse, ``visual`` both
moderately blurred; all three also share a latent "style" and carry private noise. So each
modality is informative but imperfect alone, fusion helps, and a missing modality can be
partly inferred from the others. Default dimensions follow the features used on IEMOCAP
(ComParE 130, BERT-large 1024, Denseface 342).

Its Bayes bound (:meth:`Synthetic.bayes_bound`) is that of the views before the mixing: given
the class, each affect axis is ``c * separation + N(0, 1)`` and a modality sees it with extra
noise of std ``blur``, independently per axis and modality. The precision-weighted mean of
the present views is sufficient per axis, ``N(c * separation, 1 + 1 / tau)`` with ``tau`` the
sum of ``1 / blur^2``, so the UAR-optimal rule (likelihood, priors ignored) takes the sign of
each axis and every class has the recall ``Phi(s sqrt(tau_a / (1 + tau_a))) * Phi(s sqrt(tau_v
/ (1 + tau_v)))``. The features are a noisy function of the views, so this bounds any method
from above; it is not the exact rate on the features.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from mmtk import Dataset

from .bounds import normal_cdf, subset_bounds
from .limits import Fraction, NonNegative, NonNegativeInt, Seed, Size

if TYPE_CHECKING:
    from mmtk import DataSplits, TensorData
# torch and the data classes are imported when data is generated: building the dataset object
# (what `mmtk validate` does to learn its modalities) must not wait for torch.

CLASS_NAMES = ["neutral", "happy", "angry", "sad"]
# class shares roughly as in IEMOCAP's 4-class set, so WAR and UAR differ
CLASS_SHARES = [0.31, 0.30, 0.20, 0.19]
# (arousal, valence) centre of each class
CENTRES = [[-1.0, 1.0], [1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]]
# how blurred each modality's view of (arousal, valence) is (std of extra noise)
BLUR = {"audio": (0.4, 2.0), "text": (2.0, 0.4), "visual": (0.9, 0.9)}
DEFAULT_BLUR = (0.9, 0.9)   # a modality named otherwise in dims


class Synthetic(Dataset):
    """Synthetic tri-modal emotion-like data (audio, text, visual; 4 classes); deterministic by data_seed.

    Parameters:
        n_samples: number of samples (train and test together)
        dims: feature size per modality, which also names the modalities (default audio 130,
            text 1024, visual 342)
        frames: frames per modality for sequence features (B, T, D) with random lengths; a
            modality not listed gets one vector per sample
        separation: distance of the class centres from the origin of the arousal/valence plane
            (larger = easier)
        noise: scale of the noise added to every feature
        data_seed: seed of the task (how each modality's features arise from the affect) and,
            unless sample_seed is set, also of the samples and the train/test split
        test_fraction: share of samples in the test split (stratified); ignored with n_test
        sample_seed: seed of the samples and the split only, with the task kept fixed by
            data_seed; 'trial' ties them to the trial seed, so the seeds of a comparison also
            sample test-set variance (null: data_seed draws everything, as before)
        n_test: generate this many test samples in addition to the n_samples training ones
            (e.g. 10000 for a test set whose sampling error is small); null: split n_samples
    """

    def __init__(self, n_samples: Size = 3000, dims: dict[str, Size] | None = None,
                 frames: dict[str, NonNegativeInt] | None = None, separation: NonNegative = 1.2,
                 noise: NonNegative = 1.0, data_seed: Seed = 0, test_fraction: Fraction = 0.2,
                 sample_seed: Seed | Literal["trial"] | None = None, n_test: Size | None = None,
                 seed: int = 0):
        self.n_samples, self.separation, self.noise = n_samples, separation, noise
        self.dims = dims or {"audio": 130, "text": 1024, "visual": 342}
        self.frames = frames or {}
        self.data_seed, self.test_fraction, self.n_test = data_seed, test_fraction, n_test
        self.sample_seed = seed if sample_seed == "trial" else sample_seed

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(sorted(self.dims))

    def bayes_bound(self) -> dict[str, float]:
        """The UAR of the Bayes rule on the present modalities' affect views, per condition
        (module docstring): an upper bound on what a method reaches on the features."""
        import math

        def uar(present: tuple[str, ...]) -> float:
            recall = 1.0
            for axis in range(2):
                tau = sum(1.0 / BLUR.get(m, DEFAULT_BLUR)[axis] ** 2 for m in present)
                recall *= normal_cdf(self.separation * math.sqrt(tau / (1.0 + tau)))
            return recall

        return subset_bounds(self.modalities, uar)

    def _generate(self) -> TensorData:
        import torch

        from mmtk import TensorData
        from mmtk.ops import frame_mask

        # g draws the samples, gw the task's weights; one generator (the historical stream)
        # unless sample_seed separates them
        g = torch.Generator().manual_seed(self.data_seed if self.sample_seed is None else self.sample_seed)
        gw = g if self.sample_seed is None else torch.Generator().manual_seed(self.data_seed)
        n = self.n_samples + (self.n_test or 0)
        counts = [int(round(share * n)) for share in CLASS_SHARES[:-1]]
        counts.append(n - sum(counts))
        labels = torch.repeat_interleave(torch.arange(len(CLASS_NAMES)), torch.tensor(counts))
        labels = labels[torch.randperm(n, generator=g)]
        affect = torch.tensor(CENTRES)[labels] * self.separation + torch.randn(n, 2, generator=g)
        style = torch.randn(n, 6, generator=g)
        inputs, lengths = {}, {}
        for m in self.modalities:
            blur = torch.tensor(BLUR.get(m, DEFAULT_BLUR))
            view = affect + blur * torch.randn(n, 2, generator=g)
            private = torch.randn(n, 4, generator=g)
            h = torch.cat([view, style, private], 1)                               # (n, 12)
            w1 = torch.randn(h.shape[1], 64, generator=gw) / h.shape[1] ** 0.5
            w2 = torch.randn(64, self.dims[m], generator=gw) / 8.0
            clean = torch.tanh(h @ w1 * 2) @ w2
            t = self.frames.get(m, 0)
            if t:
                frames = clean[:, None, :] + self.noise * 0.5 * torch.randn(n, t, self.dims[m], generator=g)
                length = torch.randint(max(1, t // 2), t + 1, (n,), generator=g)
                valid = frame_mask(length, t)[..., None]
                inputs[m] = torch.where(valid, frames, torch.zeros(()))
                lengths[m] = length
            else:
                inputs[m] = clean + self.noise * 0.5 * torch.randn(n, self.dims[m], generator=g)
        ids = [f"syn{i:05d}" for i in range(n)]
        return TensorData(inputs, labels, ids, lengths=lengths)

    def load(self, fold: int | None = None) -> DataSplits:
        import torch

        from mmtk import DataSplits, stratified_split

        data = self._generate()
        if self.n_test:   # the first n_samples train, the rest test (labels are shuffled)
            train_idx, test_idx = torch.arange(self.n_samples), torch.arange(self.n_samples, len(data))
        else:
            split_seed = self.data_seed if self.sample_seed is None else self.sample_seed
            train_idx, test_idx = stratified_split(data.labels, self.test_fraction, split_seed)
        return DataSplits(train=data.subset(train_idx), test=data.subset(test_idx), val=None,
                          num_classes=len(CLASS_NAMES), class_names=CLASS_NAMES,
                          info={"dataset": "synthetic", "note": "synthetic data, not real",
                                "task seed": self.data_seed,
                                "sample seed": self.data_seed if self.sample_seed is None else self.sample_seed,
                                "test samples": len(test_idx),
                                "bayes_bound": {"uar": self.bayes_bound()},
                                "bayes_bound_method": "upper bound: closed-form recall of the Bayes rule on "
                                                      "each modality's affect view, before the mixing and "
                                                      "feature noise"})
