"""Checkpoints are atomic and loaded with weights_only=True."""

import pytest
import torch

from oltr.common.errors import CheckpointError
from oltr.engine import checkpoint as ckpt


def test_round_trip(tmp_path):
    path = tmp_path / "run" / "c.pth"
    state = {"w": torch.arange(4.0), "epoch": 3, "nested": {"lr": [0.1, 0.01]}}
    ckpt.save_atomic(state, path)
    loaded = ckpt.load_checkpoint(path)
    assert torch.equal(loaded["w"], state["w"]) and loaded["epoch"] == 3 and loaded["nested"] == state["nested"]
    assert [p.name for p in path.parent.iterdir()] == ["c.pth"]  # no temp file left behind


def test_interrupted_write_keeps_last_good_file(tmp_path, monkeypatch):
    path = tmp_path / "last.pth"
    ckpt.save_atomic({"epoch": 1}, path)

    def crash_mid_write(obj, f):
        f.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt  # e.g. Ctrl-C while the file is being written

    monkeypatch.setattr(ckpt.torch, "save", crash_mid_write)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_atomic({"epoch": 2}, path)
    monkeypatch.undo()
    assert ckpt.load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pth"]


def test_missing_and_corrupt_files_are_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        ckpt.load_checkpoint(tmp_path / "nope.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="corrupt or not a PyTorch checkpoint"):
        ckpt.load_checkpoint(bad)


class Arbitrary:
    """Stands for any pickled object a malicious checkpoint could carry."""


def test_arbitrary_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"payload": Arbitrary()}, path)
    with pytest.raises(CheckpointError, match="corrupt or not a PyTorch checkpoint"):
        ckpt.load_checkpoint(path)
