"""A NaN or inf loss stops training with one line naming the epoch, the step and the loss, and the
last good checkpoint (the previous epoch's last_checkpoint.pth) stays byte-identical and resumable.

Divergence is injected in-process by wrapping the performance loss (exact epoch and step), and
also produced for real with an absurd learning rate.
"""

import json
import re
from pathlib import Path

import pytest
import torch

from oltr.cli import main
from oltr.common import run_files
from oltr.engine import optim
from oltr.engine.checkpoint import load_checkpoint
from oltr.runs import trainer

STAGE_1 = "config/Digits_LT/stage_1.py"
NUM_EPOCHS = 3
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data_root(tiny_digits_root):
    return tiny_digits_root


def argv_for(data_root, log_dir, *extra_opts):
    opts = [
        "training_opt.dataset=Tiny",
        f"training_opt.data_root={data_root}",
        f"training_opt.split_dir={data_root}",
        f"training_opt.log_dir={log_dir}",
        f"training_opt.num_epochs={NUM_EPOCHS}",
        "training_opt.batch_size=16",
        "training_opt.num_workers=0",
    ]
    return ["--config", STAGE_1, "--opts", *opts, *extra_opts]


class BreaksAt(torch.nn.Module):
    """The wrapped loss, times ``value`` (nan or inf) from 0-based ``epoch`` and 1-based ``step`` on.

    It learns the epoch from ``set_progress(t)``, which the trainer calls at each epoch start with
    t = epoch / (num_epochs - 1).
    """

    def __init__(self, loss, epoch, step, value):
        super().__init__()
        self.loss, self.epoch_to_break, self.step_to_break, self.value = loss, epoch, step, value
        self.epoch, self.step = 0, 0

    def set_progress(self, t):
        self.epoch, self.step = round(t * (NUM_EPOCHS - 1)), 0

    def forward(self, logits, targets):
        self.step += 1
        loss = self.loss(logits, targets)
        if (self.epoch, self.step) >= (self.epoch_to_break, self.step_to_break):
            loss = loss * self.value
        return loss


@pytest.fixture
def diverge(monkeypatch):
    """``diverge(epoch, step, value)`` makes the next run's loss non-finite from there on; it returns
    the bytes of last_checkpoint.pth as each ``save_last`` left them."""
    saved = []

    def arm(epoch, step, value):
        build_criterions, save_last = optim.build_criterions, trainer.save_last

        def breaking_criterions(config, class_counts):
            criterions = build_criterions(config, class_counts)
            performance = criterions["PerformanceLoss"]
            criterions["PerformanceLoss"] = optim.Criterion(
                BreaksAt(performance.module, epoch, step, value), performance.weight
            )
            return criterions

        def recording_save_last(run):
            save_last(run)
            saved.append(
                (run.epoch, (Path(run.config["training_opt"]["log_dir"]) / run_files.LAST_CHECKPOINT).read_bytes())
            )

        monkeypatch.setattr(optim, "build_criterions", breaking_criterions)
        monkeypatch.setattr(trainer, "save_last", recording_save_last)
        return saved

    return arm


def test_nan_at_epoch_2_keeps_the_epoch_1_checkpoint(data_root, tmp_path, capsys, diverge):
    saved = diverge(epoch=1, step=2, value=float("nan"))
    code = main(argv_for(data_root, tmp_path))
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.count("\n") == 1
    assert err.startswith("error: loss became nan at epoch 2, step 2 (performance nan"), err
    assert f"{tmp_path / run_files.LAST_CHECKPOINT} (epoch 1) is the last good checkpoint" in err
    assert "start over with lower learning rates" in err
    # Exactly one epoch finished: its checkpoint is on disk unchanged, and it loads.
    assert [epoch for epoch, _ in saved] == [0]
    last = tmp_path / run_files.LAST_CHECKPOINT
    assert last.read_bytes() == saved[0][1]
    state = load_checkpoint(last)
    assert state["epoch"] == 0 and len(state["history"]) == 1
    assert all(torch.isfinite(t).all() for t in state["networks"]["feat_model"].values() if t.is_floating_point())
    assert not (tmp_path / run_files.FINAL_CHECKPOINT).exists()
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [record["epoch"] for record in records] == [1]


def test_resume_after_divergence_finishes_from_the_kept_checkpoint(data_root, tmp_path, capsys, diverge, monkeypatch):
    diverge(epoch=1, step=1, value=float("inf"))
    assert main(argv_for(data_root, tmp_path)) == 2
    assert "loss became inf at epoch 2, step 1" in capsys.readouterr().err
    monkeypatch.undo()  # the loss is healthy again
    assert main(["--resume", *argv_for(data_root, tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"resumed from {tmp_path / run_files.LAST_CHECKPOINT} at epoch 2" in out
    final = load_checkpoint(tmp_path / run_files.FINAL_CHECKPOINT)
    assert [record["epoch"] for record in final["metrics"]["history"]] == [1, 2, 3]


def test_non_finite_loss_with_debug_reraises(data_root, tmp_path, diverge):
    diverge(epoch=0, step=1, value=float("nan"))
    with pytest.raises(trainer.NonFiniteLossError, match="epoch 1, step 1"):
        main(["--debug", *argv_for(data_root, tmp_path)])
    assert not (tmp_path / run_files.LAST_CHECKPOINT).exists()


def test_absurd_learning_rate_really_diverges(data_root, tmp_path, capsys):
    lr = "1e12"  # scientific notation is a number in --opts
    code = main(
        argv_for(
            data_root,
            tmp_path,
            f"networks.feat_model.optim_params.lr={lr}",
            f"networks.classifier.optim_params.lr={lr}",
        )
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert re.match(r"error: loss became (nan|inf) at epoch \d+, step \d+ \(", err), err
    assert "start over with lower learning rates" in err
    assert not (tmp_path / run_files.FINAL_CHECKPOINT).exists()


def test_nan_in_the_first_epoch_says_there_is_no_checkpoint(data_root, tmp_path, capsys, diverge):
    saved = diverge(epoch=0, step=1, value=float("inf"))
    assert main(argv_for(data_root, tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: loss became inf at epoch 1, step 1"), err
    assert "no epoch finished, so there is no checkpoint" in err
    assert saved == [] and not (tmp_path / run_files.LAST_CHECKPOINT).exists()


def test_the_deferred_check_of_cuda_runs_names_the_first_bad_step(data_root, tmp_path, capsys, diverge, monkeypatch):
    """On CUDA the steps are not read one by one; the check at the next logged step names the first bad one."""
    monkeypatch.setattr(trainer, "checks_each_step", lambda device: False)
    saved = diverge(epoch=1, step=2, value=float("inf"))
    code = main(argv_for(data_root, tmp_path, "training_opt.display_step=3"))
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1
    assert err.startswith("error: loss became non-finite at epoch 2, step 2;"), err
    assert f"{tmp_path / run_files.LAST_CHECKPOINT} (epoch 1) is the last good checkpoint" in err
    assert [epoch for epoch, _ in saved] == [0] and (tmp_path / run_files.LAST_CHECKPOINT).read_bytes() == saved[0][1]
