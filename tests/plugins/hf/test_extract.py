"""``mmtk extract``: formats, per-id problems, resuming, manifests, reading raw media."""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch

from mmtk.cli import main
from mmtk_hf import arrays as arrays_module
from mmtk_hf.media import BadSample, read_frames, read_wav


def _h5(path):
    with h5py.File(path, "r") as f:
        return {k: f[k][()] for k in f}


def _manifest(out, modality):
    return json.loads((out / "manifest.json").read_text())["modalities"][modality]


@pytest.fixture
def wav_folder(tmp_path, hf_helpers):
    folder = tmp_path / "wavs"
    folder.mkdir()
    for i in range(5):
        hf_helpers.write_wav(folder / f"u{i}.wav", hf_helpers.tone(200 + 100 * i, 0.3, seed=i))
    return folder


# ----------------------------------------------------------------------------- text

def test_text_features_tokens_and_empty_transcripts(tmp_path, tiny_bert, capsys):
    csv = tmp_path / "transcripts.csv"
    csv.write_text('id,text\na1,i am so happy today\na2,"  "\na3,"sad, very sad"\na4,great news\n')
    labels = tmp_path / "labels.csv"
    labels.write_text("id,label\na1,happy\na2,neutral\na3,sad\na4,happy\n")
    out = tmp_path / "features"
    base = ["extract", "--modality", "text", "--model", str(tiny_bert), "--input", str(csv), "--quiet"]

    assert main(base + ["--out", str(out), "--labels", str(labels)]) == 1     # a2 is empty
    err = capsys.readouterr().err
    assert "a2: empty transcript" in err and "--skip-bad" in err
    feats = _h5(out / "text.h5")
    assert sorted(feats) == ["a1", "a3", "a4"] and feats["a1"].shape == (32,)
    assert feats["a1"].dtype == np.float32
    entry = _manifest(out, "text")
    assert entry["problems"] == {"a2": "empty transcript"}
    assert entry["model_class"] == "BertModel" and entry["layer"] == -1 and entry["pooling"] == "mean"
    assert {"mmtk", "transformers", "torch"} <= set(entry["versions"])
    assert (out / "labels.csv").read_text().splitlines()[0] == "id,label"

    # sequences (T, D) and token ids (T, 1) int64, in other folders
    assert main(base + ["--out", str(tmp_path / "seq"), "--pooling", "none", "--skip-bad"]) == 0
    seq = _h5(tmp_path / "seq" / "text.h5")
    assert seq["a1"].shape == (7, 32)        # [CLS] i am so happy today [SEP]
    assert main(base + ["--out", str(tmp_path / "tok"), "--raw", "--skip-bad"]) == 0
    tok = _h5(tmp_path / "tok" / "text.h5")
    assert tok["a1"].dtype == np.int64 and tok["a1"].shape == (7, 1)
    assert tok["a1"][0, 0] == 2 and tok["a1"][-1, 0] == 3                      # [CLS] ... [SEP]
    assert _manifest(tmp_path / "tok", "text")["kind"] == "inputs"


def test_text_layer_cls_and_bad_options(tmp_path, tiny_bert, capsys):
    csv = tmp_path / "t.csv"
    csv.write_text("id,text\nx,i feel great\n")
    base = ["extract", "--modality", "text", "--model", str(tiny_bert), "--input", str(csv), "--quiet"]
    assert main(base + ["--out", str(tmp_path / "a"), "--layer", "0", "--pooling", "cls"]) == 0
    assert main(base + ["--out", str(tmp_path / "b"), "--layer", "-1", "--pooling", "cls"]) == 0
    assert not np.allclose(_h5(tmp_path / "a" / "text.h5")["x"], _h5(tmp_path / "b" / "text.h5")["x"])
    assert main(base + ["--out", str(tmp_path / "c"), "--layer", "5"]) == 2
    assert "layer 5 does not exist; this model has 2 layers" in capsys.readouterr().err
    assert main(base + ["--out", str(tmp_path / "d"), "--raw", "--pooling", "mean"]) == 2
    assert "--raw writes model inputs" in capsys.readouterr().err
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("name,transcript\nx,hello\n")
    assert main(["extract", "--modality", "text", "--model", str(tiny_bert), "--input", str(bad_csv),
                 "--out", str(tmp_path / "e")]) == 2
    assert "header 'id,text'" in capsys.readouterr().err
    dup = tmp_path / "dup.csv"
    dup.write_text("id,text\nx,hello\nx,again\n")
    assert main(base[:-3] + ["--input", str(dup), "--out", str(tmp_path / "f")]) == 2
    assert "id 'x' appears twice (lines 2 and 3)" in capsys.readouterr().err


def test_minilm_extraction_gives_sentence_embeddings(tmp_path, minilm):
    csv = tmp_path / "t.csv"
    csv.write_text("id,text\nh1,I am so happy to see you!\nh2,\"This is wonderful news, I'm delighted.\"\n"
                   "n1,The invoice is attached.\n")
    out = tmp_path / "f"
    assert main(["extract", "--modality", "text", "--model", str(minilm), "--input", str(csv),
                 "--out", str(out), "--quiet"]) == 0
    e = {k: v / np.linalg.norm(v) for k, v in _h5(out / "text.h5").items()}
    assert e["h1"].shape == (384,)
    assert e["h1"] @ e["h2"] > e["h1"] @ e["n1"] + 0.1
    assert _manifest(out, "text")["num_layers"] == 6


# ----------------------------------------------------------------------------- audio

def test_audio_problems_are_reported_per_id(tmp_path, wav_folder, tiny_audio_model, hf_helpers, capsys):
    (wav_folder / "broken.wav").write_bytes(b"RIFF....not really")
    (wav_folder / "song.mp3").write_bytes(b"ID3")
    (wav_folder / "empty.wav").write_bytes(b"")
    hf_helpers.write_wav(wav_folder / "slow.wav", hf_helpers.tone(300, 0.3, rate=8000), rate=8000)
    out = tmp_path / "f"
    args = ["extract", "--modality", "audio", "--model", str(tiny_audio_model), "--input", str(wav_folder),
            "--out", str(out), "--quiet"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "3 id(s) could not be extracted" in err
    problems = _manifest(out, "audio")["problems"]
    assert set(problems) == {"broken", "song", "empty"}
    assert "PCM WAV" in problems["broken"] and "mp3, not WAV" in problems["song"]
    feats = _h5(out / "audio.h5")
    assert sorted(feats) == ["slow", "u0", "u1", "u2", "u3", "u4"] and feats["u0"].shape == (32,)
    assert _manifest(out, "audio")["resampled"] == ["slow"]
    # the same command again retries only the failed ids, and --skip-bad accepts them
    assert main(args + ["--skip-bad"]) == 0
    assert "wrote 0 id(s)" in capsys.readouterr().out


def test_audio_resumes_after_interruption(tmp_path, wav_folder, tiny_audio_model, monkeypatch, capsys):
    args = ["extract", "--modality", "audio", "--model", str(tiny_audio_model), "--input", str(wav_folder),
            "--out", str(tmp_path / "f"), "--batch-size", "2", "--pooling", "none", "--quiet"]
    fresh = ["extract", "--modality", "audio", "--model", str(tiny_audio_model), "--input", str(wav_folder),
             "--out", str(tmp_path / "fresh"), "--pooling", "none", "--quiet"]
    assert main(fresh) == 0
    original = arrays_module.ArraysWriter.write
    calls = []

    def interrupt_third(self, sample_id, array):
        calls.append(sample_id)
        if len(calls) == 3:
            raise KeyboardInterrupt
        original(self, sample_id, array)

    monkeypatch.setattr(arrays_module.ArraysWriter, "write", interrupt_third)
    assert main(args) == 130
    assert "run the same command again to continue" in capsys.readouterr().err
    assert sorted(_h5(tmp_path / "f" / "audio.h5")) == ["u0", "u1"]            # valid, flushed file
    assert _manifest(tmp_path / "f", "audio")["status"] == "interrupted"
    monkeypatch.setattr(arrays_module.ArraysWriter, "write", original)
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "wrote 3 id(s)" in printed and "(2 already there)" in printed
    resumed, reference = _h5(tmp_path / "f" / "audio.h5"), _h5(tmp_path / "fresh" / "audio.h5")
    assert sorted(resumed) == sorted(reference)
    for k in reference:
        assert resumed[k].ndim == 2 and np.allclose(resumed[k], reference[k], atol=1e-5)
    assert _manifest(tmp_path / "f", "audio")["status"] == "complete"
    # other settings into the same file are refused, --overwrite starts again
    assert main(args[:-3] + ["--pooling", "mean", "--quiet"]) == 2
    assert "extracted with other settings (pooling: 'none' -> 'mean')" in capsys.readouterr().err
    assert main(args[:-3] + ["--pooling", "mean", "--quiet", "--overwrite"]) == 0
    assert _h5(tmp_path / "f" / "audio.h5")["u0"].shape == (32,)


def test_raw_audio_without_model_and_label_conflicts(tmp_path, wav_folder, capsys):
    labels = tmp_path / "labels.csv"
    labels.write_text("id,label\nu0,a\n")
    out = tmp_path / "raw"
    assert main(["extract", "--modality", "audio", "--raw", "--input", str(wav_folder), "--out", str(out),
                 "--labels", str(labels), "--quiet"]) == 0
    wave = _h5(out / "audio.h5")["u0"]
    assert wave.shape == (4800, 1) and wave.dtype == np.float32
    assert _manifest(out, "audio")["sample_rate"] == 16000
    other = tmp_path / "other.csv"
    other.write_text("id,label\nu0,b\n")
    assert main(["extract", "--modality", "audio", "--raw", "--input", str(wav_folder), "--out", str(out),
                 "--labels", str(other), "--quiet"]) == 2
    assert "already exists with different content" in capsys.readouterr().err
    assert main(["extract", "--modality", "audio", "--input", str(wav_folder), "--out", str(out)]) == 2
    assert "needs --model" in capsys.readouterr().err


def test_read_wav_formats_and_resampling(tmp_path, hf_helpers):
    x = hf_helpers.tone(440, 0.25, rate=16000, amp=0.8)
    for width in (1, 2, 3, 4):
        path = hf_helpers.write_wav(tmp_path / f"w{width}.wav", x, width=width)
        y, rate = read_wav(path, 16000)
        assert rate == 16000 and y.shape == x.shape
        assert np.abs(y - x).max() < (0.02 if width == 1 else 1e-3), width
    stereo = np.stack([x, -x * 0 + x], 1).reshape(-1)                          # two equal channels
    y, _ = read_wav(hf_helpers.write_wav(tmp_path / "st.wav", stereo, channels=2), 16000)
    assert y.shape == x.shape and np.abs(y - x).max() < 1e-3
    slow = hf_helpers.tone(440, 0.5, rate=8000, amp=0.8)
    y, rate = read_wav(hf_helpers.write_wav(tmp_path / "8k.wav", slow, rate=8000), 16000)
    assert rate == 8000 and len(y) == 8000
    peak = np.argmax(np.abs(np.fft.rfft(y))) * 16000 / len(y)
    assert abs(peak - 440) < 3, "resampling must keep the pitch"
    (tmp_path / "junk.wav").write_bytes(b"junk")
    with pytest.raises(BadSample, match="cannot read .* as a PCM WAV file"):
        read_wav(tmp_path / "junk.wav", 16000)


# ----------------------------------------------------------------------------- visual

def test_visual_frames(tmp_path, tiny_vit, capsys):
    frames = tmp_path / "frames"
    rng = np.random.default_rng(0)
    for vid, n in (("v1", 3), ("v2", 2)):
        (frames / vid).mkdir(parents=True)
        for j in range(n):
            np.save(frames / vid / f"frame{j}.npy", rng.integers(0, 256, (20, 24, 3), dtype=np.uint8))
    np.save(frames / "v2" / "frame10.npy", rng.random((20, 24)).astype(np.float32))   # grey, [0, 1]
    (frames / "v3").mkdir()                                                           # no frames
    (frames / "v4").mkdir()
    np.save(frames / "v4" / "f.npy", np.full((8, 8, 3), 300.0))                       # not [0, 1]
    base = ["extract", "--modality", "visual", "--model", str(tiny_vit), "--input", str(frames), "--quiet"]
    assert main(base + ["--out", str(tmp_path / "seq"), "--pooling", "none", "--batch-size", "2"]) == 1
    problems = _manifest(tmp_path / "seq", "visual")["problems"]
    assert set(problems) == {"v3", "v4"}
    assert "contains no frames" in problems["v3"] and "outside [0, 1]" in problems["v4"]
    seq = _h5(tmp_path / "seq" / "visual.h5")
    assert seq["v1"].shape == (3, 32) and seq["v2"].shape == (3, 32)
    assert main(base + ["--out", str(tmp_path / "mean"), "--skip-bad", "--max-frames", "2"]) == 0
    assert _h5(tmp_path / "mean" / "visual.h5")["v1"].shape == (32,)
    assert main(base + ["--out", str(tmp_path / "raw"), "--raw", "--skip-bad"]) == 0
    raw = _h5(tmp_path / "raw" / "visual.h5")
    assert raw["v1"].shape == (3, 3 * 16 * 16) and raw["v2"].shape == (3, 768)
    assert main(base + ["--out", str(tmp_path / "x"), "--pooling", "cls"]) == 2
    assert "--patch-pooling cls" in capsys.readouterr().err


def test_read_frames_orders_naturally(tmp_path):
    for j in (10, 2, 1):
        np.save(tmp_path / f"f{j}.npy", np.full((4, 4), j, dtype=np.uint8))
    got = [int(round(f[0, 0, 0] * 255)) for f in read_frames(tmp_path)]
    assert got == [1, 2, 10]


def test_raw_inputs_through_encoders_equal_extracted_features(tmp_path, tiny_bert, tiny_vit,
                                                              tiny_audio_model, wav_folder):
    """--raw output fed to a frozen hf_* encoder's backbone gives exactly the extracted features."""
    import torch

    from mmtk_hf.backbones import masked_pool
    from mmtk_hf.encoders import HFAudioEncoder, HFTextEncoder, HFVisualEncoder

    csv = tmp_path / "t.csv"
    csv.write_text("id,text\nx,i am so happy\ny,gloomy news today\n")
    frames = tmp_path / "frames" / "v"
    frames.mkdir(parents=True)
    for j in range(3):
        np.save(frames / f"{j}.npy", np.random.default_rng(j).integers(0, 256, (20, 20, 3), dtype=np.uint8))
    cases = [("text", tiny_bert, csv, HFTextEncoder, "x"),
             ("audio", tiny_audio_model, wav_folder, HFAudioEncoder, "u1"),
             ("visual", tiny_vit, tmp_path / "frames", HFVisualEncoder, "v")]
    for modality, model, source, cls, sid in cases:
        common = ["extract", "--modality", modality, "--model", str(model), "--input", str(source), "--quiet"]
        assert main(common + ["--out", str(tmp_path / f"{modality}_raw"), "--raw"]) == 0
        assert main(common + ["--out", str(tmp_path / f"{modality}_feat")]) == 0
        raw = torch.from_numpy(_h5(tmp_path / f"{modality}_raw" / f"{modality}.h5")[sid])[None]
        feat = _h5(tmp_path / f"{modality}_feat" / f"{modality}.h5")[sid]
        enc = cls(1, 4, model).eval()
        with torch.no_grad():
            if modality == "visual":
                hidden, mask = enc.backbone(enc._frames(raw)[0])
                got = masked_pool(hidden, mask, "cls").mean(0)
            else:
                hidden, mask = enc.backbone(raw.squeeze(-1), torch.tensor([raw.shape[1]]))
                got = masked_pool(hidden, mask, "mean")[0]
        assert np.allclose(got.numpy(), feat, atol=1e-5), modality


# ----------------------------------------------------------------------------- the format

def test_what_the_writer_writes_the_arrays_dataset_reads(tmp_path):
    """One definition of the format (mmtk.arrays_format): the extract writer's files, labels
    (ids that need CSV quoting) and manifest are read back by the datasets plugin's reader;
    token ids written as model inputs stay integers, features are floats."""
    from mmtk_datasets.arrays import Arrays

    ids = [f"clip,{i}" if i % 4 == 0 else f'say "{i}"' if i % 4 == 1 else f"u{i}" for i in range(12)]
    labels = tmp_path / "in.csv"
    labels.write_text("id,label\n" + "".join(
        f'"{i.replace(chr(34), chr(34) * 2)}",{"calm" if n % 2 else "angry"}\n' for n, i in enumerate(ids)))
    out = tmp_path / "out"
    assert arrays_module.copy_table(labels, out, arrays_module.fmt.LABELS, "labels") == 12
    tokens = arrays_module.ArraysWriter(out, "text", {"kind": "inputs"})
    feats = arrays_module.ArraysWriter(out, "audio", {"kind": "features"})
    rng = np.random.default_rng(0)
    for n, sid in enumerate(ids):
        tokens.write(sid, np.arange(1, n % 3 + 2, dtype=np.int64)[:, None])
        feats.write(sid, rng.normal(size=(4,)).astype(np.float32))
    tokens.close("complete", {})
    feats.close("complete", {})
    splits = Arrays(root=out, test_fraction=0.5).load()
    assert sorted(splits.train.ids + splits.test.ids) == sorted(ids)
    assert splits.class_names == ["angry", "calm"]
    assert splits.train.inputs["text"].dtype == torch.long
    assert splits.train.inputs["audio"].dtype == torch.float32
    for row, sid in enumerate(splits.train.ids):
        t = ids.index(sid) % 3 + 1
        assert splits.train.lengths["text"][row] == t
        assert splits.train.inputs["text"][row, :t, 0].tolist() == list(range(1, t + 1))
    # both writers were open at once: neither manifest entry was lost
    assert splits.info["token_ids"] == ["text"]
    assert _manifest(out, "audio")["status"] == _manifest(out, "text")["status"] == "complete"
