"""The training runs the bench_train_* benchmarks time: modes, runs from a config, batches, step loops.

Every run is built the way ``main.py`` builds one (``load_config`` + ``trainer.build_run``),
with its log directory and any self-building dataset (Digits_LT) in the benchmark's
temporary directory, so nothing lands under logs/ or data/.
"""

import os

import torch
import torch.nn.functional as F
from harness import thread_count

from oltr.config.schema import load_config
from oltr.data import loaders
from oltr.engine.inference import to_device
from oltr.runs import trainer

# mode -> training_opt overrides (+ torch threads); each mode is one thing alone, plus the
# bf16 + channels_last pair. The *_1t modes run on one thread: small convolutions on a
# shared machine can lose more to OpenMP synchronisation than they gain from a second core.
MODES = {
    "fp32": {"amp": "off", "channels_last": False, "compile": False, "threads": None},
    "bf16": {"amp": "bf16", "channels_last": False, "compile": False, "threads": None},
    "channels_last": {"amp": "off", "channels_last": True, "compile": False, "threads": None},
    "bf16_cl": {"amp": "bf16", "channels_last": True, "compile": False, "threads": None},
    "compile": {"amp": "off", "channels_last": False, "compile": True, "threads": None},
    "fp32_1t": {"amp": "off", "channels_last": False, "compile": False, "threads": 1},
    "bf16_cl_1t": {"amp": "bf16", "channels_last": True, "compile": False, "threads": 1},
}
MODE_ALIASES = {"bf16+channels_last": "bf16_cl", "bf16+cl": "bf16_cl", "cl": "channels_last", "off": "fp32"}


def parse_modes(text):
    """The modes of a comma list (aliases allowed), fp32 first: the reference every other mode is compared with."""
    modes = []
    for item in text.split(","):
        item = MODE_ALIASES.get(item.strip(), item.strip())
        if item not in MODES:
            raise SystemExit(f"--modes: unknown mode {item!r}; choose from {', '.join(MODES)}")
        if item not in modes:
            modes.append(item)
    if "fp32" not in modes:
        modes.insert(0, "fp32")
    return modes


def bench_overrides(tmp, name, data_overrides, mode="fp32", loss=None, extra=()):
    """--opts for one benchmark run: a private log dir, the data root, the mode, optionally the loss."""
    opts = MODES[mode]
    overrides = [
        f"training_opt.log_dir={os.path.join(tmp, 'logs', name)}",
        *data_overrides,
        f"training_opt.amp='{opts['amp']}'",  # quoted: YAML reads a bare off as false
        f"training_opt.channels_last={str(opts['channels_last']).lower()}",
        f"training_opt.compile={str(opts['compile']).lower()}",
    ]
    if loss is not None:
        loss_name, params = loss
        overrides += [f"criterions.PerformanceLoss.loss={loss_name}", "criterions.PerformanceLoss.loss_params={}"]
        overrides += [f"criterions.PerformanceLoss.loss_params.{k}={v}" for k, v in params.items()]
    return overrides + list(extra)


def data_overrides_for(config_path, tmp):
    """A dataset that builds itself (Digits_LT) is built in ``tmp``; others are read where the config says."""
    dataset = load_config(config_path)["training_opt"]["dataset"]
    if dataset in loaders.PREPARERS:
        root = os.path.join(tmp, "data", dataset)
        return [f"training_opt.data_root={root}", f"training_opt.split_dir={root}"]
    return []


def make_run(config_path, overrides, ctx, synthetic=False):
    """A real Run; ``synthetic``: it will train on synthetic batches, so its split may lack classes."""
    config = load_config(config_path, overrides)
    return trainer.build_run(config, ctx, echo=False, require_every_class=not synthetic)


def preload_batches(run, count, device):
    """The first ``count`` batches of the run's own training loader, kept on the device."""
    batches = []
    for images, labels, _ in run.train_loader:
        batches.append((images.to(device), labels.to(device)))
        if len(batches) == count:
            break
    return batches


def synthetic_batches(count, batch, size, num_classes, device, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [
        (
            torch.randn(batch, 3, size, size, generator=generator).to(device),
            torch.randint(0, num_classes, (batch,), generator=generator).to(device),
        )
        for _ in range(count)
    ]


class TrainerSteps:
    """Calls oltr's train_step over pre-loaded batches, as train_one_epoch would (to_device included)."""

    def __init__(self, run, batches, threads=None):
        self.run = run
        self.threads = threads
        self.batches = batches
        self.device = run.ctx.device
        self.channels_last = run.config["training_opt"]["channels_last"]
        self.step = 0
        self.losses = []
        run.train_model.train()
        for criterion in run.criterions.values():
            criterion.module.train()

    def __call__(self, steps):
        with thread_count(self.threads):
            for _ in range(steps):
                images, labels = self.batches[self.step % len(self.batches)]
                parts = trainer.train_step(
                    self.run, to_device(images, self.device, self.channels_last), labels, self.step
                )
                self.losses.append(parts["loss"])
                self.step += 1


class BareSteps:
    """The textbook loop: forward, F.cross_entropy, backward, one SGD step, read the loss."""

    def __init__(self, network, config, batches):
        self.network = network.train()
        self.batches = batches
        groups = []
        for name in ("feat_model", "classifier"):
            optim = config["networks"][name]["optim_params"]
            groups.append(
                {
                    "params": list(getattr(network, name).parameters()),
                    "lr": optim["lr"],
                    "momentum": optim["momentum"],
                    "weight_decay": optim["weight_decay"],
                    "nesterov": optim["nesterov"],
                }
            )
        self.optimizer = torch.optim.SGD(groups)
        self.step = 0
        self.losses = []

    def train_batch(self, images, labels):
        self.optimizer.zero_grad(set_to_none=True)
        logits, _ = self.network(images)
        loss = F.cross_entropy(logits, labels)
        loss.backward()
        self.optimizer.step()
        self.losses.append(loss.item())
        self.step += 1

    def __call__(self, steps):
        for _ in range(steps):
            self.train_batch(*self.batches[self.step % len(self.batches)])
