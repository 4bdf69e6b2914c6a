"""Unlabelled and incomplete training samples (#15 §1): no task loss from an unlabelled sample,
label-free losses use it, validation carved from labelled samples, evaluation scores labelled
samples only and counts the others, training masks only remove, resume stays exact."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
import yaml

from conftest import RECIPES, prepare
from mmtk.batch import ModalityBatch
from mmtk.builder import Builder
from mmtk.data import DataSplits, TensorData, ensure_validation, stratified_split
from mmtk.errors import DataError
from mmtk.evaluate import Evaluator
from mmtk.metrics import as_metric, score_all
from mmtk.protocols import EvalCondition, EvalPlan, MissingProtocol, training_masks
from mmtk.run import Run
from mmtk.rundir import load_torch
from mmtk.stage_loop import StageLoop
from mmtk.task import check_supervision, supervised, task_loss_on

MODS = ("audio", "text", "visual")
DIMS = {"audio": 5, "text": 4, "visual": 3}
UNLABELLED = torch.tensor([1, 4, 6])


def _data(n: int = 10, seed: int = 0) -> TensorData:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    labels[UNLABELLED] = -1
    return TensorData({m: torch.randn(n, d, generator=g) for m, d in DIMS.items()}, labels,
                      [f"s{i}" for i in range(n)])


def _model(system):
    blocks = {"encoders": {m: {"type": "mlp"} for m in MODS}, "fuser": {"type": "concat"},
              "head": {"type": "mlp"}}
    torch.manual_seed(0)
    return Builder(system.registry).model(blocks, DIMS, num_classes=3, seed=0)


# -- the convention ----------------------------------------------------------------------
def test_labeled_masks_and_the_nan_score_rule():
    data = _data()
    assert data.labeled.tolist() == [i not in UNLABELLED.tolist() for i in range(10)]
    assert data.batch(torch.tensor([0, 1])).labeled.tolist() == [True, False]
    assert TensorData.UNLABELED == -1
    scores = torch.linspace(-1, 1, 10)
    scores[UNLABELLED] = float("nan")
    TensorData(data.inputs, data.labels, data.ids, scores=scores)  # NaN with -1: fine
    with pytest.raises(DataError, match="sample 's2' has a class label but a NaN"):
        TensorData(data.inputs, torch.arange(10) % 3, data.ids, scores=scores.roll(1))
    assert supervised(data.labels, scores, "scores").tolist() == data.labeled.tolist()


def test_validation_is_carved_from_labelled_samples_only():
    labelled = torch.arange(40) % 4
    with_pool = torch.cat([labelled, torch.full((25,), -1)])
    keep, carved = stratified_split(with_pool, 0.25, seed=3)
    assert set(range(40, 65)) <= set(keep.tolist())           # the pool stays in train
    assert (with_pool[carved] >= 0).all()
    # the labelled samples are carved exactly as without the pool
    assert carved.tolist() == stratified_split(labelled, 0.25, seed=3)[1].tolist()
    data = TensorData({"a": torch.randn(65, 2)}, with_pool, [f"s{i}" for i in range(65)])
    splits = ensure_validation(DataSplits(train=data, test=data, num_classes=4), 0.25, seed=3)
    assert splits.val.labeled.all() and int((~splits.train.labeled).sum()) == 25
    assert "25 unlabelled stay in train" in splits.info["validation"]


def test_a_split_without_labels_is_a_clear_error():
    data = _data()
    nobody = TensorData(data.inputs, torch.full((10,), -1), data.ids)
    check_supervision(DataSplits(train=data, val=data, test=data), "toy", "labels")
    with pytest.raises(DataError, match="none of the 10 val sample.*nothing to select a model on"):
        check_supervision(DataSplits(train=data, val=nobody, test=data), "toy", "labels")
    with pytest.raises(DataError, match="train sample.*nothing to train the task on"):
        check_supervision(DataSplits(train=nobody, val=data, test=data), "toy", "labels")


# -- the task loss -------------------------------------------------------------------------
def _task_grads(system, data: TensorData, keep: torch.Tensor) -> dict[str, torch.Tensor]:
    """Gradients of the engine's task loss (StageLoop.task_rows + task_loss_on) on all of data."""
    model = _model(system).train()
    loop = SimpleNamespace(supervised_cpu=supervised(data.labels, None, "labels"), device=torch.device("cpu"))
    idx = torch.arange(len(data))
    rows, count = StageLoop.task_rows(loop, idx, keep)
    batch = data.batch(idx)
    logits = model(batch.masked(keep), truth=batch).logits
    loss = task_loss_on(torch.nn.functional.cross_entropy, logits, batch.labels, rows, count)
    loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_an_unlabelled_sample_never_changes_the_task_loss(system):
    data = _data()
    keep = torch.ones(10, 3, dtype=torch.bool)
    keep[0, :] = False                      # labelled but shown nothing: no task loss either
    other = _data()
    for m in MODS:
        other.inputs[m][UNLABELLED] = 100 * torch.randn(len(UNLABELLED), DIMS[m])
        other.inputs[m][0] = -50.0
    base, changed = _task_grads(system, data, keep), _task_grads(system, other, keep)
    assert base.keys() == changed.keys() and base
    for name in base:
        torch.testing.assert_close(base[name], changed[name], rtol=0, atol=0)
    # and the loss is the mean over the labelled rows shown something
    loop = SimpleNamespace(supervised_cpu=data.labeled, device=torch.device("cpu"))
    rows, count = StageLoop.task_rows(loop, torch.arange(10), keep)
    assert rows.tolist() == [2, 3, 5, 7, 8, 9] and count == 6
    logits = torch.randn(10, 3)
    expected = torch.nn.functional.cross_entropy(logits[rows], data.labels[rows])
    assert torch.equal(task_loss_on(torch.nn.functional.cross_entropy, logits, data.labels, rows, count), expected)
    full = SimpleNamespace(supervised_cpu=torch.ones(10, dtype=torch.bool), device=torch.device("cpu"))
    assert StageLoop.task_rows(full, torch.arange(10), torch.ones(10, 3, dtype=torch.bool)) == (None, 10)


def test_a_batch_without_labels_gives_zero_task_loss_with_a_graph(system):
    model = _model(system).train()
    logits = model(_data().batch(torch.arange(3))).logits
    loss = task_loss_on(torch.nn.functional.cross_entropy, logits, torch.full((3,), -1),
                        torch.empty(0, dtype=torch.long), 0)
    assert float(loss.detach()) == 0.0 and loss.requires_grad
    loss.backward()


def test_a_reconstruction_loss_uses_unlabelled_samples(system):
    blocks = {"encoders": {m: {"type": "mlp"} for m in MODS}, "fuser": {"type": "concat"},
              "head": {"type": "mlp"}, "reconstructor": {"type": "ae_impute"}}
    torch.manual_seed(0)
    model = Builder(system.registry).model(blocks, DIMS, num_classes=3, seed=0).train()
    keep = torch.ones(10, 3, dtype=torch.bool)
    keep[UNLABELLED, 0] = False             # the unlabelled samples' audio is dropped

    def recon(data):
        batch = data.batch(torch.arange(10))
        torch.manual_seed(1)
        return model(batch.masked(keep), truth=batch).aux["reconstructor/recon"]

    other = _data()
    other.inputs["audio"][UNLABELLED] += 3.0
    assert not torch.isclose(recon(_data()), recon(other))


# -- training masks ------------------------------------------------------------------------
class ShowEverything(MissingProtocol):
    def train_mask(self, present, generator, modalities):
        return torch.ones_like(present, dtype=torch.bool)


class FixedTable(MissingProtocol):
    def train_table(self, n, modalities, present=None):
        return torch.ones(n, len(modalities), dtype=torch.bool)


@pytest.mark.parametrize("protocol", [ShowEverything(), FixedTable()])
def test_a_training_mask_can_only_remove(protocol):
    present = torch.tensor([[True, False, True], [False, True, False], [True, True, True]])
    masks = training_masks(protocol, 3, MODS, present)
    keep = masks(torch.arange(3), present, torch.Generator().manual_seed(0))
    assert torch.equal(keep, present)       # asked to show everything: shows what the data has


def test_a_misshapen_training_mask_is_named():
    class Wrong(MissingProtocol):
        def train_mask(self, present, generator, modalities):
            return torch.ones(2, 2, dtype=torch.bool)

    masks = training_masks(Wrong(), 3, MODS, torch.ones(3, 3, dtype=torch.bool))
    with pytest.raises(Exception, match="'Wrong': train_mask gave \\(2, 2\\)"):
        masks(torch.arange(3), torch.ones(3, 3, dtype=torch.bool), torch.Generator())


# -- evaluation ----------------------------------------------------------------------------
def test_evaluation_scores_labelled_samples_only_and_counts_the_others(system):
    builder = Builder(system.registry)
    metrics = {n: as_metric(builder.component("metric", n)) for n in ("war", "uar")}
    model = _model(system)
    data = _data()
    evaluator = Evaluator(metrics, 3, batch_size=4, amp_dtype=None)
    only_audio = torch.zeros(10, 3, dtype=torch.bool)
    only_audio[:, 0] = True
    only_audio[[1, 2], 0] = False           # 1 is unlabelled, 2 labelled: shown nothing
    plan = EvalPlan([EvalCondition("a", only_audio), EvalCondition("atv", torch.ones(10, 3, dtype=torch.bool))],
                    ["a", "atv"])
    kept: dict = {}
    res = evaluator.evaluate(model, data, plan, kept)
    assert kept["unlabeled"] == 3 and kept["excluded"] == {"a": 1}
    pred = evaluator.predict(model, data, torch.ones(10, 3, dtype=torch.bool))
    labelled = data.labeled
    expected = float((pred[labelled] == data.labels[labelled]).float().mean())
    assert res["atv"]["war"] == pytest.approx(expected)
    # rescoring saved predictions (score_all) leaves them out the same way
    assert score_all(evaluator.metrics, 3, pred, data.labels, None)["war"] == pytest.approx(expected)


# -- end to end ----------------------------------------------------------------------------
PLUGIN = '''
import mmtk, torch

class Partial(mmtk.Dataset):
    """Two noisy views of three classes: an unlabelled pool and incomplete training samples.

    Parameters:
        shift: added to the unlabelled training samples' features (they are never scored)
        pool: false drops the unlabelled training samples (the labelled ones stay as they are)
    """

    def __init__(self, shift: float = 0.0, pool: bool = True, seed: int = 0):
        self.shift, self.pool = shift, pool

    @property
    def modalities(self):
        return ("audio", "text", "visual")

    def _split(self, n, g, unlabelled=0, incomplete=0):
        y = torch.randint(0, 3, (n,), generator=g)
        x = {m: torch.randn(n, d, generator=g) + 0.8 * y[:, None].float()
             for m, d in (("audio", 5), ("text", 4), ("visual", 3))}
        labels = y.clone()
        labels[:unlabelled] = -1
        present = torch.ones(n, 3, dtype=torch.bool)
        present[unlabelled:unlabelled + incomplete, 0] = False     # labelled, no audio
        present[:incomplete, 2] = False                            # unlabelled, no visual
        for i, m in enumerate(sorted(x)):
            x[m][:unlabelled] += self.shift
            x[m] = torch.where(present[:, i:i + 1], x[m], torch.zeros(()))
        return mmtk.TensorData(x, labels, [f"s{i}" for i in range(n)], present)

    def load(self, fold=None):
        g = torch.Generator().manual_seed(0)
        train = self._split(160, g, unlabelled=64, incomplete=24)
        if not self.pool:
            train = train.subset(torch.arange(64, 160))
        return mmtk.DataSplits(train=train, val=self._split(40, g), test=self._split(40, g), num_classes=3)

@mmtk.hookimpl
def mmtk_register_components(register):
    register("dataset", "partial", Partial)
'''


def _recipe(folder, base: str, shift: float, pool: bool = True, **train) -> str:
    """A recipe file: ``base`` on the partial dataset (not normalised: the unlabelled rows'
    features must not move the statistics)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "partial_plugin.py").write_text(PLUGIN)
    tree = {"extends": str(RECIPES / base), "imports": [str(folder / "partial_plugin.py")],
            "name": "partial",
            "data": {"type": "partial", "shift": shift, "pool": pool, "normalize": False},
            "train": {"epochs": 3, "batch_size": 32, "patience": None, **train}, "seed": 0}
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(tree))
    return str(path)


def _weights(run_dir) -> dict:
    return load_torch(next(run_dir.glob("trials/*/model.pt")))


@pytest.mark.slow
def test_unlabelled_and_incomplete_training_end_to_end(system, tmp_path):
    """The baseline (task loss only) learns nothing from unlabelled samples: changing their
    features leaves the trained weights bit-identical; a reconstruction loss learns from them."""
    runs = {}
    for base in ("baseline.yaml", "ae-impute.yaml"):
        for shift in (0.0, 5.0):
            where = tmp_path / f"{base}-{shift}"
            run = Run.create(prepare(system, _recipe(where, base, shift), where), system)
            runs[base, shift] = (run.execute(), run.directory)
    a, b = _weights(runs["baseline.yaml", 0.0][1]), _weights(runs["baseline.yaml", 5.0][1])
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert runs["baseline.yaml", 0.0][0]["trials"] == runs["baseline.yaml", 5.0][0]["trials"]
    a, b = _weights(runs["ae-impute.yaml", 0.0][1]), _weights(runs["ae-impute.yaml", 5.0][1])
    assert any(not torch.equal(a[k], b[k]) for k in a)
    directory = runs["baseline.yaml", 0.0][1]
    data = json.loads(next(directory.glob("trials/*/data.json")).read_text())
    assert data["sizes"]["train"] == 160 and data["labeled"] == {"train": 96, "val": 40, "test": 40}
    history = json.loads(next(directory.glob("trials/*/history-*.json")).read_text())
    assert history[0]["train_labeled"] == 96 and history[0]["train_unlabeled"] == 0


def _trained(system, folder, base: str, **options):
    run = Run.create(prepare(system, _recipe(folder, base, 0.0, **options), folder), system)
    result = run.execute()
    history = json.loads(next(run.directory.glob("trials/*/history-*.json")).read_text())
    return _weights(run.directory), result["trials"], history


@pytest.mark.slow
def test_a_label_only_model_trains_exactly_as_without_the_pool(system, tmp_path):
    """train.unlabeled: auto leaves the pool out of a model that cannot learn from it, so
    adding unlabelled samples changes nothing (not even the batches); mixed puts them back."""
    without, results, _ = _trained(system, tmp_path / "none", "baseline.yaml", pool=False)
    auto, auto_results, history = _trained(system, tmp_path / "auto", "baseline.yaml")
    assert all(torch.equal(without[k], auto[k]) for k in without) and auto_results == results
    assert history[0]["train_samples"] == 96 and history[0]["train_unlabeled"] == 0
    mixed, _, history = _trained(system, tmp_path / "mixed", "baseline.yaml", unlabeled="mixed")
    assert any(not torch.equal(without[k], mixed[k]) for k in without)
    assert history[0]["train_samples"] == 160 and history[0]["train_unlabeled"] == 64
    # a model that learns from the pool gets it by default, here 10 per step of 32 labelled
    _, _, history = _trained(system, tmp_path / "ae", "ae-impute.yaml", unlabeled=10)
    assert history[0]["train_samples"] == 96 + 3 * 10 and history[0]["train_unlabeled"] == 30
    # train.epoch_steps fixes the epoch's length: 5 steps are passes of 3 batches back to back
    _, _, history = _trained(system, tmp_path / "steps", "baseline.yaml", epoch_steps=5)
    assert history[0]["train_samples"] == history[0]["train_labeled"] == 5 * 32


class Interrupt(Exception):
    pass


@pytest.mark.slow
@pytest.mark.parametrize("unlabeled", ["auto", 10])
def test_resume_with_unlabelled_data_is_exact(system, tmp_path, unlabeled):
    recipe = _recipe(tmp_path, "cmarr.yaml", 0.0, checkpoint_seconds=0, unlabeled=unlabeled)
    full = Run.create(prepare(system, recipe, tmp_path / "a"), system).execute()

    def kill_after_two_epochs(event, **info):
        if event == "epoch_end" and info["epoch"] == 2:
            raise Interrupt

    run = Run.create(prepare(system, recipe, tmp_path / "b"), system, progress=kill_after_two_epochs)
    with pytest.raises(Interrupt):
        run.execute()
    resumed = Run.resume(run.directory, system).execute()
    assert resumed["trials"]["seed0"] == full["trials"]["seed0"]


def test_modality_batch_labels_travel():
    batch = ModalityBatch({"a": torch.zeros(2, 1)}, torch.ones(2, 1, dtype=torch.bool), ("a",),
                          torch.tensor([-1, 2]))
    assert batch.labeled.tolist() == [False, True]
    assert ModalityBatch({"a": torch.zeros(1, 1)}, torch.ones(1, 1, dtype=torch.bool), ("a",)).labeled is None
