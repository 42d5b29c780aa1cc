"""``--test`` and ``--test_open``: checkpoint -> logits -> metrics -> results JSON.

The results describe the checkpoint: its config (the command line's may differ only in what
``checkpoint_config.py`` leaves free, unless ``--allow-config-change``), its best epoch and the
SHA-256 of its weights; results of another checkpoint already in the log_dir are kept aside, with a note.

``--test_open`` scores the test split and the open split in two passes, concatenated in that order.
``--test --test_open`` (the sweep's one test step) does both in one process and scores the test
split once: the closed-set metrics and the open-set ones read the same test logits.
"""

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import torch

from ..common.atomic import write_json_atomic
from ..common.errors import CheckpointError
from ..common.run_files import FINAL_CHECKPOINT, predictions_path, results_path
from ..config.schema import config_hash, recipe_of
from ..data import loaders
from ..engine.checkpoint import check_class_counts, load_checkpoint
from ..engine.checkpoint_config import config_differences
from ..engine.inference import collect_logits
from ..engine.run_dir import note
from ..evaluation.metrics import closed_set_metrics, open_set_metrics
from ..evaluation.posthoc import adjust_logits
from ..evaluation.summary import format_results_table
from ..models import network as networks
from . import open_scoring
from .evaluate_extras import rigor_extras, save_predictions


def load_trained_network(config, ctx, checkpoint=None):
    """The best weights and centroids of the run in ``training_opt.log_dir``."""
    path = Path(config["training_opt"]["log_dir"]) / FINAL_CHECKPOINT
    if checkpoint is None:
        checkpoint = load_checkpoint(path, what="trained checkpoint", required=("networks", "class_counts"))
    try:
        network = networks.build_network(config, for_training=False)
        network.feat_model.load_state_dict(checkpoint["networks"]["feat_model"])
        network.classifier.load_state_dict(checkpoint["networks"]["classifier"])
    except (KeyError, RuntimeError) as e:
        # load_state_dict's first line only names the module; the next one names the first mismatch.
        first = " ".join(line.strip() for line in str(e).strip().splitlines()[:2])[:240]
        raise CheckpointError(
            f"{path} does not match the networks in this config ({first}); test with the config that trained it"
        ) from None
    centroids = checkpoint.get("centroids")
    network.to(ctx.device)
    return network, (None if centroids is None else centroids.to(ctx.device)), checkpoint, path


def check_test_config(config, checkpoint, checkpoint_path, allow_config_change):
    """The command line's config against the checkpoint's; returns the differences (allowed ones)."""
    stored = checkpoint.get("config")
    if not isinstance(stored, dict):
        return []
    differences = config_differences(config, stored)
    if differences and not allow_config_change:
        key, ours, theirs = differences[0]
        more = f" (and {len(differences) - 1} more)" if len(differences) > 1 else ""
        raise CheckpointError(
            f"{checkpoint_path} was trained with {key}={theirs!r} but this config has {ours!r}{more}; test with "
            "the config that trained it, or pass --allow-config-change to test it anyway"
        )
    return differences


def evaluate(config, ctx, open_set=False, echo=True, allow_config_change=False, settings=None):
    """Evaluate the trained run on the test split (plus the open split for ``open_set``).

    ``settings``: a tuple of "closed" and/or "open" to run both tests from one scoring of the test split
    (default: the one ``open_set`` names). Returns the results of the last setting.
    """
    settings = settings or (("open",) if open_set else ("closed",))
    training_opt = config["training_opt"]
    loaders.prepare_data(training_opt)
    path = Path(training_opt["log_dir"]) / FINAL_CHECKPOINT
    checkpoint = load_checkpoint(path, what="trained checkpoint", required=("networks", "class_counts"))
    differences = check_test_config(config, checkpoint, path, allow_config_change)
    checkpoint["class_counts"] = check_class_counts(
        checkpoint, path, config["training_opt"]["num_classes"], "trained checkpoint"
    )
    for key, ours, theirs in differences:
        note(f"--allow-config-change: {key} is {ours!r} here but {theirs!r} in {path}")
    scorers = open_scoring.build_scorers(config) if "open" in settings else []  # a bad name fails before any pass
    network, centroids, checkpoint, checkpoint_path = load_trained_network(config, ctx, checkpoint)
    with_features = open_scoring.needs_features(scorers)

    def split_logits(split):
        dataset = loaders.build_dataset(training_opt, loaders.load_samples(training_opt, split), train=False)
        loader = loaders.build_eval_loader(training_opt, dataset, ctx, passes="one")
        logits, labels, _, *features = collect_logits(
            network,
            loader,
            centroids,
            ctx,
            amp=training_opt["amp"],
            channels_last=training_opt["channels_last"],
            with_features=with_features,
        )
        return logits, labels, (features[0].numpy() if features else None)

    test_logits, test_labels, test_features = split_logits("test")
    results = None
    for setting in settings:
        logits, labels, scoring = test_logits, test_labels, None
        if setting == "open":  # its own passes, after the test split's: the open split, the validation split
            open_logits, open_labels, open_features = split_logits("open")
            logits, labels = torch.cat([logits, open_logits]), torch.cat([labels, open_labels])
            features = None if test_features is None else np.concatenate([test_features, open_features])
            if with_features:  # the cache is keyed by the weights' hash: computed only when a scorer needs it
                open_scoring.fit_scorers(scorers, config, network, ctx, weights_sha256(checkpoint))
            scoring = (scorers, features, split_logits("val"))
        if ctx.is_main:
            results = _score(
                config, checkpoint, checkpoint_path, differences, logits, labels, setting == "open", echo, scoring
            )
    return results


def _score(config, checkpoint, checkpoint_path, differences, logits, labels, open_set, echo, scoring=None):
    """Metrics of one setting from its logits, written to the results JSON (rank 0).

    ``scoring`` (open set): (scorers, features of the same rows or None, (val logits, labels, features)).
    """
    training_opt = config["training_opt"]
    thresholds = training_opt["shot_thresholds"]
    shot_args = dict(
        many_threshold=thresholds["many"], few_threshold=thresholds["few"], inclusive=thresholds["inclusive"]
    )
    class_counts = checkpoint["class_counts"]
    logits = adjust_logits(logits, class_counts, config["evaluation"]["logit_adjustment_tau"])
    if open_set:
        metrics = open_set_metrics(logits, labels, class_counts, threshold=training_opt["open_threshold"], **shot_args)
    else:
        metrics = closed_set_metrics(logits, labels, class_counts, **shot_args)
    extras, predictions = rigor_extras(config, logits, labels, class_counts, open_set, shot_args)
    if scoring is not None:
        scorers, features, (val_logits, val_labels, val_features) = scoring
        val_logits = adjust_logits(val_logits, class_counts, config["evaluation"]["logit_adjustment_tau"])
        scorer_results, scores = open_scoring.open_scorer_results(
            scorers, config, class_counts, shot_args, (logits, labels, features), (val_logits, val_labels, val_features)
        )
        extras.update(scorer_results)
        predictions.update({f"score_{name}": values.astype(np.float32) for name, values in scores.items()})
    results = {
        **_run_metadata(config, checkpoint, checkpoint_path, open_set, differences),
        **_recipe_metadata(config, checkpoint),
        **metrics,
        **extras,
    }
    out = results_path(training_opt["log_dir"], open_set)
    _keep_results_of_another_checkpoint(out, results["weights_sha256"], open_set)
    predictions["weights_sha256"] = np.asarray(results["weights_sha256"])  # the report checks the pair
    save_predictions(training_opt["log_dir"], open_set, predictions)
    write_json_atomic(out, results, indent=2, default=_json_default)
    if training_opt["save_logits"]:
        np.savez_compressed(out.with_suffix(".npz"), logits=logits.numpy(), labels=labels.numpy())
    if echo:
        print(format_results_table(results))
        print(f"wrote {out}")
    return results


def _run_metadata(config, checkpoint, checkpoint_path, open_set, differences=()):
    """What was tested: the checkpoint's config and epoch (the command line's where it holds none)."""
    trained = checkpoint.get("config") if isinstance(checkpoint.get("config"), dict) else config
    performance = trained["criterions"]["PerformanceLoss"]
    metrics = checkpoint.get("metrics") if isinstance(checkpoint.get("metrics"), dict) else {}
    return {
        "dataset": trained["training_opt"]["dataset"],
        "stage": trained["training_opt"]["stage"],
        "loss": performance["loss"],
        "loss_params": performance["loss_params"],
        "num_epochs": trained["training_opt"]["num_epochs"],
        "seed": trained["seed"],
        "config_hash": config_hash(trained),
        "checkpoint": str(checkpoint_path),
        "checkpoint_epoch": metrics.get("best_epoch"),
        "weights_sha256": weights_sha256(checkpoint),
        "checkpoint_config": trained,
        "config_changes": [{"key": key, "test": ours, "checkpoint": theirs} for key, ours, theirs in differences],
        "setting": "open" if open_set else "closed",
        "torch_version": torch.__version__,
    }


def weights_sha256(checkpoint):
    """SHA-256 of what the test evaluates: the networks' tensors and the centroids (names, dtypes,
    shapes, bytes). Not of the file, which also holds the training log (timings differ run to run)."""
    digest = hashlib.sha256()

    def add(name, value):
        if isinstance(value, dict):
            for key in sorted(value, key=str):
                add(f"{name}.{key}", value[key])
        elif isinstance(value, torch.Tensor):
            flat = value.detach().cpu().reshape(-1).contiguous()
            digest.update(f"{name}:{flat.dtype}:{tuple(value.shape)};".encode())
            digest.update(flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b"")
        else:
            digest.update(f"{name}={value!r};".encode())

    add("networks", checkpoint.get("networks"))
    add("centroids", checkpoint.get("centroids"))
    return digest.hexdigest()


def _keep_results_of_another_checkpoint(out, sha256, open_set=False):
    """Old results of another checkpoint are renamed ``<name>.replaced-<timestamp>`` together with the
    predictions (and logits) beside them, and named in a note; so are predictions without results."""
    together = [out, predictions_path(out.parent, open_set), out.with_suffix(".npz")]
    present = [path for path in together if path.is_file()]
    if not present:
        return
    try:
        old = json.loads(out.read_text(encoding="utf-8")) if out.is_file() else None
    except (OSError, ValueError):
        old = None
    if isinstance(old, dict) and old.get("weights_sha256") == sha256:
        return  # a re-test of the same checkpoint
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    kept = [path.rename(path.with_name(f"{path.name}.replaced-{stamp}")) for path in present]
    note(
        f"{out.parent} held {'results' if out in present else 'predictions'} of another checkpoint (or of an unknown "
        f"one); kept them as {', '.join(str(path) for path in kept)}"
    )


def _recipe_metadata(config, checkpoint):
    """Which stage-2 recipe the run is, what it fitted (tau_norm's tau), and the test-time logit adjustment."""
    return {
        "recipe": recipe_of(config),
        "recipe_fit": checkpoint.get("recipe_fit"),
        "logit_adjustment_tau": config["evaluation"]["logit_adjustment_tau"],
    }


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
