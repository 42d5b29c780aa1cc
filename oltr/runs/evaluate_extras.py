"""What ``--test`` / ``--test_open`` add for rigour: the open-set extras, the bootstrap intervals,
the reliability bins, and the per-image predictions the report's paired bootstrap reads.

Called by evaluate.py with the logits it scored (so any post-hoc adjustment applied to them
before is applied here too).
"""

import numpy as np

from ..common.atomic import write_atomic
from ..common.run_files import predictions_path
from ..evaluation.metrics import ECE_BINS, OPEN_LABEL, SHOT_GROUPS, _as_logits, _max_softmax, shot_groups
from ..evaluation.metrics_open import open_set_extras
from ..evaluation.uncertainty import run_intervals


def reliability_bins(confidence, correct, num_bins=ECE_BINS):
    """Per equal-width bin (lo, hi] of the max probability: count, mean confidence, accuracy (None if empty).

    The same bins as the ECE, so sum_b count_b / N * |accuracy_b - confidence_b| is the ECE.
    """
    bins = np.clip(np.ceil(confidence * num_bins).astype(np.int64) - 1, 0, num_bins - 1)
    counts = np.bincount(bins, minlength=num_bins)
    sums = np.bincount(bins, weights=confidence, minlength=num_bins)
    hits = np.bincount(bins, weights=correct.astype(np.float64), minlength=num_bins)
    mean = lambda total: [None if n == 0 else float(t / n) for t, n in zip(total, counts)]  # noqa: E731
    return {
        "edges": (np.arange(num_bins + 1) / num_bins).tolist(),
        "count": counts.tolist(),
        "confidence": mean(sums),
        "accuracy": mean(hits),
    }


def rigor_extras(config, logits, labels, class_counts, open_set, shot_args):
    """(extra results keys, per-image arrays for save_predictions)."""
    logits = _as_logits(logits)
    labels = np.asarray(labels, dtype=np.int64)
    class_counts = np.asarray(class_counts, dtype=np.int64)
    confidence = _max_softmax(logits)
    argmax = logits.argmax(axis=1)
    groups = shot_groups(class_counts, shot_args["many_threshold"], shot_args["few_threshold"], shot_args["inclusive"])
    extras = {}
    if open_set:
        extras.update(open_set_extras(logits, labels, class_counts, **shot_args))
        predictions = np.where(confidence < config["training_opt"]["open_threshold"], OPEN_LABEL, argmax)
    else:
        predictions = argmax
        extras["reliability_bins"] = reliability_bins(confidence, argmax == labels)
    evaluation = config["evaluation"]
    extras.update(
        run_intervals(labels, predictions, confidence, groups, evaluation["ci_resamples"], evaluation["ci_seed"])
    )
    class_group = np.zeros(class_counts.size, dtype=np.int8)
    for index, name in enumerate(SHOT_GROUPS):
        class_group[groups[name]] = index
    arrays = {
        "labels": labels.astype(np.int32),
        "predictions": predictions.astype(np.int32),
        "confidence": confidence.astype(np.float32),
        "class_group": class_group,
        "class_counts": class_counts,
    }
    return extras, arrays


def save_predictions(log_dir, open_set, arrays):
    """predictions_test_{closed,open}.npz: labels, predictions (-1 rejected), confidence, class_group."""
    write_atomic(predictions_path(log_dir, open_set), lambda handle: np.savez_compressed(handle, **arrays), binary=True)
