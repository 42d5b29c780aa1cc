"""One atomic writer for checkpoints, results JSON, metrics.jsonl and split files: all or nothing."""

import json

import pytest

from oltr.common.atomic import write_atomic, write_json_atomic, write_text_atomic


def test_text_and_json_round_trip_without_leftovers(tmp_path):
    text = write_text_atomic(tmp_path / "run" / "a.txt", "one\ntwo\n")
    assert text.read_bytes() == b"one\ntwo\n"
    path = write_json_atomic(tmp_path / "run" / "b.json", {"top1": 0.5}, indent=2)
    assert json.loads(path.read_text()) == {"top1": 0.5} and path.read_text().endswith("}\n")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["a.txt", "b.json"]


def test_a_failed_write_keeps_the_old_file_and_removes_its_temp_file(tmp_path):
    path = write_text_atomic(tmp_path / "split.txt", "old 0\n")

    def fails_halfway(handle):
        handle.write("new")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomic(path, fails_halfway)
    assert path.read_text() == "old 0\n"
    assert [p.name for p in tmp_path.iterdir()] == ["split.txt"]
