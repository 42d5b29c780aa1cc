"""Closed-set and open-set metrics of long-tailed recognition.

Pure functions of logits, labels and training class counts: they know nothing of
models. Inputs may be numpy arrays or torch tensors (any device, any float
dtype); all arithmetic is numpy float64 and vectorised (no loop over samples).

The protocol is OLTR's (Liu et al., "Large-Scale Long-Tailed Recognition in an
Open World", CVPR 2019), as used for Tables 3-4 of the cyclical focal loss paper:

* shot groups by TRAINING count, OLTR code convention by default
  (many: n >= 100, few: n <= 20), the paper text's (n > 100, n < 20) on request;
* a group's accuracy is the mean of its classes' accuracies;
* open set: argmax replaced by -1 (rejected) when the max softmax probability
  is below the threshold; OLTR's F-measure over known and open samples.
"""

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

# sklearn.metrics is imported where it is used: it takes a second or two to import, and
# `python -m oltr.data check` needs only the shot groups from here.

SHOT_GROUPS = ("many", "medium", "few")
OPEN_LABEL = -1
ECE_BINS = 15


# ---------------------------------------------------------------- input helpers


def _to_numpy(array):
    """numpy view of a numpy array, list or torch tensor (bf16/fp16 widened to float64)."""
    if hasattr(array, "detach"):  # a torch tensor; duck-typed so numpy users need not import torch
        array = array.detach().cpu()
        if array.is_floating_point():
            array = array.double()
        array = array.numpy()
    return np.asarray(array)


def _as_int_array(name, array, ndim=1):
    values = _to_numpy(array)
    if values.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {values.shape}")
    if values.dtype == bool:
        raise ValueError(f"{name} must hold integers, got booleans")
    if not np.issubdtype(values.dtype, np.integer):
        if not np.issubdtype(values.dtype, np.number) or not np.all(values == np.round(values)):
            raise ValueError(f"{name} must hold integers, got dtype {values.dtype}")
    return values.astype(np.int64)


def _as_logits(logits):
    values = _to_numpy(logits).astype(np.float64, copy=False)
    if values.ndim != 2 or values.shape[1] == 0:
        raise ValueError(f"logits must have shape (samples, classes), got {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError("logits contain NaN or infinity (did training diverge?)")
    return values


def _check_inputs(logits, labels, class_counts):
    logits = _as_logits(logits)
    labels = _as_int_array("labels", labels)
    class_counts = _as_int_array("class_counts", class_counts)
    num_samples, num_classes = logits.shape
    if labels.shape[0] != num_samples:
        raise ValueError(f"labels has {labels.shape[0]} entries but logits has {num_samples} rows")
    if num_samples == 0:
        raise ValueError("no samples to evaluate: logits and labels are empty")
    if class_counts.shape[0] != num_classes:
        raise ValueError(f"class_counts has {class_counts.shape[0]} entries but logits has {num_classes} classes")
    if labels.max() >= num_classes:
        raise ValueError(f"labels must be < {num_classes} (the number of classes), got {labels.max()}")
    return logits, labels, class_counts


def _max_softmax(logits):
    """Max softmax probability per row without materialising the probabilities.

    max_k softmax(z)_k = exp(0) / sum_j exp(z_j - max z): one temporary (N, C) array.
    """
    shifted = logits - logits.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    return 1.0 / shifted.sum(axis=1)


def _none_if_nan(value):
    return None if value is None or np.isnan(value) else float(value)


def _python_number(value):
    """JSON-friendly threshold: ints stay ints."""
    value = value.item() if hasattr(value, "item") else value
    return int(value) if float(value).is_integer() else float(value)


# ---------------------------------------------------------------- shot groups


def check_shot_thresholds(many_threshold: int, few_threshold: int) -> None:
    """ValueError unless few_threshold < many_threshold (overlapping groups are refused, not resolved)."""
    if not few_threshold < many_threshold:
        raise ValueError(f"few_threshold ({few_threshold}) must be smaller than many_threshold ({many_threshold})")


def shot_groups(
    class_counts: Sequence[int], many_threshold: int = 100, few_threshold: int = 20, inclusive: bool = True
) -> dict:
    """Boolean class masks ``{"many", "medium", "few"}`` from TRAINING counts.

    inclusive=True (OLTR code, default): many n >= many_threshold, few n <= few_threshold.
    inclusive=False (OLTR paper text): many n > many_threshold, few n < few_threshold.
    Medium is every other class. This is the one rule: the results files (and so the report)
    and ``python -m oltr.data check`` group classes through it. The thresholds must not
    overlap (few_threshold < many_threshold), so no class can fall in two groups.
    """
    counts = _as_int_array("class_counts", class_counts)
    check_shot_thresholds(many_threshold, few_threshold)
    if (counts < 0).any():
        raise ValueError("class_counts must be >= 0")
    if inclusive:
        many, few = counts >= many_threshold, counts <= few_threshold
    else:
        many, few = counts > many_threshold, counts < few_threshold
    return {"many": many, "medium": ~(many | few), "few": few}


def describe_shot_groups(groups, many_threshold=100, few_threshold=20, inclusive=True):
    """Group sizes and rules, as written into results files and printed with every result."""
    many, few = _python_number(many_threshold), _python_number(few_threshold)
    if inclusive:
        rules = (f"n >= {many}", f"{few} < n < {many}", f"n <= {few}")
    else:
        rules = (f"n > {many}", f"{few} <= n <= {many}", f"n < {few}")
    sizes = {name: int(np.count_nonzero(groups[name])) for name in SHOT_GROUPS}
    return {
        "many": {"num_classes": sizes["many"], "threshold": many, "rule": rules[0]},
        "medium": {"num_classes": sizes["medium"], "range": [few, many], "rule": rules[1]},
        "few": {"num_classes": sizes["few"], "threshold": few, "rule": rules[2]},
        "inclusive": bool(inclusive),
    }


# ---------------------------------------------------------------- accuracies


def per_class_accuracy(predictions: ArrayLike, labels: ArrayLike, num_classes: int) -> np.ndarray:
    """Accuracy of each class over its test samples; NaN for a class with no test sample.

    ``predictions`` may contain -1 (rejected), which is simply wrong. ``labels`` must be
    in [0, num_classes).
    """
    predictions = _as_int_array("predictions", predictions)
    labels = _as_int_array("labels", labels)
    if predictions.shape != labels.shape:
        raise ValueError(f"predictions {predictions.shape} and labels {labels.shape} differ in shape")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must be in [0, {num_classes}), got {labels.min()}..{labels.max()}")
    totals = np.bincount(labels, minlength=num_classes).astype(np.float64)
    correct = np.bincount(labels[predictions == labels], minlength=num_classes).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, correct / totals, np.nan)


def shot_accuracies(per_class_acc, groups):
    """Mean per-class accuracy of each shot group over classes present in the test set.

    A group with no such class gives None (printed "n/a"), never NaN.
    """
    per_class_acc = _to_numpy(per_class_acc).astype(np.float64)
    present = ~np.isnan(per_class_acc)
    result = {}
    for name in SHOT_GROUPS:
        members = np.asarray(groups[name], dtype=bool) & present
        result[name] = float(per_class_acc[members].mean()) if members.any() else None
    return result


def top_k_accuracy(logits: ArrayLike, labels: ArrayLike, k: int = 5) -> float:
    """Fraction of samples whose label is among the k highest logits (ties counted in the label's favour)."""
    logits = _as_logits(logits)
    labels = _as_int_array("labels", labels)
    label_logit = logits[np.arange(labels.shape[0]), labels]
    rank = np.count_nonzero(logits > label_logit[:, None], axis=1)
    return float(np.mean(rank < k))


# ---------------------------------------------------------------- calibration


def _calibration_error(confidence, correct, num_bins=ECE_BINS):
    """ECE = sum_b |B_b|/N * |acc(B_b) - conf(B_b)| over equal-width bins (lo, hi] of [0, 1]
    (Guo et al., "On Calibration of Modern Neural Networks", ICML 2017, Eq. 3)."""
    if num_bins < 1:
        raise ValueError(f"num_bins must be >= 1, got {num_bins}")
    if confidence.size == 0:
        return None
    bins = np.clip(np.ceil(confidence * num_bins).astype(np.int64) - 1, 0, num_bins - 1)
    # per bin: sum(acc) - sum(conf) = |B| (acc_b - conf_b), so dividing by N gives the weighted gap
    gap = np.bincount(bins, weights=correct.astype(np.float64) - confidence, minlength=num_bins)
    return float(np.abs(gap).sum() / confidence.size)


def expected_calibration_error(probabilities, labels, num_bins=ECE_BINS):
    """Expected calibration error of the top-1 prediction, equal-width bins on the max probability."""
    probabilities = _to_numpy(probabilities).astype(np.float64)
    labels = _as_int_array("labels", labels)
    if probabilities.ndim != 2 or probabilities.shape[0] != labels.shape[0]:
        raise ValueError(f"probabilities must have shape ({labels.shape[0]}, classes), got {probabilities.shape}")
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    return _calibration_error(confidence, correct, num_bins)


# ---------------------------------------------------------------- open-set helpers


def f_measure(num_true_pos: int, num_false_pos: int, num_false_neg: int) -> float:
    """OLTR's open-set F-measure (after its 2020 fix): F = 2PR/(P+R), 0 when undefined."""
    precision = num_true_pos / (num_true_pos + num_false_pos) if num_true_pos + num_false_pos else 0.0
    recall = num_true_pos / (num_true_pos + num_false_neg) if num_true_pos + num_false_neg else 0.0
    if precision + recall == 0:
        return 0.0
    return float(2 * precision * recall / (precision + recall))


def fpr_at_tpr(known_scores, open_scores, tpr_level=0.95):
    """Fraction of open samples accepted at the score threshold that keeps ``tpr_level`` of known ones."""
    from sklearn.metrics import roc_curve

    is_known = np.concatenate([np.ones(known_scores.size), np.zeros(open_scores.size)])
    # drop_intermediate=False: the first point reaching the level may lie inside a collinear run
    fpr, tpr, _ = roc_curve(is_known, np.concatenate([known_scores, open_scores]), drop_intermediate=False)
    return float(fpr[np.searchsorted(tpr, tpr_level, side="left")])


# ---------------------------------------------------------------- the two settings


def _shot_summary(predictions, labels, class_counts, many_threshold, few_threshold, inclusive):
    num_classes = class_counts.shape[0]
    per_class = per_class_accuracy(predictions, labels, num_classes)
    groups = shot_groups(class_counts, many_threshold, few_threshold, inclusive)
    shots = shot_accuracies(per_class, groups)
    return {
        "many_shot_top1": shots["many"],
        "medium_shot_top1": shots["medium"],
        "few_shot_top1": shots["few"],
        "shot_groups": describe_shot_groups(groups, many_threshold, few_threshold, inclusive),
        "per_class_top1": [_none_if_nan(value) for value in per_class],
        "class_counts": class_counts.tolist(),
    }


def closed_set_metrics(
    logits: ArrayLike,
    labels: ArrayLike,
    class_counts: Sequence[int],
    many_threshold: int = 100,
    few_threshold: int = 20,
    inclusive: bool = True,
) -> dict:
    """Every closed-set number of Tables 3-4 and more, for the test set (labels >= 0).

    Keys: setting, overall_top1, many_shot_top1, medium_shot_top1, few_shot_top1, shot_groups,
    macro_f1, top5 (None when C < 5), ece, per_class_top1 (None for classes absent from the
    test set), class_counts, num_samples. Accuracies are fractions in [0, 1].
    """
    from sklearn.metrics import f1_score

    logits, labels, class_counts = _check_inputs(logits, labels, class_counts)
    if labels.min() < 0:
        raise ValueError("closed-set labels must all be >= 0; open-set samples (label -1) belong to open_set_metrics")
    predictions = logits.argmax(axis=1)
    correct = predictions == labels
    results = {"setting": "closed", "overall_top1": float(correct.mean())}
    results.update(_shot_summary(predictions, labels, class_counts, many_threshold, few_threshold, inclusive))
    results.update(
        {
            # sklearn's default label set (labels and predictions) is what OLTR's F_measure used
            "macro_f1": float(f1_score(labels, predictions, average="macro", zero_division=0)),
            "top5": top_k_accuracy(logits, labels, 5) if logits.shape[1] >= 5 else None,
            "ece": _calibration_error(_max_softmax(logits), correct),
            "num_samples": int(labels.shape[0]),
        }
    )
    return results


def open_set_metrics(
    logits: ArrayLike,
    labels: ArrayLike,
    class_counts: Sequence[int],
    threshold: float = 0.1,
    many_threshold: int = 100,
    few_threshold: int = 20,
    inclusive: bool = True,
) -> dict:
    """OLTR's open-set protocol on the test set plus the open set (label -1).

    Prediction = argmax, replaced by -1 when the max softmax probability < ``threshold``.
    Shot and overall accuracies are on known samples (a rejected known sample is wrong).
    F-measure: TP = known predicted correctly, FP = known predicted wrongly (incl. rejected),
    FN = open samples not rejected. Threshold-free extras: open_auroc (known = positive,
    score = max softmax probability) and fpr_at_95_tpr; both None without open samples.
    """
    from sklearn.metrics import roc_auc_score

    logits, labels, class_counts = _check_inputs(logits, labels, class_counts)
    if labels.min() < OPEN_LABEL:
        raise ValueError(f"open-set labels must be >= 0 (known) or -1 (open), got {labels.min()}")
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"open-set threshold must be in [0, 1], got {threshold}")
    is_open = labels == OPEN_LABEL
    is_known = ~is_open
    if not is_known.any():
        raise ValueError("open-set evaluation needs at least one known-class sample (label >= 0)")

    confidence = _max_softmax(logits)
    argmax = logits.argmax(axis=1)
    predictions = np.where(confidence < threshold, OPEN_LABEL, argmax)

    known_labels = labels[is_known]
    known_correct = predictions[is_known] == known_labels
    true_pos = int(np.count_nonzero(known_correct))
    false_pos = int(known_correct.size - true_pos)
    false_neg = int(np.count_nonzero(predictions[is_open] != OPEN_LABEL))
    has_open = bool(is_open.any())

    results = {"setting": "open", "overall_top1": float(known_correct.mean())}
    results.update(
        _shot_summary(predictions[is_known], known_labels, class_counts, many_threshold, few_threshold, inclusive)
    )
    results.update(
        {
            "f_measure": f_measure(true_pos, false_pos, false_neg),
            "open_auroc": float(roc_auc_score(is_known, confidence)) if has_open else None,
            "fpr_at_95_tpr": fpr_at_tpr(confidence[is_known], confidence[is_open]) if has_open else None,
            "open_rejection_acc": float(np.mean(predictions[is_open] == OPEN_LABEL)) if has_open else None,
            # calibration of the classifier itself: argmax on known samples, rejection aside
            "ece": _calibration_error(confidence[is_known], argmax[is_known] == known_labels),
            "threshold": float(threshold),
            "num_known": int(known_labels.size),
            "num_open": int(np.count_nonzero(is_open)),
        }
    )
    return results


# ---------------------------------------------------------------- printing
