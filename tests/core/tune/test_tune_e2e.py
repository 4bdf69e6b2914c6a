"""mmtk tune end to end on the embedded synthetic data: a whole study, pruning, workers
sharing one study, and a study continued after its tuner was killed."""
from __future__ import annotations

import json
import re
import signal
import time

import optuna
import pytest

from mmtk.cli import main

pytestmark = pytest.mark.slow
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def _no_test_read_in_any_trial(folder):
    records = list(folder.glob("trials/*/trials/*/evaluation.json"))
    assert records
    for path in records:
        reads = json.loads(path.read_text())["reads"]
        assert {split for phase in reads.values() for split in phase} == {"val"}, path


def test_a_whole_study_then_best_yaml_tested_once(tmp_path, monkeypatch, capsys, tiny_recipe,
                                                  space_file, find_db, only_study):
    monkeypatch.chdir(tmp_path)
    command = ["tune", str(tiny_recipe), "--space", str(space_file), "--trials", "3", "--sampler", "random"]
    assert main(command) == 0
    out = capsys.readouterr().out
    folder = find_db(tmp_path).parent
    study = only_study(f"sqlite:///{find_db(tmp_path)}")
    assert [t.number for t in study.trials] == [0, 1, 2]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    best = study.best_trial
    assert f"best: trial {best.number}, val uar {best.value:.6g}" in out
    assert "3/3 trials done (complete 3, pruned 0, failed 0), running 0" in out
    assert "top 3 of 3 completed trial(s), by validation uar" in out
    assert "parameter importances (Optuna's default evaluator): " in out
    _no_test_read_in_any_trial(folder)

    # best.yaml: a complete recipe extending the original with the chosen values
    best_yaml = (folder / "best.yaml").read_text()
    assert f"extends: {tiny_recipe}" in best_yaml
    assert f"latent_dim: {best.params['model.latent_dim']}" in best_yaml
    assert main(["validate", str(folder / "best.yaml")]) == 0
    capsys.readouterr()

    # its test results: evaluated once, in an ordinary run inside the tuning folder, labelled
    assert "test (evaluated once, after selection on validation)" in out
    final = json.loads((folder / "final.json").read_text())
    assert final["trial"] == best.number and "mean" in final["test"]
    run_metrics = json.loads((tmp_path / final["run_dir"] / "metrics.json").read_text())
    assert "test" in run_metrics["summary"]
    # the retrained best configuration scores on validation what its trial did (same seed, CPU)
    assert run_metrics["summary"]["val"]["mean"]["uar"]["mean"] == pytest.approx(best.value)
    lines = (folder / "trials.csv").read_text().splitlines()
    assert lines[0] == "trial,state,value,train.optimizer.lr,model.latent_dim,note" and len(lines) == 4
    assert (folder / "history.png").stat().st_size > 0 and (folder / "params.png").stat().st_size > 0

    # the same command again: the study is complete, nothing retrains, test is not evaluated again
    assert main(command) == 0
    again = capsys.readouterr().out
    assert "3 of 3 trial(s) done before this command" in again
    assert "(recorded earlier; not evaluated again)" in again
    assert len(only_study(f"sqlite:///{find_db(tmp_path)}").trials) == 3
    assert len(list(folder.glob("tiny-tuned/*/metrics.json"))) == 1


def test_pruned_and_crashed_trials_are_reported(tmp_path, monkeypatch, capsys, tiny_recipe, find_db, only_study):
    """A learning rate too small to learn is pruned against the others' median; a value the
    recipe refuses only at training time (a crash) fails that trial and the study goes on."""
    monkeypatch.chdir(tmp_path)
    space = tmp_path / "space.yaml"
    space.write_text("train.optimizer.lr: {categorical: [3e-2, 1e-9, 1e30]}\n")
    assert main(["tune", str(tiny_recipe), "--space", str(space), "--trials", "6", "--sampler", "random",
                 "--sampler-seed", "1", "--prune-after", "1", "--set", "train.epochs=4"]) == 0
    out = capsys.readouterr().out
    study = only_study(f"sqlite:///{find_db(tmp_path)}")
    states = [t.state for t in study.trials]
    pruned = states.count(optuna.trial.TrialState.PRUNED)
    assert len(states) == 6 and pruned >= 1
    assert all(t.params["train.optimizer.lr"] == 1e-9 for t in study.trials
               if t.state == optuna.trial.TrialState.PRUNED)
    failed = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert failed and all(t.params["train.optimizer.lr"] == 1e30 for t in failed)
    assert all("non-finite loss" in t.user_attrs["error"] for t in failed)
    assert f"trial {failed[0].number} failed: non-finite loss" in out
    finished = re.findall(r"finished\. 6/6 trials done \(complete (\d+), pruned (\d+), failed (\d+)\)", out)
    assert finished and (int(finished[0][1]), int(finished[0][2])) == (pruned, len(failed))
    assert states.count(optuna.trial.TrialState.COMPLETE) == int(finished[0][0]) >= 1


def test_two_worker_processes_share_one_sqlite_study(tune_cli, tiny_recipe, space_file, tmp_path,
                                                      find_db, only_study):
    done = tune_cli(str(tiny_recipe), "--space", str(space_file), "--trials", "4", "--jobs", "2",
                    "--set", "train.epochs=3")
    assert done.returncode == 0, done.stdout + done.stderr
    study = only_study(f"sqlite:///{find_db(tmp_path)}")
    numbers = [t.number for t in study.trials]
    assert numbers == [0, 1, 2, 3]                          # none lost, none duplicated
    assert all(t.state in FINISHED for t in study.trials)
    workers = {t.user_attrs["worker"] for t in study.trials}   # host:pid of the worker process
    assert workers and all(re.fullmatch(r".+:\d+", w) for w in workers)
    folder = find_db(tmp_path).parent
    assert sorted(p.name for p in (folder / "trials").iterdir()) == ["0000", "0001", "0002", "0003"]
    assert "test (evaluated once, after selection on validation)" in done.stdout


def test_two_commands_at_once_on_one_journal_file(tune_cli, tiny_recipe, space_file, tmp_path, only_study):
    """Two tuners started together on the same study never exceed its budget."""
    journal = tmp_path / "study.log"
    args = [str(tiny_recipe), "--space", str(space_file), "--trials", "5", "--storage", f"journal:{journal}"]
    first, second = tune_cli(*args, background=True), tune_cli(*args, background=True)
    outs = [p.communicate(timeout=300)[0] for p in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outs
    from mmtk.tune.storage import open_storage  # names the journal backend of any Optuna version

    storage = open_storage(f"journal:{journal}", optuna)
    (name,) = optuna.get_all_study_names(storage)
    study = optuna.load_study(study_name=name, storage=storage)
    assert [t.number for t in study.trials] == [0, 1, 2, 3, 4]
    assert all(t.state in FINISHED for t in study.trials)


def test_a_killed_tuner_resumes_and_its_running_trial_is_failed(tune_cli, tiny_recipe, space_file,
                                                                tmp_path, find_db, only_study):
    # every trial runs all its epochs: long enough to catch (30 epochs: ~2 s per trial, twenty
    # times the polling interval)
    args = [str(tiny_recipe), "--space", str(space_file), "--trials", "3", "--set", "train.epochs=30",
            "--set", "train.patience=null"]
    tuner = tune_cli(*args, background=True)
    url = None
    deadline = time.time() + 180
    while time.time() < deadline:                 # wait for trial 1 to be running
        time.sleep(0.1)
        dbs = list(tmp_path.glob("runs/tiny/tune-*/study.db"))
        if not dbs:
            continue
        url = f"sqlite:///{dbs[0]}"
        try:
            running = [t.number for t in only_study(url).trials if t.state == optuna.trial.TrialState.RUNNING]
        except Exception:                           # the study is still being created
            continue
        if 1 in running:
            break
    else:
        tuner.kill()
        pytest.fail("trial 1 never started: " + (tuner.communicate()[0] or ""))
    tuner.send_signal(signal.SIGKILL)
    tuner.wait()
    assert only_study(url).trials[1].state == optuna.trial.TrialState.RUNNING   # left behind

    again = tune_cli(*args)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "1 of 3 trial(s) done before this command" in again.stdout
    trials = only_study(url).trials
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert trials[1].state == optuna.trial.TrialState.FAIL and "interrupted" in trials[1].user_attrs
    assert [t.state for t in trials].count(optuna.trial.TrialState.COMPLETE) == 3
    assert "interrupted 1" in again.stdout
