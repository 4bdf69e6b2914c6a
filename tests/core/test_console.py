"""Progress that tells the truth: steps inside an epoch, the validation metric per epoch, an
early stop named with the stopped and selected epochs, the final evaluation as a step."""
from __future__ import annotations

import io
import re

import pytest

from conftest import RECIPES, prepare, tiny_overrides
from mmtk.console import PlainProgress, RichProgress, first_epoch_warning, stage_end_text
from mmtk.run import Run


def stage_end(epoch: int, epochs: int = 30, selected: int = 4) -> dict:
    return {"trial": "seed0", "stage": "main", "epoch": epoch, "epochs": epochs, "selected": selected,
            "monitor": "uar", "value": 0.64}


def test_stage_end_text_says_early_stop_or_full_run():
    assert stage_end_text(stage_end(12)) == "stopped at epoch 12, selected epoch 4 (val UAR 0.64)"
    assert stage_end_text(stage_end(30)) == "ran all 30 epochs, selected epoch 4 (val UAR 0.64)"


def test_keeping_the_first_epoch_after_training_more_is_flagged():
    assert first_epoch_warning(stage_end(12)) == ""
    warning = first_epoch_warning(stage_end(9, selected=1))
    assert "barely trained" in warning and "train.min_epochs" in warning and "train.patience" in warning
    assert first_epoch_warning(stage_end(30, selected=1)) == warning            # ran every epoch, kept the first
    assert first_epoch_warning(stage_end(1, epochs=1, selected=1)) == ""       # a one-epoch stage had no choice
    out = io.StringIO()
    PlainProgress(out)("stage_end", **stage_end(9, selected=1))
    assert out.getvalue() == f"[seed0] stage 'main': stopped at epoch 9, selected epoch 1 (val UAR 0.64); {warning}\n"
    progress = RichProgress()
    try:
        progress("stage_start", trial="seed0", stage="main", epochs=30, steps=4)
        lines: list[str] = []
        progress.line = lines.append   # type: ignore[method-assign]
        progress("stage_end", **stage_end(9, selected=1))
    finally:
        progress.close()
    assert lines == [f"[seed0] {warning}"]


def test_plain_step_lines_are_throttled():
    out = io.StringIO()
    progress = PlainProgress(out, step_seconds=3600)
    progress("stage_start", trial="seed0", stage="main", epochs=3, steps=40)
    for step in range(1, 41):
        progress("step", trial="seed0", stage="main", epoch=1, step=step)
    assert "step" not in out.getvalue().split("\n", 1)[1]   # nothing but the stage line yet
    fast = PlainProgress(out, step_seconds=0)
    fast("stage_start", trial="seed0", stage="main", epochs=3, steps=40)
    fast("step", trial="seed0", stage="main", epoch=2, step=17)
    assert "[seed0] main epoch 2: step 17/40" in out.getvalue()


def test_rich_bar_moves_with_steps_and_stays_where_an_early_stop_left_it():
    progress = RichProgress()
    try:
        progress("stage_start", trial="seed0", stage="main", epochs=30, steps=10, start=0)
        progress("step", trial="seed0", stage="main", epoch=1, step=3)
        task = progress.progress.tasks[-1]
        assert task.completed == 3 and task.total == 300
        progress("epoch_end", trial="seed0", stage="main", epoch=12, train_seconds=0.1,
                 **{"val/uar": 0.61})
        assert "val UAR 0.6100" in task.fields["score"]
        progress("stage_end", **stage_end(12))
        assert task.completed == 120 < task.total
        assert "stopped at epoch 12" in task.fields["score"]
        progress("final_eval", trial="seed0", splits=["val", "test"], monitor="uar")
        progress("trial_end", trial="seed0", results={"test": {"mean": {"uar": 0.625}}}, excluded={})
        final = progress.progress.tasks[-1]
        assert final.description == "seed0 final evaluation" and final.completed == 1
        assert final.fields["score"] == "final evaluation done: test mean UAR 0.6250"
    finally:
        progress.close()


@pytest.mark.slow
def test_plain_progress_of_a_run_that_stops_early(system, tmp_path):
    # a learning rate of 1e-12 leaves the validation score unchanged after epoch 1, so with
    # patience 2 the stage stops at epoch 3 of 30 and keeps epoch 1
    tree = prepare(system, RECIPES / "baseline.yaml", tmp_path,
                   tiny_overrides(30) + ["train.patience=2", "train.optimizer.lr=1e-12", "data.n_test=500"])
    out = io.StringIO()
    run = Run.create(tree, system)
    run.progress = PlainProgress(out)
    run.execute()
    text = out.getvalue()
    assert re.search(r"\[seed0\] stage 'main': stopped at epoch 3, selected epoch 1 \(val UAR 0\.\d+\)",
                     text), text
    assert re.search(r"main epoch 3: .*val/uar=0\.\d{4}", text)       # the val metric per epoch
    assert "main epoch 4:" not in text
    assert "[seed0] final evaluation of the selected model on val and test" in text
    assert re.search(r"\[seed0\] final evaluation done: test mean UAR 0\.\d{4}", text)


def test_trial_end_says_how_many_samples_had_no_label():
    out = io.StringIO()
    progress = PlainProgress(out)
    progress("trial_end", trial="seed0", results={}, excluded={}, unlabeled={"train": 3000})
    text = out.getvalue()
    assert "[seed0] unlabelled" in text and "train: 3000 sample(s)" in text
    quiet = io.StringIO()
    PlainProgress(quiet)("trial_end", trial="seed0", results={}, excluded={}, unlabeled={})
    assert "unlabelled" not in quiet.getvalue()


def _frames(lengths: list[int], steps: int):
    import torch

    from mmtk.data import TensorData
    n = len(lengths)
    return TensorData({"audio": torch.zeros(n, steps, 2), "text": torch.zeros(n, 3)},
                      torch.zeros(n, dtype=torch.long), [str(i) for i in range(n)],
                      lengths={"audio": torch.tensor(lengths)})


def test_padding_hint_when_unbucketed_batches_are_mostly_padding():
    from mmtk.data_loading import bucketing
    wide = _frames([20, 60, 100, 40], 100)           # 45 % of the frames are padding
    bucket, hint, note = bucketing(False, wide)
    assert not bucket and note is None
    assert hint is not None and "'audio' sequences are 20-100 frames" in hint and "45 %" in hint
    assert "train.bucket_by_length: true" in hint
    assert bucketing(True, wide) == (True, None, None)                       # already bucketed
    assert bucketing(False, _frames([80, 90, 100, 95], 100)) == (False, None, None)   # little padding


def test_auto_buckets_only_where_batches_would_be_mostly_padding():
    from mmtk.data_loading import bucketing
    bucket, hint, note = bucketing("auto", _frames([20, 60, 100, 40], 100))
    assert bucket and hint is None and "bucketed by length" in note and "45 %" in note
    assert bucketing("auto", _frames([80, 90, 100, 95], 100)) == (False, None, None)
    vectors = _frames([1, 1], 1)
    vectors.lengths.clear()
    assert bucketing("auto", vectors) == (False, None, None)                 # no sequences
    assert bucketing(True, vectors) == (False, None, None)


def test_plain_and_rich_progress_print_the_stage_hint():
    out = io.StringIO()
    PlainProgress(out)("stage_start", trial="seed0", stage="main", epochs=3, steps=2, hint="cut the padding",
                       notes=["3000 unlabelled training samples left out"])
    assert "[seed0] hint: cut the padding" in out.getvalue()
    assert "[seed0] 3000 unlabelled training samples left out" in out.getvalue()
    quiet = io.StringIO()
    PlainProgress(quiet)("stage_start", trial="seed0", stage="main", epochs=3, steps=2, hint=None)
    assert "hint" not in quiet.getvalue()
    progress = RichProgress()
    try:
        with progress.progress.console.capture() as captured:
            progress("stage_start", trial="seed0", stage="main", epochs=3, steps=2, hint="cut the padding")
        assert "[seed0] hint: cut the padding" in captured.get()
    finally:
        progress.close()
