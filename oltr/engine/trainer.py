"""Stage-1 and stage-2 training: one loop for both, the difference is in the config.

    fit(config, ctx)  ->  <log_dir>/final_model_checkpoint.pth (best validation epoch)
                          <log_dir>/last_checkpoint.pth       (every epoch, for --resume)
"""
import json
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .. import build
from ..atomic import write_text_atomic
from ..config import config_hash, dump_yaml
from ..errors import CheckpointError, ConfigError, OltrError
from ..run_files import FINAL_CHECKPOINT, LAST_CHECKPOINT, METRICS_LOG, RESOLVED_CONFIG
from .checkpoint import load_checkpoint, save_atomic
from .distributed import all_reduce_mean_, barrier, broadcast_buffers_
from .inference import autocast, collect_logits, compute_centroids, to_device
from .run_log import RunLogger, progress_enabled


class NonFiniteLossError(OltrError):
    """Training diverged; the last good checkpoint is kept."""


def seed_everything(seed):
    """Seed Python, NumPy and torch (all devices); data-loader workers are seeded from the loader's generator."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_seed(seed, epoch, rank=0):
    """Every epoch starts from its own seed, so a resumed run replays the same randomness.

    Each rank gets its own seed too: with one seed for all, every rank would
    draw the same crops and flips for its different images.
    """
    return (seed * 100003 + epoch) * 65536 + rank


def training_progress(epoch, num_epochs, step=0, steps_per_epoch=1, granularity="epoch"):
    """Progress t in [0, 1] for the cyclical losses: 0 at the first epoch (step), 1 at the last."""
    if granularity == "step":
        total = num_epochs * steps_per_epoch
        return (epoch * steps_per_epoch + step) / max(total - 1, 1)
    return epoch / max(num_epochs - 1, 1)


def set_progress(criterions, t):
    """Tell every loss that follows training progress where we are; no special cases by name."""
    for criterion in criterions.values():
        if hasattr(criterion.module, "set_progress"):
            criterion.module.set_progress(t)


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
    epoch: int = 0
    best: dict = field(default_factory=lambda: {"epoch": -1, "top1": -1.0, "networks": None, "centroids": None})
    history: list = field(default_factory=list)

    @property
    def feature_loss(self):
        criterion = self.criterions.get("FeatureLoss")
        return criterion.module if criterion else None

    def centroids(self):
        """Centroids the classifier reads (constants for it), when stage 2 uses memory."""
        if not self.config["memory"]["centroids"]:
            return None
        return self.feature_loss.centroids.detach()


# ----------------------------------------------------------------------------- set-up

def build_run(config, ctx, echo=True):
    training_opt = config["training_opt"]
    seed_everything(config["seed"])
    logger = RunLogger(training_opt["log_dir"], enabled=ctx.is_main, echo=echo)
    if config["memory"]["centroids"] and config["criterions"]["FeatureLoss"] is None:
        raise ConfigError("memory.centroids is true but criterions.FeatureLoss is not set; the centroids "
                          "live in the disc_centroids feature loss")

    build.prepare_data(training_opt)
    train_samples = build.load_samples(training_opt, "train")
    val_samples = build.load_samples(training_opt, "val")
    class_counts = build.class_counts_of(train_samples, training_opt["num_classes"])
    train_set = build.build_dataset(training_opt, train_samples, train=True)
    val_set = build.build_dataset(training_opt, val_samples, train=False)
    steps_per_epoch = len(train_set) // training_opt["batch_size"]
    if steps_per_epoch == 0:
        raise ConfigError(f"training_opt.batch_size ({training_opt['batch_size']}) is larger than the training "
                          f"split ({len(train_set)} images); lower it")

    network = build.build_network(config)
    for line in build.load_stage1_weights(network, config):
        logger.info(f"stage-1 weights: {line}")
    build.freeze_fixed_networks(network, config)
    criterions = build.build_criterions(config, class_counts)
    _check_amp_compatible(criterions, training_opt["amp"])
    network.to(ctx.device)
    for criterion in criterions.values():
        criterion.module.to(ctx.device)
    if training_opt["channels_last"]:
        network.to(memory_format=torch.channels_last)

    if config["memory"]["init_centroids"]:
        plain_train = build.build_dataset(training_opt, train_samples, train=False)
        loader = build.build_eval_loader(training_opt, plain_train, ctx)
        centroids = compute_centroids(network.feat_model, loader, training_opt["num_classes"], ctx,
                                      amp=training_opt["amp"], channels_last=training_opt["channels_last"],
                                      progress=_bar("centroids", ctx))
        criterions["FeatureLoss"].module.centroids.data.copy_(centroids)
        logger.info("centroids initialised from one pass over the training set")

    optimizers = build.build_optimizers(network, criterions, config)
    schedulers = build.build_schedulers(optimizers, training_opt)
    train_model = _wrap_for_training(network, config, ctx)
    scaler = torch.amp.GradScaler(ctx.device.type, enabled=training_opt["amp"] == "fp16")
    return Run(
        config=config, ctx=ctx, network=network, train_model=train_model, criterions=criterions,
        optimizers=optimizers, schedulers=schedulers, scaler=scaler,
        train_loader=build.build_train_loader(training_opt, train_set, config["seed"], ctx),
        val_loader=build.build_eval_loader(training_opt, val_set, ctx),
        class_counts=class_counts, steps_per_epoch=steps_per_epoch, logger=logger,
    )


def _check_amp_compatible(criterions, amp):
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
                raise ConfigError("training_opt.sync_bn is true but this run is on CPU, where torch's "
                                  "SyncBatchNorm does not work; set it to false or train on GPUs")
            # Replaces the BatchNorm layers of ``network`` itself, sharing their parameters and buffers.
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
        # Gradients as views of the all-reduce buckets: less memory, and no stride-mismatch
        # warnings for 1x1 convolutions whose gradients come back with unusual strides.
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids,
                                                          gradient_as_bucket_view=True)
    if training_opt["compile"]:
        model = torch.compile(model)
    return model


def _bar(description, ctx):
    enabled = progress_enabled() and ctx.is_main
    return lambda iterable: tqdm(iterable, desc=description, leave=False, disable=not enabled)


# ----------------------------------------------------------------------------- one epoch

def train_one_epoch(run):
    """One pass of ``steps_per_epoch`` batches; returns the mean losses."""
    config, ctx = run.config, run.ctx
    training_opt = config["training_opt"]
    run.train_model.train()
    for criterion in run.criterions.values():
        criterion.module.train()
    sampler = run.train_loader.sampler
    sampler.set_epoch(run.epoch)
    seed = epoch_seed(config["seed"], run.epoch, ctx.rank)
    run.train_loader.generator.manual_seed(seed)  # the data-loader workers' seeds come from it
    seed_everything(seed)
    totals = {"loss": 0.0, "performance": 0.0, "feature": 0.0}
    bar = _bar(f"epoch {run.epoch + 1}/{training_opt['num_epochs']}", ctx)
    for step, (images, labels, _) in enumerate(bar(run.train_loader)):
        if step == run.steps_per_epoch:
            break
        if training_opt["progress_granularity"] == "step":
            set_progress(run.criterions, training_progress(run.epoch, training_opt["num_epochs"], step,
                                                           run.steps_per_epoch, "step"))
        parts = train_step(run, to_device(images, ctx.device, training_opt["channels_last"]),
                           labels.to(ctx.device, non_blocking=True), step)
        for key, value in parts.items():
            totals[key] += value
        if ctx.is_main and (step + 1) % training_opt["display_step"] == 0 and not progress_enabled():
            run.logger.info(f"epoch {run.epoch + 1} step {step + 1}/{run.steps_per_epoch} loss {parts['loss']:.4f}")
    return {key: value / run.steps_per_epoch for key, value in totals.items()}


def train_step(run, images, labels, step):
    """Forward, loss, backward and optimizer steps for one batch."""
    amp = run.config["training_opt"]["amp"]
    performance = run.criterions["PerformanceLoss"]
    with autocast(run.ctx.device, amp):
        logits, features = run.train_model(images, run.centroids())
    # Losses compute in float32 whatever the autocast dtype of their inputs.
    loss_perf = performance.module(logits.float(), labels) * performance.weight
    loss = loss_perf
    loss_feat = torch.zeros((), device=loss.device)
    if run.feature_loss is not None:
        loss_feat = run.feature_loss(features.float(), labels) * run.criterions["FeatureLoss"].weight
        loss = loss + loss_feat
    # The mean over ranks, before backward: every rank then sees the same values and stops
    # together on a non-finite loss, instead of the others hanging in DDP's gradient all-reduce.
    parts = torch.stack([part.detach().float() for part in (loss, loss_perf, loss_feat)])
    total, performance, feature = all_reduce_mean_(parts, run.ctx).tolist()
    if not math.isfinite(total):
        log_dir = Path(run.config["training_opt"]["log_dir"])
        kept = (f"{log_dir / LAST_CHECKPOINT} (epoch {run.epoch}) is the last good checkpoint"
                if run.epoch > 0 else "no epoch finished, so there is no checkpoint")
        raise NonFiniteLossError(
            f"loss became {total} at epoch {run.epoch + 1}, step {step + 1} (performance "
            f"{performance:.4g}, feature {feature:.4g}); training stopped and {kept}; start over with "
            "lower learning rates or with amp off (a --resume would replay the same steps)"
        )
    for optimizer in run.optimizers.values():
        optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(loss).backward()
    if run.ctx.distributed and run.feature_loss is not None:
        # DDP averages the networks' gradients; the centroids live outside it.
        for param in run.feature_loss.parameters():
            if param.grad is not None:
                all_reduce_mean_(param.grad, run.ctx)
    for optimizer in run.optimizers.values():
        run.scaler.step(optimizer)
    run.scaler.update()
    return {"loss": total, "performance": performance, "feature": feature}


def validate(run):
    """Closed-set top-1 on the validation split."""
    training_opt = run.config["training_opt"]
    # Without SyncBatchNorm each rank's running statistics followed its own batches; evaluate
    # (and later save) rank 0's, on every rank, so that all ranks agree on the best epoch.
    broadcast_buffers_(run.network, run.ctx)
    logits, labels, _ = collect_logits(run.network, run.val_loader, run.centroids(), run.ctx,
                                       amp=training_opt["amp"], channels_last=training_opt["channels_last"],
                                       progress=_bar("validate", run.ctx))
    return (logits.argmax(dim=1) == labels).double().mean().item()


# ----------------------------------------------------------------------------- checkpoints

def _cpu_state(module):
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def _network_state(run):
    return {"feat_model": _cpu_state(run.network.feat_model), "classifier": _cpu_state(run.network.classifier)}


def _rng_state():
    """The global generators' full states, as tensors and plain lists (readable with weights_only)."""
    _, numpy_keys, numpy_pos, has_gauss, cached_gauss = np.random.get_state()
    version, python_internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": [int(x) for x in numpy_keys], "pos": int(numpy_pos), "has_gauss": int(has_gauss),
                  "cached_gaussian": float(cached_gauss)},
        "python": {"version": version, "internal": list(python_internal), "gauss_next": gauss_next},
    }


def _set_rng_state(state):
    """Undo ``_rng_state``. Each epoch reseeds anyway; this keeps anything drawn between epochs exact too."""
    if not isinstance(state, dict) or not isinstance(state.get("numpy"), dict):
        return  # written by an older version; the per-epoch seeds still make the resumed epochs exact
    torch.set_rng_state(state["torch"])
    numpy_state = state["numpy"]
    np.random.set_state(("MT19937", np.asarray(numpy_state["keys"], dtype=np.uint32), numpy_state["pos"],
                         numpy_state["has_gauss"], numpy_state["cached_gaussian"]))
    python_state = state["python"]
    random.setstate((python_state["version"], tuple(python_state["internal"]), python_state["gauss_next"]))


def save_last(run):
    """Everything --resume needs, written atomically after each epoch."""
    state = {
        "epoch": run.epoch,
        "config_hash": config_hash(run.config),
        "networks": _network_state(run),
        "losses": {key: _cpu_state(criterion.module) for key, criterion in run.criterions.items()},
        "optimizers": {name: opt.state_dict() for name, opt in run.optimizers.items()},
        "schedulers": {name: sch.state_dict() for name, sch in run.schedulers.items()},
        "scaler": run.scaler.state_dict(),
        "sampler": run.train_loader.sampler.state_dict(),
        "best": run.best,
        "history": run.history,
        "rng": _rng_state(),
    }
    save_atomic(state, Path(run.config["training_opt"]["log_dir"]) / LAST_CHECKPOINT)


def restore_last(run):
    """Load last_checkpoint.pth into ``run``; returns False when there is nothing to resume."""
    path = Path(run.config["training_opt"]["log_dir"]) / LAST_CHECKPOINT
    if not path.is_file():
        return False
    state = load_checkpoint(path, what="resume checkpoint")
    if state.get("config_hash") != config_hash(run.config):
        raise CheckpointError(f"{path} was written by a run with a different config; resume with the same "
                              "config and --opts, or delete it to start over")
    run.network.feat_model.load_state_dict(state["networks"]["feat_model"])
    run.network.classifier.load_state_dict(state["networks"]["classifier"])
    for key, criterion in run.criterions.items():
        criterion.module.load_state_dict(state["losses"][key])
    for name, optimizer in run.optimizers.items():
        optimizer.load_state_dict(state["optimizers"][name])
    for name, scheduler in run.schedulers.items():
        scheduler.load_state_dict(state["schedulers"][name])
    run.scaler.load_state_dict(state["scaler"])
    run.train_loader.sampler.load_state_dict(state["sampler"])
    run.best, run.history = state["best"], state["history"]
    _set_rng_state(state.get("rng"))
    run.epoch = state["epoch"] + 1
    return True


def save_final(run):
    training_opt = run.config["training_opt"]
    checkpoint = {
        "networks": run.best["networks"],
        "centroids": run.best["centroids"],
        "losses": {key: _cpu_state(criterion.module) for key, criterion in run.criterions.items()},
        "config": run.config,
        "config_hash": config_hash(run.config),
        "class_counts": run.class_counts,
        "metrics": {"best_epoch": run.best["epoch"] + 1, "best_val_top1": run.best["top1"],
                    "history": run.history},
    }
    save_atomic(checkpoint, Path(training_opt["log_dir"]) / FINAL_CHECKPOINT)


# ----------------------------------------------------------------------------- the loop

def fit(config, ctx, resume=False, echo=True):
    """Train one stage; returns the metrics dict stored in the final checkpoint."""
    run = build_run(config, ctx, echo=echo)
    training_opt = config["training_opt"]
    log_dir = Path(training_opt["log_dir"])
    if resume and restore_last(run):
        run.logger.info(f"resumed from {log_dir / LAST_CHECKPOINT} at epoch {run.epoch + 1}")
    elif resume:
        run.logger.info("nothing to resume; starting from the first epoch")
    if ctx.is_main:  # after the resume check, so a refused resume leaves the old run's files alone
        write_text_atomic(log_dir / RESOLVED_CONFIG, dump_yaml(config))
        _rewrite_metrics_log(log_dir, run.history)
    for scheduler_epoch in range(run.epoch, training_opt["num_epochs"]):
        run.epoch = scheduler_epoch
        _run_epoch(run)
    if ctx.is_main:
        save_final(run)
    barrier(ctx)  # no rank leaves (for stage 2, or the test) before the final checkpoint is on disk
    run.logger.info(f"best epoch {run.best['epoch'] + 1}: val top-1 {run.best['top1']:.4f}; "
                    f"saved {log_dir / FINAL_CHECKPOINT}")
    return {"best_epoch": run.best["epoch"] + 1, "best_val_top1": run.best["top1"]}


def _run_epoch(run):
    training_opt = run.config["training_opt"]
    if training_opt["progress_granularity"] == "epoch":
        set_progress(run.criterions, training_progress(run.epoch, training_opt["num_epochs"]))
    started = time.perf_counter()
    losses = train_one_epoch(run)
    seconds = time.perf_counter() - started
    for scheduler in run.schedulers.values():
        scheduler.step()
    top1 = validate(run)
    if top1 > run.best["top1"]:
        centroids = run.centroids()
        run.best = {"epoch": run.epoch, "top1": top1, "networks": _network_state(run),
                    "centroids": None if centroids is None else centroids.cpu().clone()}
    record = {"epoch": run.epoch + 1, **losses, "val_top1": top1,
              "images_per_s": run.steps_per_epoch * training_opt["batch_size"] / seconds,
              "lr": {name: opt.param_groups[0]["lr"] for name, opt in run.optimizers.items()}}
    xi = _current_xi(run)
    if xi is not None:
        record["xi"] = xi
    run.history.append(record)
    run.logger.metrics(record)
    run.logger.info(f"epoch {run.epoch + 1}/{training_opt['num_epochs']}: loss {losses['loss']:.4f} "
                    f"val top-1 {top1:.4f}" + (f" xi {xi:.3f}" if xi is not None else "")
                    + f" ({record['images_per_s']:.0f} img/s)")
    if not math.isfinite(losses["loss"]):
        raise NonFiniteLossError(f"mean loss of epoch {run.epoch + 1} is not finite")
    if run.ctx.is_main:
        save_last(run)


def _rewrite_metrics_log(log_dir, history):
    """metrics.jsonl holds exactly the finished epochs of this run.

    A fresh run must not append to an old run's records, and a run killed after
    logging an epoch but before saving it repeats that epoch when resumed.
    """
    lines = "".join(json.dumps(record, default=float) + "\n" for record in history)
    write_text_atomic(log_dir / METRICS_LOG, lines)


def _current_xi(run):
    xi = getattr(run.criterions["PerformanceLoss"].module, "xi", None)
    return None if xi is None else float(xi)
