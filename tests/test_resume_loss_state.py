"""Loss state buffers survive --resume bit for bit: seesaw's online class counts.

A stage-1 run on the tiny Digits split with seesaw as the performance loss is interrupted by an
exception inside its second epoch and resumed; its checkpoints must equal an uninterrupted run's.
"""

from pathlib import Path

import pytest
import torch

from oltr.common import run_files
from oltr.config.schema import load_config
from oltr.engine.distributed import DistContext
from oltr.runs import trainer

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]

REPO = Path(__file__).resolve().parents[1]


class _Interrupted(Exception):
    pass


def _config(data, log_dir):
    return load_config(
        REPO / "config/Digits_LT/stage_1.py",
        [
            f"training_opt.data_root={data}",
            f"training_opt.split_dir={data}",
            "training_opt.dataset=Tiny",
            f"training_opt.log_dir={log_dir}",
            "training_opt.num_epochs=3",
            "training_opt.batch_size=8",
            "criterions.PerformanceLoss.loss=seesaw",
        ],
    )


def _checkpoint(log_dir, name):
    return torch.load(Path(log_dir) / name, map_location="cpu", weights_only=True)


def test_seesaw_counts_survive_resume_bit_for_bit(tiny_digits_root, tmp_path, monkeypatch):
    uninterrupted, interrupted = tmp_path / "uninterrupted", tmp_path / "interrupted"
    trainer.fit(_config(tiny_digits_root, uninterrupted), DistContext(), echo=False)

    real_step = trainer.train_step

    def failing_step(run, images, labels, step, **options):
        if run.epoch == 1 and step == 2:
            raise _Interrupted
        return real_step(run, images, labels, step, **options)

    monkeypatch.setattr(trainer, "train_step", failing_step)
    with pytest.raises(_Interrupted):
        trainer.fit(_config(tiny_digits_root, interrupted), DistContext(), echo=False)
    monkeypatch.setattr(trainer, "train_step", real_step)
    assert _checkpoint(interrupted, run_files.LAST_CHECKPOINT)["epoch"] == 0
    trainer.fit(_config(tiny_digits_root, interrupted), DistContext(), resume=True, echo=False)

    for name in (run_files.LAST_CHECKPOINT, run_files.FINAL_CHECKPOINT):
        reference, resumed = _checkpoint(uninterrupted, name), _checkpoint(interrupted, name)
        counts = reference["losses"]["PerformanceLoss"]["seen_counts"]
        assert counts.dtype == torch.float64
        assert torch.equal(counts, resumed["losses"]["PerformanceLoss"]["seen_counts"])
        for network, tensors in reference["networks"].items():
            for key, value in tensors.items():
                assert torch.equal(value, resumed["networks"][network][key]), (name, network, key)
    # Every image of every training step was counted once: 3 epochs of full batches of 8.
    images = len((tiny_digits_root / "Tiny_train.txt").read_text().splitlines())
    last = _checkpoint(uninterrupted, run_files.LAST_CHECKPOINT)["losses"]["PerformanceLoss"]["seen_counts"]
    assert last.sum().item() == 3 * (images // 8) * 8
