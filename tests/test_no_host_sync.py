"""No host sync in a training step: stage 1 and stage 2 (meta-embedding, centroids, disc_centroids) of
the tiny Digits runs drive ``train_one_epoch`` with every tensor the step gets from the "device" wrapped
in a tensor subclass that records each read back to the host (``.item()``, ``.tolist()``, ``bool()``,
``nonzero``, ``bincount``, ``.cpu()``...). On a GPU each such read waits for the device's queue.

The CUDA settings of the loop are used (``checks_each_step`` False: the losses stay on the device
between logged steps); reads at the end of the epoch (the mean losses) are outside the steps. Where
CUDA is present the same steps also run under ``torch.cuda.set_sync_debug_mode("error")``.
"""

import traceback

import pytest
import torch
from conftest import tiny_opts

from oltr.cli import main
from oltr.config.schema import load_config
from oltr.engine.distributed import DistContext
from oltr.runs import trainer

STAGE_1 = "config/Digits_LT/stage_1.py"
STAGE_2 = "config/Digits_LT/stage_2_meta_embedding.py"
STEPS = 3
T = torch.Tensor
READS = {
    T.item, T.tolist, T.__bool__, T.__int__, T.__float__, T.__index__, T.numpy, T.cpu, T.nonzero,
    torch.nonzero, T.bincount, torch.bincount, T.unique, torch.unique, torch.masked_select, T.masked_select,
    torch.equal, torch.allclose, T.__format__, T.__repr__, torch.repeat_interleave, T.repeat_interleave,
}  # fmt: skip
pytestmark = pytest.mark.usefixtures("one_torch_thread")


class OnDevice(torch.Tensor):
    """A CPU tensor standing for a device tensor: whatever is computed from it is one too."""

    reads = None  # a list while a step runs

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in READS and cls.reads is not None:
            cls.reads.append(f"{getattr(func, '__name__', func)} at {traceback.format_stack(limit=3)[0].strip()}")
        return super().__torch_function__(func, types, args, kwargs or {})


def _upload(tensor, device, channels_last=False):
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    return tensor.to(device, memory_format=memory_format).as_subclass(OnDevice)


class _StepsOnly:
    """The training loader's first STEPS batches; reads count from a batch's arrival to the next request."""

    def __init__(self, loader):
        self.loader = loader
        self.sampler, self.generator = loader.sampler, loader.generator
        self.batch_sampler = getattr(loader, "batch_sampler", None)

    def __iter__(self):
        for step, batch in enumerate(self.loader):
            if step == STEPS:
                break
            self.steps = step + 1
            OnDevice.reads = []
            yield batch
            self.reads.extend(OnDevice.reads)
            OnDevice.reads = None
        OnDevice.reads = None


@pytest.fixture(scope="module")
def stage1_dir(tiny_digits_root, tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("stage1")
    assert main(["--config", STAGE_1, "--device", "cpu", "--opts", *tiny_opts(tiny_digits_root, log_dir)]) == 0
    return log_dir


def _reads_in_steps(config_path, data_root, log_dir, stage1_dir, monkeypatch, check_each_step=False):
    opts = tiny_opts(
        data_root, log_dir, **{"training_opt.stage1_log_dir": stage1_dir, "training_opt.display_step": 1000}
    )
    run = trainer.build_run(load_config(config_path, opts), DistContext(), echo=False)
    try:
        loader = _StepsOnly(run.train_loader)
        loader.reads = []
        run.train_loader, run.steps_per_epoch = loader, min(STEPS, run.steps_per_epoch)
        monkeypatch.setattr(trainer, "to_device", _upload)
        monkeypatch.setattr(trainer, "checks_each_step", lambda device: check_each_step)
        losses = trainer.train_one_epoch(run)
    finally:
        run.close()
    assert loader.steps >= 2
    return loader.reads, losses


@pytest.mark.parametrize("config_path", [STAGE_1, STAGE_2])
def test_a_training_step_never_reads_the_device(config_path, tiny_digits_root, stage1_dir, tmp_path, monkeypatch):
    reads, losses = _reads_in_steps(config_path, tiny_digits_root, tmp_path / "run", stage1_dir, monkeypatch)
    assert reads == []
    assert all(torch.isfinite(torch.tensor(value)) for value in losses.values())  # the steps did train
    if config_path == STAGE_2:
        assert losses["feature"] > 0  # disc_centroids ran


def test_the_counter_sees_the_cpu_loop_read_its_losses(tiny_digits_root, stage1_dir, tmp_path, monkeypatch):
    """The CPU's setting reads each step's losses (to stop before a non-finite update): counted."""
    reads, _ = _reads_in_steps(STAGE_1, tiny_digits_root, tmp_path / "run", stage1_dir, monkeypatch, True)
    assert len(reads) >= 2 and all(read.startswith("tolist") for read in reads)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA here; the CPU counter tests cover this path")
@pytest.mark.parametrize("config_path", [STAGE_1, STAGE_2])
def test_cuda_steps_run_under_sync_debug_mode_error(config_path, tiny_digits_root, stage1_dir, tmp_path):
    opts = tiny_opts(tiny_digits_root, tmp_path / "run", **{"training_opt.stage1_log_dir": stage1_dir})
    run = trainer.build_run(load_config(config_path, opts), DistContext(device=torch.device("cuda", 0)), echo=False)
    try:
        iterator = iter(run.train_loader)  # on CUDA: the workers' uint8 crops, finished on the device
        images, labels, _ = next(iterator)
        trainer.train_step(run, images, labels, 0, check=False)  # warm-up: cuDNN, the allocator
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:  # the next batches' device augmentation and steps
            for step, (images, labels, _) in zip(range(1, 3), iterator):
                trainer.train_step(run, images, labels, step, check=False)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    finally:
        run.close()


def test_labels_are_checked_on_the_host_before_the_copy():
    from oltr.common.errors import DataError

    labels = torch.tensor([0, 3, 9])
    assert torch.equal(trainer.checked_labels(labels, 10, torch.device("cpu")), labels)
    for bad, shown in ((torch.tensor([0, 10]), "from 0 to 10"), (torch.tensor([-1, 2]), "from -1 to 2")):
        with pytest.raises(DataError, match=f"{shown}, outside \\[0, 10\\)"):
            trainer.checked_labels(bad, 10, torch.device("cpu"))
