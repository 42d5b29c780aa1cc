"""``--test`` and ``--test_open``: checkpoint -> logits -> metrics -> results JSON."""
from pathlib import Path

import numpy as np
import torch

from .. import build
from ..atomic import write_json_atomic
from ..config import config_hash
from ..errors import CheckpointError
from ..metrics import closed_set_metrics, format_results_table, open_set_metrics
from ..run_files import FINAL_CHECKPOINT, results_path
from .evaluate_extras import rigor_extras, save_predictions
from .checkpoint import load_checkpoint
from .inference import collect_logits


def load_trained_network(config, ctx):
    """The best weights and centroids of the run in ``training_opt.log_dir``."""
    path = Path(config["training_opt"]["log_dir"]) / FINAL_CHECKPOINT
    checkpoint = load_checkpoint(path, what="trained checkpoint", required=("networks", "class_counts"))
    try:
        network = build.build_network(config, for_training=False)
        network.feat_model.load_state_dict(checkpoint["networks"]["feat_model"])
        network.classifier.load_state_dict(checkpoint["networks"]["classifier"])
    except (KeyError, RuntimeError) as e:
        # load_state_dict's first line only names the module; the next one names the first mismatch.
        first = " ".join(line.strip() for line in str(e).strip().splitlines()[:2])[:240]
        raise CheckpointError(f"{path} does not match the networks in this config ({first}); test with the "
                              "config that trained it") from None
    centroids = checkpoint.get("centroids")
    network.to(ctx.device)
    return network, (None if centroids is None else centroids.to(ctx.device)), checkpoint, path


def evaluate(config, ctx, open_set=False, echo=True):
    """Evaluate the trained run on the test split (plus the open split for ``open_set``)."""
    training_opt = config["training_opt"]
    build.prepare_data(training_opt)
    network, centroids, checkpoint, checkpoint_path = load_trained_network(config, ctx)
    samples = build.load_samples(training_opt, "test")
    if open_set:
        samples = samples + build.load_samples(training_opt, "open")
    dataset = build.build_dataset(training_opt, samples, train=False)
    loader = build.build_eval_loader(training_opt, dataset, ctx)
    logits, labels, _ = collect_logits(network, loader, centroids, ctx, amp=training_opt["amp"],
                                       channels_last=training_opt["channels_last"])
    if not ctx.is_main:
        return None
    thresholds = training_opt["shot_thresholds"]
    shot_args = dict(many_threshold=thresholds["many"], few_threshold=thresholds["few"],
                     inclusive=thresholds["inclusive"])
    class_counts = checkpoint["class_counts"]
    if open_set:
        metrics = open_set_metrics(logits, labels, class_counts, threshold=training_opt["open_threshold"],
                                   **shot_args)
    else:
        metrics = closed_set_metrics(logits, labels, class_counts, **shot_args)
    extras, predictions = rigor_extras(config, logits, labels, class_counts, open_set, shot_args)
    results = {**_run_metadata(config, checkpoint_path, open_set), **metrics, **extras}
    out = results_path(training_opt["log_dir"], open_set)
    save_predictions(training_opt["log_dir"], open_set, predictions)
    write_json_atomic(out, results, indent=2, default=_json_default)
    if training_opt["save_logits"]:
        np.savez_compressed(out.with_suffix(".npz"), logits=logits.numpy(), labels=labels.numpy())
    if echo:
        print(format_results_table(results))
        print(f"wrote {out}")
    return results


def _run_metadata(config, checkpoint_path, open_set):
    performance = config["criterions"]["PerformanceLoss"]
    return {
        "dataset": config["training_opt"]["dataset"],
        "stage": config["training_opt"]["stage"],
        "loss": performance["loss"],
        "loss_params": performance["loss_params"],
        "num_epochs": config["training_opt"]["num_epochs"],
        "seed": config["seed"],
        "config_hash": config_hash(config),
        "checkpoint": str(checkpoint_path),
        "setting": "open" if open_set else "closed",
        "torch_version": torch.__version__,
    }


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
