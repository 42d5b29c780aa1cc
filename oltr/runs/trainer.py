"""Stage-1 and stage-2 training: one loop for both, the difference is in the config.

    fit(config, ctx)  ->  <log_dir>/final_model_checkpoint.pth (best validation epoch)
                          <log_dir>/last_checkpoint.pth       (every epoch, for --resume)

This file holds the epoch loop; a Run is set up in ``run.py`` and saved and restored by
``run_state.py`` (their names are re-exported here, where callers have always found them).
"""

import contextlib
import json
import math
import time
from pathlib import Path

import torch

from losses.checks import targets_checked

from ..common.atomic import write_text_atomic
from ..common.errors import DataError, OltrError
from ..common.run_files import FINAL_CHECKPOINT, LAST_CHECKPOINT, METRICS_LOG, RESOLVED_CONFIG
from ..common.seeding import epoch_seed, seed_everything
from ..config.schema import dump_yaml
from ..engine import stop
from ..engine.distributed import all_reduce_mean_, barrier, broadcast_buffers_
from ..engine.inference import autocast, collect_logits, to_device
from ..engine.run_log import progress_bar, progress_enabled
from ..engine.tensorboard_log import TensorBoardLog, check_tensorboard
from ..recipes import resolve
from . import open_scoring
from .run import build_run
from .run_state import network_state, restore_last, save_final, save_last


class NonFiniteLossError(OltrError):
    """Training diverged; the last good checkpoint is kept."""


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


# ----------------------------------------------------------------------------- one epoch


def start_epoch(loader, epoch, seed):
    """Reseed the training loader: the sampler's order, the workers' seeds and the batches' augmentations."""
    loader.sampler.set_epoch(epoch)
    loader.generator.manual_seed(seed)  # the data-loader workers' seeds come from it (PIL transforms)
    if hasattr(loader.batch_sampler, "set_seed"):  # the tensor pipeline's per-batch augmentation seeds
        loader.batch_sampler.set_seed(seed)


def train_one_epoch(run):
    """One pass of ``steps_per_epoch`` batches; returns the mean losses."""
    config, ctx = run.config, run.ctx
    training_opt = config["training_opt"]
    run.train_model.train()
    for criterion in run.criterions.values():
        criterion.module.train()
    seed = epoch_seed(config["seed"], run.epoch, ctx.rank)
    start_epoch(run.train_loader, run.epoch, seed)
    seed_everything(seed)
    check_each_step = checks_each_step(ctx.device)
    totals = torch.zeros(3, dtype=torch.float64, device=ctx.device)
    first_nonfinite = torch.full((), -1, dtype=torch.int64, device=ctx.device)
    bar = progress_bar(f"epoch {run.epoch + 1}/{training_opt['num_epochs']}", ctx)
    for step, (images, labels, _) in enumerate(bar(run.train_loader)):
        if step == run.steps_per_epoch:
            break
        if training_opt["progress_granularity"] == "step":
            set_progress(
                run.criterions,
                training_progress(run.epoch, training_opt["num_epochs"], step, run.steps_per_epoch, "step"),
            )
        parts = train_step(
            run,
            to_device(images, ctx.device, training_opt["channels_last"]),
            labels,  # on the host: checked there, then copied (train_step)
            step,
            check=check_each_step,
        )
        stacked = torch.stack([parts["loss"], parts["performance"], parts["feature"]]).double()
        totals += stacked
        if not check_each_step:
            first_nonfinite = torch.where(
                (first_nonfinite < 0) & ~torch.isfinite(stacked[0]),
                torch.full_like(first_nonfinite, step),
                first_nonfinite,
            )
        # A stop signal ends the epoch between steps; under DDP the ranks agree at logged steps only
        # (an all-reduce), so that every rank stops at the same step.
        if not ctx.distributed:
            stop.check(ctx, f"epoch {run.epoch + 1}, step {step + 1}")
        if (step + 1) % training_opt["display_step"] == 0:
            _raise_if_a_step_diverged(run, first_nonfinite)  # every rank: they hold the same reduced losses
            if ctx.distributed:
                stop.check(ctx, f"epoch {run.epoch + 1}, step {step + 1}")
            if ctx.is_main and not progress_enabled():
                run.logger.info(
                    f"epoch {run.epoch + 1} step {step + 1}/{run.steps_per_epoch} loss {float(parts['loss']):.4f}"
                )
    _raise_if_a_step_diverged(run, first_nonfinite)
    return {key: value / run.steps_per_epoch for key, value in zip(("loss", "performance", "feature"), totals.tolist())}


def checks_each_step(device):
    """Whether every step reads its loss on the host and stops before a non-finite update.

    On CUDA, reading a loss (``.item()``) waits for the GPU to finish its queue, so the losses stay on
    the device and are read at logged steps and at the end of the epoch (the first non-finite step is
    still named, and the last good checkpoint is the previous epoch's). On a CPU reading costs nothing.
    """
    return torch.device(device).type != "cuda"


def _raise_if_a_step_diverged(run, first_nonfinite):
    """The deferred check of the steps that were not checked one by one (CUDA)."""
    step = int(first_nonfinite)
    if step >= 0:
        raise NonFiniteLossError(
            f"loss became non-finite at epoch {run.epoch + 1}, step {step + 1}; training stopped and "
            f"{_kept_checkpoint(run)}; start over with lower learning rates or with amp off (a --resume "
            "would replay the same steps)"
        )


def _kept_checkpoint(run):
    log_dir = Path(run.config["training_opt"]["log_dir"])
    return (
        f"{log_dir / LAST_CHECKPOINT} (epoch {run.epoch}) is the last good checkpoint"
        if run.epoch > 0
        else "no epoch finished, so there is no checkpoint"
    )


def train_step(run, images, labels, step, check=True):
    """Forward, loss, backward and optimizer steps for one batch; returns the losses (0-d device tensors).

    ``check``: read the loss on the host and stop before the update when it is not finite.
    ``labels``: on the host (checked there, then copied) or already on the device (checked by an
    asynchronous assert); the losses do not read them again (``targets_checked``). Nothing else in
    a step reads the device unless ``check`` (the CPU's setting) asks for it.
    """
    amp = run.config["training_opt"]["amp"]
    labels = checked_labels(labels, run.config["training_opt"].get("num_classes"), run.ctx.device)
    performance = run.criterions["PerformanceLoss"]
    with autocast(run.ctx.device, amp):
        logits, features = run.train_model(images, run.centroids())
    with targets_checked():
        # Losses compute in float32 whatever the autocast dtype of their inputs.
        loss_perf = performance.module(logits.float(), labels) * performance.weight
        loss = loss_perf
        loss_feat = torch.zeros((), device=loss.device)
        if run.feature_loss is not None:
            loss_feat = run.feature_loss(features.float(), labels) * run.criterions["FeatureLoss"].weight
            loss = loss + loss_feat
    # The mean over ranks, before backward: every rank then sees the same values and stops
    # together on a non-finite loss, instead of the others hanging in DDP's gradient all-reduce.
    parts = all_reduce_mean_(torch.stack([part.detach().float() for part in (loss, loss_perf, loss_feat)]), run.ctx)
    if check:
        total, performance_value, feature_value = parts.tolist()
        if not math.isfinite(total):
            raise NonFiniteLossError(
                f"loss became {total} at epoch {run.epoch + 1}, step {step + 1} (performance "
                f"{performance_value:.4g}, feature {feature_value:.4g}); training stopped and "
                f"{_kept_checkpoint(run)}; start over with lower learning rates or with amp off (a --resume "
                "would replay the same steps)"
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
    return {"loss": parts[0], "performance": parts[1], "feature": parts[2]}


def checked_labels(labels, num_classes, device):
    """``labels`` on ``device``, in [0, num_classes) (when known) or a DataError.

    Host labels are checked before the copy; device labels by ``torch._assert_async`` (a device-side
    assert: reading their min and max back would wait for the GPU).
    """
    if labels.device.type == "cpu":
        if num_classes is not None and labels.numel():
            low, high = int(labels.min()), int(labels.max())
            if low < 0 or high >= num_classes:
                raise DataError(
                    f"a training batch has labels from {low} to {high}, outside [0, {num_classes}) "
                    "(training_opt.num_classes); fix the split file's labels or num_classes"
                )
        return to_device(labels, device)
    if num_classes is not None and labels.numel():
        torch._assert_async((labels.min() >= 0) & (labels.max() < num_classes))
    return labels


def validate(run):
    """Closed-set top-1 on the validation split."""
    training_opt = run.config["training_opt"]
    # Without SyncBatchNorm each rank's running statistics followed its own batches; evaluate
    # (and later save) rank 0's, on every rank, so that all ranks agree on the best epoch.
    broadcast_buffers_(run.network, run.ctx)
    logits, labels, _ = collect_logits(
        run.network,
        run.val_loader,
        run.centroids(),
        run.ctx,
        amp=training_opt["amp"],
        channels_last=training_opt["channels_last"],
        progress=progress_bar("validate", run.ctx),
    )
    return (logits.argmax(dim=1) == labels).double().mean().item()


# ----------------------------------------------------------------------------- the loop


def fit(config, ctx, resume=False, echo=True, claim=None, recipe=None):
    """Train one stage; returns the metrics dict stored in the final checkpoint.

    ``claim``: a context manager (``run_dir.claim``, as the CLI passes) entered after the set-up,
    which reads the data and builds everything, and before the first write into the log_dir.
    """
    check_tensorboard(config)
    open_scoring.build_scorers(config)  # a misspelt scorer fails now, not after training, at --test_open
    claimed = claim if claim is not None else contextlib.nullcontext()
    recipe = recipe or resolve(config)
    if not recipe.trains:  # tau_norm, ncm: fitted in one pass, nothing to resume
        with claimed:
            return recipe.fit(config, ctx, echo=echo)
    run = build_run(config, ctx, echo=echo, defer_logs=True, recipe=recipe)
    try:
        with claimed:
            return _fit(run, config, ctx, resume)
    finally:
        run.close()


def _fit(run, config, ctx, resume):
    training_opt = config["training_opt"]
    log_dir = Path(training_opt["log_dir"])
    restored = resume and restore_last(run)
    run.logger.open()  # after the resume check, so a refused resume leaves the old run's log alone
    if restored:
        run.logger.info(f"resumed from {log_dir / LAST_CHECKPOINT} at epoch {run.epoch + 1}")
        if run.epoch >= training_opt["num_epochs"] and (log_dir / FINAL_CHECKPOINT).is_file():
            run.logger.info(f"{log_dir} holds a finished run of this config; nothing to do")
            barrier(ctx)
            return {"best_epoch": run.best["epoch"] + 1, "best_val_top1": run.best["top1"]}
    elif resume:
        run.logger.info("nothing to resume; starting from the first epoch")
    if ctx.is_main:  # after the resume check, so a refused resume leaves the old run's files alone
        write_text_atomic(log_dir / RESOLVED_CONFIG, dump_yaml(config))
        _rewrite_metrics_log(log_dir, run.history)
    tensorboard = TensorBoardLog(config, ctx)
    try:
        for scheduler_epoch in range(run.epoch, training_opt["num_epochs"]):
            run.epoch = scheduler_epoch
            stop.check(run.ctx, f"the start of epoch {scheduler_epoch + 1}")
            _run_epoch(run, tensorboard)
    finally:
        tensorboard.close()
    if ctx.is_main:
        save_final(run)
    barrier(ctx)  # no rank leaves (for stage 2, or the test) before the final checkpoint is on disk
    run.logger.info(
        f"best epoch {run.best['epoch'] + 1}: val top-1 {run.best['top1']:.4f}; saved {log_dir / FINAL_CHECKPOINT}"
    )
    return {"best_epoch": run.best["epoch"] + 1, "best_val_top1": run.best["top1"]}


def _run_epoch(run, tensorboard=None):
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
        run.best = {
            "epoch": run.epoch,
            "top1": top1,
            "networks": network_state(run),
            "centroids": None if centroids is None else centroids.cpu().clone(),
        }
    record = {
        "epoch": run.epoch + 1,
        **losses,
        "val_top1": top1,
        "images_per_s": run.steps_per_epoch * training_opt["batch_size"] / seconds,
        "lr": {name: opt.param_groups[0]["lr"] for name, opt in run.optimizers.items()},
    }
    xi = _current_xi(run)
    if xi is not None:
        record["xi"] = xi
    run.history.append(record)
    run.logger.metrics(record)
    if tensorboard is not None:
        tensorboard.epoch(record)
    run.logger.info(
        f"epoch {run.epoch + 1}/{training_opt['num_epochs']}: loss {losses['loss']:.4f} "
        f"val top-1 {top1:.4f}" + (f" xi {xi:.3f}" if xi is not None else "") + f" ({record['images_per_s']:.0f} img/s)"
    )
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
