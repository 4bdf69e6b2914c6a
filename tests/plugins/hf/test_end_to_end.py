"""Bring your own data: generated WAV files and transcripts -> ``mmtk extract`` -> a recipe
trains on them through the generic ``arrays`` dataset (plugin mmtk_datasets)."""
from __future__ import annotations

import json

import pytest
import yaml

from mmtk.cli import main

CLASSES = {"calm": (220.0, ["sad", "gloomy", "awful", "i", "feel", "very", "terrible", "cry"]),
           "excited": (880.0, ["happy", "glad", "great", "wonderful", "joy", "this", "is", "news"])}


@pytest.fixture
def raw_data(tmp_path, hf_helpers):
    """12 utterances, two classes with different tones and words; one WAV is broken and one
    transcript empty (each sample keeps its other modality)."""
    wavs = tmp_path / "wavs"
    wavs.mkdir()
    labels, texts, splits = ["id,label"], ["id,text"], ["id,split"]
    for c, (name, (freq, words)) in enumerate(CLASSES.items()):
        for k in range(6):
            sid = f"{name}{k}"
            hf_helpers.write_wav(wavs / f"{sid}.wav", hf_helpers.tone(freq * (1 + 0.03 * k), 0.3 + 0.04 * k,
                                                                      seed=10 * c + k))
            text = " ".join(words[(k + j) % len(words)] for j in range(3 + k % 3))
            texts.append(f"{sid},{text}")
            labels.append(f"{sid},{name}")
            splits.append(f"{sid},{['train', 'train', 'train', 'train', 'val', 'test'][k]}")
    (wavs / "calm1.wav").write_bytes(b"RIFF broken")                 # audio missing for calm1
    texts[texts.index(next(t for t in texts if t.startswith("excited2,")))] = "excited2,"
    for name, lines in (("labels.csv", labels), ("transcripts.csv", texts), ("splits.csv", splits)):
        (tmp_path / name).write_text("\n".join(lines) + "\n")
    return tmp_path


def _extract(modality, model, data, out, *extra):
    source = data / ("wavs" if modality == "audio" else "transcripts.csv")
    args = ["extract", "--modality", modality, "--input", str(source), "--out", str(out),
            "--labels", str(data / "labels.csv"), "--splits", str(data / "splits.csv"), "--quiet", *extra]
    if model is not None:
        args += ["--model", str(model)]
    return main(args)


def _run(recipe: dict, folder, capsys) -> dict:
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    capsys.readouterr()
    assert main(["run", str(path), "--json", "--quiet"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def _recipe(out, encoders: dict, normalize, runs, epochs: int = 3) -> dict:
    return {"mmtk": 1, "name": "byod", "seed": 0,
            "data": {"type": "arrays", "root": str(out), "allow_missing_modalities": True,
                     "normalize": normalize},
            "missing": {"train": {"type": "none"}, "eval": {"type": "none"}},
            "model": {"latent_dim": 16, "encoders": encoders, "fuser": {"type": "concat"},
                      "head": {"type": "mlp"}},
            "train": {"epochs": epochs, "batch_size": 4, "patience": None, "device": "cpu",
                      "optimizer": {"type": "adam", "lr": 3e-3}},
            "output": {"dir": str(runs)}}


def _test_war(results) -> float:
    return results["summary"]["test"]["full"]["war"]["mean"]


def _needs_arrays(system):
    if ("dataset", "arrays") not in {(s.kind, s.name) for s in system.registry.list("dataset")}:
        pytest.fail("dataset/arrays (plugin mmtk_datasets) is not registered; the extract output "
                    "format is written for it")


@pytest.mark.slow
def test_extracted_features_train_a_recipe(raw_data, tiny_audio_model, tiny_bert, system, capsys):
    _needs_arrays(system)
    out = raw_data / "features"
    assert _extract("audio", tiny_audio_model, raw_data, out) == 1          # calm1.wav is broken
    assert _extract("audio", tiny_audio_model, raw_data, out, "--skip-bad") == 0
    assert _extract("text", tiny_bert, raw_data, out, "--skip-bad", "--pooling", "none") == 0
    manifest = json.loads((out / "manifest.json").read_text())["modalities"]
    assert list(manifest["audio"]["problems"]) == ["calm1"]
    assert manifest["text"]["problems"] == {"excited2": "empty transcript"}

    # the failed ids are absent for that modality only: the sample keeps its other modality
    arrays = system.registry.get("dataset", "arrays").obj(root=out, allow_missing_modalities=True)
    splits = arrays.load()
    train = splits.train
    present = {sid: dict(zip(train.modalities, row.tolist())) for sid, row in zip(train.ids, train.present)}
    assert present["calm1"] == {"audio": False, "text": True}
    assert present["excited2"] == {"audio": True, "text": False}
    assert splits.in_dims == {"audio": 32, "text": 32} and train.inputs["text"].dim() == 3

    results = _run(_recipe(out, {"audio": {"type": "mlp"}, "text": {"type": "lstm"}}, True,
                           raw_data / "runs", epochs=30), raw_data, capsys)
    assert _test_war(results) == 1.0, results["summary"]["test"]   # tones and words separate the classes


@pytest.mark.slow
def test_raw_inputs_train_hf_encoders(raw_data, tiny_audio_model, tiny_bert, system, capsys):
    """--raw token ids and waveforms, encoded in the loop by hf_text / hf_audio (paths relative
    to the recipe file)."""
    _needs_arrays(system)
    out = raw_data / "inputs"
    assert _extract("audio", None, raw_data, out, "--raw", "--skip-bad") == 0
    assert _extract("text", tiny_bert, raw_data, out, "--raw", "--skip-bad") == 0
    (raw_data / "bert").symlink_to(tiny_bert, target_is_directory=True)
    (raw_data / "w2v").symlink_to(tiny_audio_model, target_is_directory=True)
    encoders = {"audio": {"type": "hf_audio", "model": "w2v", "freeze": False},
                "text": {"type": "hf_text", "model": "bert", "pooling": "cls"}}
    results = _run(_recipe(out, encoders, False, raw_data / "runs"), raw_data, capsys)
    assert 0.0 <= _test_war(results) <= 1.0
    saved = yaml.safe_load(next((raw_data / "runs").rglob("recipe.yaml")).read_text())
    assert saved["model"]["encoders"]["text"]["type"] == "hf_text"
