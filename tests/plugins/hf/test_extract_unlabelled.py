"""`mmtk extract --unlabeled` writes an unlabelled pool the arrays dataset trains on (label -1)."""
from __future__ import annotations

from mmtk.cli import main
from mmtk_datasets.arrays import Arrays


def test_extract_writes_an_unlabelled_pool_arrays_reads(tmp_path, hf_helpers, capsys):
    wavs = tmp_path / "wavs"
    wavs.mkdir()
    for i in range(8):
        hf_helpers.write_wav(wavs / f"u{i}.wav", hf_helpers.tone(200 + 50 * i, 0.2, seed=i))
    (tmp_path / "labels.csv").write_text("id,label\n" + "".join(f"u{i},{i % 2}\n" for i in range(6)))
    (tmp_path / "pool.txt").write_text("u6\nu7\n")
    out = tmp_path / "out"
    base = ["extract", "--modality", "audio", "--raw", "--input", str(wavs), "--out", str(out), "--quiet"]
    assert main(base + ["--labels", str(tmp_path / "labels.csv"), "--unlabeled", str(tmp_path / "pool.txt")]) == 0
    assert "2 unlabelled id(s)" in capsys.readouterr().out
    splits = Arrays(root=out, pool="mean", test_fraction=0.34).load()
    pool = {sid for sid, y in zip(splits.train.ids, splits.train.labels.tolist()) if y == -1}
    assert pool == {"u6", "u7"} and splits.test.labeled.all()
    (tmp_path / "bad.txt").write_text("u9\n")
    assert main(base + ["--unlabeled", str(tmp_path / "bad.txt")]) == 2
    assert "lists id 'u9', which is not among the --input ids" in capsys.readouterr().err
