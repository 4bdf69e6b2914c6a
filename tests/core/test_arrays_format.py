"""mmtk.arrays_format: the one definition of the arrays format's tables and manifest."""
from __future__ import annotations

import json

import pytest

from mmtk import arrays_format as fmt
from mmtk.errors import DataError


def test_tables_round_trip_values_that_need_quoting(tmp_path):
    rows = [("a,b", "x"), ('say "hi"', "y"), ("cr\rid", "z"), ("plain", " padded ")]
    path = tmp_path / fmt.LABELS.name
    path.write_text(fmt.format_table(fmt.LABELS.header, rows), encoding="utf-8")
    back = fmt.read_table(path, fmt.LABELS.header, "test")
    assert [(a, b) for _, a, b in back] == [(a, b.strip()) for a, b in rows]
    assert [line for line, _, _ in back] == [2, 3, 4, 6]      # the quoted CR spans a line


def test_tables_name_the_file_and_line_of_a_bad_header_or_row(tmp_path):
    path = tmp_path / "splits.csv"
    path.write_text("id;split\na;train\n")
    with pytest.raises(DataError, match=r"splits\.csv must start with the header 'id,split'"):
        fmt.read_table(path, fmt.SPLITS.header, "test")
    path.write_text("id,split\na,train\nb\n")
    with pytest.raises(DataError, match=r"splits\.csv: line 3 should be 'id,split'"):
        fmt.read_table(path, fmt.SPLITS.header, "test")


def test_manifest_token_ids_are_integer_model_inputs_only(tmp_path):
    assert fmt.read_manifest(tmp_path) == fmt.empty_manifest()
    entries = {"text": {"kind": "inputs", "dtype": "int64"}, "audio": {"kind": "inputs", "dtype": "float32"},
               "visual": {"kind": "features", "dtype": "int16"}, "other": {"kind": "inputs", "dtype": "?!"}}
    fmt.write_manifest(tmp_path, {**fmt.empty_manifest(), "modalities": entries})
    manifest = fmt.read_manifest(tmp_path)
    assert [m for m in entries if fmt.holds_token_ids(manifest, m)] == ["text"]
    (tmp_path / fmt.MANIFEST).write_text(json.dumps({"modalities": []}))
    with pytest.raises(DataError, match=r"manifest\.json is not an mmtk arrays manifest"):
        fmt.read_manifest(tmp_path)
