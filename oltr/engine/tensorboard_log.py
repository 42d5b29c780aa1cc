"""Training curves for TensorBoard (``training_opt.tensorboard: true``, the ``tb`` extra).

Each epoch's metrics.jsonl record -- which stays the source of truth -- is also written as scalars to
``<log_dir>/tb/`` through torch.utils.tensorboard.SummaryWriter, by rank 0 only: ``loss/total``,
``loss/performance``, ``loss/feature``, ``val/top1``, ``xi`` (the cyclical losses), ``lr/<optimizer>``
and ``throughput/images_per_s``, at step = epoch (1-based, as in metrics.jsonl).
"""

from pathlib import Path

from ..common.errors import ConfigError

TB_DIR = "tb"
_SCALARS = {
    "loss": "loss/total",
    "performance": "loss/performance",
    "feature": "loss/feature",
    "val_top1": "val/top1",
    "xi": "xi",
    "images_per_s": "throughput/images_per_s",
}


def _summary_writer_class():
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError(
            "training_opt.tensorboard is true but tensorboard is not installed; install the tb "
            "extra (pip install -e '.[tb]') or set training_opt.tensorboard=false"
        ) from None
    return SummaryWriter


def check_tensorboard(config):
    """One clear ConfigError, before anything trains, when TensorBoard is asked for but not installed."""
    if config["training_opt"].get("tensorboard"):
        _summary_writer_class()


class TensorBoardLog:
    """Writes each epoch record's scalars; a no-op when off or not rank 0."""

    def __init__(self, config, ctx):
        self.writer = None
        if config["training_opt"].get("tensorboard") and ctx.is_main:
            self.writer = _summary_writer_class()(log_dir=str(Path(config["training_opt"]["log_dir"]) / TB_DIR))

    def epoch(self, record):
        if self.writer is None:
            return
        step = record["epoch"]
        for key, tag in _SCALARS.items():
            if isinstance(record.get(key), (int, float)):
                self.writer.add_scalar(tag, record[key], step)
        for name, rate in (record.get("lr") or {}).items():
            self.writer.add_scalar(f"lr/{name}", rate, step)
        self.writer.flush()

    def close(self):
        if self.writer is not None:
            self.writer.close()
