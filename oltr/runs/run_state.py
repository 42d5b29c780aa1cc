"""What a run saves and restores: last_checkpoint.pth for --resume, final_model_checkpoint.pth for --test.

save_last(run)     every epoch: weights, loss state, optimizers, schedulers, scaler,
                   sampler, best epoch so far, history and the random generators
restore_last(run)  --resume: all of that back into a freshly built Run
save_final(run)    the best validation epoch's weights and centroids, with the config,
                   class counts and metrics
"""

import random
from pathlib import Path

import numpy as np
import torch

from ..common.errors import CheckpointError
from ..common.run_files import FINAL_CHECKPOINT, LAST_CHECKPOINT
from ..config.schema import config_hash
from ..engine.checkpoint import load_checkpoint, save_atomic


def _cpu_state(module):
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def network_state(run):
    """CPU copies of both networks' weights, as checkpoints hold them."""
    return {"feat_model": _cpu_state(run.network.feat_model), "classifier": _cpu_state(run.network.classifier)}


def _rng_state():
    """The global generators' full states, as tensors and plain lists (readable with weights_only)."""
    _, numpy_keys, numpy_pos, has_gauss, cached_gauss = np.random.get_state()
    version, python_internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": [int(x) for x in numpy_keys],
            "pos": int(numpy_pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gauss),
        },
        "python": {"version": version, "internal": list(python_internal), "gauss_next": gauss_next},
    }


def _set_rng_state(state):
    """Undo ``_rng_state``. Each epoch reseeds anyway; this keeps anything drawn between epochs exact too."""
    if not isinstance(state, dict) or not isinstance(state.get("numpy"), dict):
        return  # written by an older version; the per-epoch seeds still make the resumed epochs exact
    torch.set_rng_state(state["torch"])
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            np.asarray(numpy_state["keys"], dtype=np.uint32),
            numpy_state["pos"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    python_state = state["python"]
    random.setstate((python_state["version"], tuple(python_state["internal"]), python_state["gauss_next"]))


def save_last(run):
    """Everything --resume needs, written atomically after each epoch."""
    state = {
        "epoch": run.epoch,
        "config_hash": config_hash(run.config),
        "networks": network_state(run),
        "losses": {key: _cpu_state(criterion.module) for key, criterion in run.criterions.items()},
        "optimizers": {name: opt.state_dict() for name, opt in run.optimizers.items()},
        "schedulers": {name: sch.state_dict() for name, sch in run.schedulers.items()},
        "scaler": run.scaler.state_dict(),
        "sampler": run.train_loader.sampler.state_dict(),
        "best": run.best,
        "history": run.history,
        "rng": _rng_state(),
        "config": run.config,  # --resume names the keys that changed
        "train_split_sha256": run.train_split_sha256,
        "train_images": sum(run.class_counts),
    }
    save_atomic(state, Path(run.config["training_opt"]["log_dir"]) / LAST_CHECKPOINT)


def restore_last(run):
    """Load last_checkpoint.pth into ``run``; returns False when there is nothing to resume."""
    path = Path(run.config["training_opt"]["log_dir"]) / LAST_CHECKPOINT
    if not path.is_file():
        return False
    state = load_checkpoint(path, what="resume checkpoint")
    check_resumable(state, run, path)
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


# Keys that may differ on --resume: where the run lives (a moved run resumes in its new place).
MAY_CHANGE_ON_RESUME = ("training_opt.log_dir",)


def _leaves(value, prefix=""):
    if isinstance(value, dict) and value:
        for key in sorted(value, key=str):
            yield from _leaves(value[key], f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix, value


def changed_keys(stored, current, ignore=MAY_CHANGE_ON_RESUME):
    """[(dotted key, stored value, current value)] of two resolved configs, less ``ignore``."""
    absent = "(not set)"
    old, new = dict(_leaves(stored)), dict(_leaves(current))
    return [
        (key, old.get(key, absent), new.get(key, absent))
        for key in sorted(set(old) | set(new))
        if key not in ignore and old.get(key, absent) != new.get(key, absent)
    ]


def check_resumable(state, run, path):
    """The checkpoint's config (less its log_dir) and training split are this run's; else one line naming the change."""
    stored = state.get("config")
    if isinstance(stored, dict):
        changed = changed_keys(stored, run.config)
        if changed:
            shown = "; ".join(f"{key}: {old!r} -> {new!r}" for key, old, new in changed[:4])
            more = f" (and {len(changed) - 4} more)" if len(changed) > 4 else ""
            raise CheckpointError(
                f"{path} was written with another config: {shown}{more}; resume with the config and --opts it was "
                "written with, or start over with another training_opt.log_dir (or --overwrite)"
            )
    elif state.get("config_hash") != config_hash(run.config):  # a checkpoint of an older version: no config in it
        raise CheckpointError(
            f"{path} was written by a run with a different config; resume with the same "
            "config and --opts, or delete it to start over"
        )
    stored_split = state.get("train_split_sha256")
    if stored_split and run.train_split_sha256 and stored_split != run.train_split_sha256:
        raise CheckpointError(
            f"{path} was trained on another training split ({state.get('train_images', '?')} images then, "
            f"{sum(run.class_counts)} now, or the same number with other images or labels); resuming would mix "
            "two datasets in one run. Restore the split file, or start over with another training_opt.log_dir "
            "(or --overwrite)"
        )


def save_final(run):
    training_opt = run.config["training_opt"]
    checkpoint = {
        "networks": run.best["networks"],
        "centroids": run.best["centroids"],
        "losses": {key: _cpu_state(criterion.module) for key, criterion in run.criterions.items()},
        "config": run.config,
        "config_hash": config_hash(run.config),
        "class_counts": run.class_counts,
        "metrics": {"best_epoch": run.best["epoch"] + 1, "best_val_top1": run.best["top1"], "history": run.history},
    }
    save_atomic(checkpoint, Path(training_opt["log_dir"]) / FINAL_CHECKPOINT)
