"""A training run's set-up: everything one run owns, built once from the config.

    build_run(config, ctx) -> Run   data and loaders, the network (stage-1 weights, ``fix``),
                                    losses, centroids, optimizers, schedulers, and the model as
                                    trained (DDP-wrapped and/or compiled)

The trainer (``trainer.py``) runs the epochs of a Run; ``run_state.py`` saves and restores it.
"""

import hashlib
import os
from dataclasses import dataclass, field

import torch

from ..common.errors import ConfigError
from ..common.seeding import seed_everything
from ..data import loaders
from ..engine import optim
from ..engine.inference import compute_centroids
from ..engine.run_log import RunLogger, progress_bar
from ..models import network as networks
from ..recipes import resolve


@dataclass
class Run:
    """Everything one training run owns, built once from the config."""

    config: dict
    ctx: object
    network: torch.nn.Module
    train_model: torch.nn.Module  # the network as trained: DDP-wrapped and/or compiled
    criterions: dict
    optimizers: dict
    schedulers: dict
    scaler: object
    train_loader: object
    val_loader: object
    class_counts: list
    steps_per_epoch: int
    logger: RunLogger
    train_split_sha256: str = ""  # what --resume compares: the same images with the same labels
    epoch: int = 0
    best: dict = field(default_factory=lambda: {"epoch": -1, "top1": -1.0, "networks": None, "centroids": None})
    history: list = field(default_factory=list)

    def close(self):
        """Release the loaders' worker processes (the run is over, finished or not)."""
        for loader in (self.train_loader, self.val_loader):
            if hasattr(loader, "close"):
                loader.close()

    @property
    def feature_loss(self):
        criterion = self.criterions.get("FeatureLoss")
        return criterion.module if criterion else None

    def centroids(self):
        """Centroids the classifier reads (constants for it), when stage 2 uses memory."""
        if not self.config["memory"]["centroids"]:
            return None
        return self.feature_loss.centroids.detach()


def build_run(config, ctx, echo=True, defer_logs=False, require_every_class=True, recipe=None):
    """``defer_logs``: the log lines of the set-up wait in memory until ``run.logger.open()``.

    ``require_every_class=False`` only for runs that do not train on their split (the benchmarks'
    synthetic batches, the config tests' two-image splits): real training refuses a class without images.

    ``recipe``: the run's stage-2 recipe (``oltr.recipes``), resolved from the config when not given.
    """
    training_opt = config["training_opt"]
    seed_everything(config["seed"])
    logger = RunLogger(training_opt["log_dir"], enabled=ctx.is_main, echo=echo, deferred=defer_logs)

    loaders.check_gpu_decode(training_opt, ctx.device)  # before any data is read or cached
    loaders.prepare_data(training_opt)
    train_samples = loaders.load_samples(training_opt, "train")
    val_samples = loaders.load_samples(training_opt, "val")
    class_counts = loaders.class_counts_of(train_samples, training_opt["num_classes"])
    if require_every_class:
        loaders.check_every_class_trains(training_opt, class_counts)
    train_set = loaders.build_dataset(training_opt, train_samples, train=True)
    val_set = loaders.build_dataset(training_opt, val_samples, train=False)
    steps_per_epoch = len(train_set) // training_opt["batch_size"]
    if steps_per_epoch == 0:
        raise ConfigError(
            f"training_opt.batch_size ({training_opt['batch_size']}) is larger than the training "
            f"split ({len(train_set)} images); lower it"
        )

    network = networks.build_network(config)
    # stage 1's weights as the config asks; a decoupled recipe's frozen stage-1 feature model
    recipe = recipe or resolve(config)
    network, lines = recipe.prepare_network(network, config)
    for line in lines:
        logger.info(f"stage-1 weights: {line}")
    networks.freeze_fixed_networks(network, config)
    criterions = optim.build_criterions(config, class_counts)
    check_amp_compatible(criterions, training_opt["amp"])
    network.to(ctx.device)
    for criterion in criterions.values():
        criterion.module.to(ctx.device)
    if training_opt["channels_last"]:
        network.to(memory_format=torch.channels_last)

    def class_means(what):
        """The mean feature of every class, one pass over the training split with test-time transforms."""
        plain_train = loaders.build_dataset(training_opt, train_samples, train=False, like=train_set)
        loader = loaders.build_eval_loader(training_opt, plain_train, ctx, passes="one")
        return compute_centroids(
            network.feat_model,
            loader,
            training_opt["num_classes"],
            ctx,
            amp=training_opt["amp"],
            channels_last=training_opt["channels_last"],
            progress=progress_bar(what, ctx),
        )

    if config["memory"]["init_centroids"]:
        criterions["FeatureLoss"].module.centroids.data.copy_(class_means("centroids"))
        logger.info("centroids initialised from one pass over the training set")
    if recipe.wants_class_means(config):  # the finetune recipe's classifier_init: class_mean
        logger.info(recipe.init_classifier(network, class_means("class means")))

    optimizers = optim.build_optimizers(network, criterions, config)
    schedulers = optim.build_schedulers(optimizers, training_opt)
    train_model = _wrap_for_training(network, config, ctx)
    scaler = torch.amp.GradScaler(ctx.device.type, enabled=training_opt["amp"] == "fp16")
    return Run(
        config=config,
        ctx=ctx,
        network=network,
        train_model=train_model,
        criterions=criterions,
        optimizers=optimizers,
        schedulers=schedulers,
        scaler=scaler,
        train_loader=loaders.build_train_loader(training_opt, train_set, config["seed"], ctx),
        val_loader=loaders.build_eval_loader(training_opt, val_set, ctx),
        class_counts=class_counts,
        steps_per_epoch=steps_per_epoch,
        logger=logger,
        train_split_sha256=samples_sha256(train_samples, training_opt["data_root"]),
    )


def samples_sha256(samples, data_root):
    """SHA-256 of a split's (path relative to the data root, label) lines, in order: moving the data keeps it."""
    digest = hashlib.sha256()
    for path, label in samples:
        digest.update(f"{os.path.relpath(path, data_root)}\t{label}\n".encode())
    return digest.hexdigest()


def check_amp_compatible(criterions, amp):
    """fp16 loss scaling is undone by unscaling every gradient; a loss whose custom backward
    ignores the incoming gradient (OLTR's centroid rule) would see its update shrunk instead."""
    if amp != "fp16":
        return
    for key, criterion in criterions.items():
        module = criterion.module
        if getattr(module, "ignores_loss_scale", False):
            raise ConfigError(
                f"training_opt.amp=fp16 cannot train criterions.{key} ({type(module).__name__}): its backward "
                "ignores the fp16 loss scale; use amp bf16 or off"
            )


def _wrap_for_training(network, config, ctx):
    training_opt = config["training_opt"]
    model = network
    if ctx.distributed:
        if training_opt["sync_bn"]:
            if ctx.device.type == "cpu":
                raise ConfigError(
                    "training_opt.sync_bn is true but this run is on CPU, where torch's "
                    "SyncBatchNorm does not work; set it to false or train on GPUs"
                )
            # Replaces the BatchNorm layers of ``network`` itself, sharing their parameters and buffers.
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
        # Gradients as views of the all-reduce buckets: less memory, and no stride-mismatch
        # warnings for 1x1 convolutions whose gradients come back with unusual strides.
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids, gradient_as_bucket_view=True)
    if training_opt["compile"]:
        model = torch.compile(model)
    return model
