"""Every open-set number of one scorer, from its scores of the known test images, the open images and
(for the validation threshold) the known validation images.

Conventions (docs/open-set.md says the same for readers):

* Higher scores mean "known". Known images are the positives of ``auroc``, ``aupr_in`` and
  ``fpr95`` (Hendrycks and Gimpel's convention); ``aupr_out`` negates the scores and takes the open
  images as positives, and ``fpr95_open_positive`` is OpenOOD's FPR95, the share of known images
  rejected when 95% of the open ones are.
* Ties: AUROC counts a tied (known, open) pair as half; every threshold accepts all images whose score
  equals it (score >= threshold), so tied images are never split.
* FPR95: no interpolation. The threshold is the highest score that accepts at least 95% of the
  positives; the FPR is the share of negatives it accepts (sklearn's roc_curve point where TPR first
  reaches 0.95, with every threshold kept).
* The validation threshold: the highest score that accepts at least ``accept_rate`` of the validation
  split's known images. A prediction is the argmax when score >= threshold, else "open"; the F-measure
  and the open-set accuracies at it follow OLTR's definitions (metrics.open_set_metrics).
"""

import math

import numpy as np

from .metrics import SHOT_GROUPS, _shot_summary, f_measure, shot_groups
from .metrics_open import auroc, average_precision, oscr

DEFAULT_ACCEPT_RATE = 0.95


def recall_threshold(positive_scores, level):
    """The highest score t with #{positives >= t} >= level * #positives (None without positives)."""
    positive_scores = np.sort(np.asarray(positive_scores, np.float64))[::-1]
    if positive_scores.size == 0:
        return None
    needed = max(1, math.ceil(level * positive_scores.size - 1e-9))  # 1e-9: 0.95 * 20 is 19, not 19.000...04
    return float(positive_scores[needed - 1])


def fpr_at_recall(positive_scores, negative_scores, level=0.95):
    """Share of negatives with score >= recall_threshold(positives, level); None if a side is empty."""
    negative_scores = np.asarray(negative_scores, np.float64)
    threshold = recall_threshold(positive_scores, level)
    if threshold is None or negative_scores.size == 0:
        return None
    return float(np.mean(negative_scores >= threshold))


def scorer_metrics(
    known_scores,
    known_labels,
    known_argmax,
    open_scores,
    class_counts,
    shot_args,
    val_known_scores=None,
    accept_rate=0.95,
):
    """{auroc, fpr95, fpr95_open_positive, aupr_in, aupr_out, oscr, auroc_by_shot, val_threshold, at_val}.

    ``at_val`` (None without validation scores): the threshold's f_measure, overall/many/medium/few
    open-set top-1 on the known test images, the share of known test images it accepts and of open
    ones it rejects.
    """
    known_scores, open_scores = np.asarray(known_scores, np.float64), np.asarray(open_scores, np.float64)
    known_labels, known_argmax = np.asarray(known_labels, np.int64), np.asarray(known_argmax, np.int64)
    known_correct = known_argmax == known_labels
    groups = shot_groups(np.asarray(class_counts), **shot_args)
    results = {
        "auroc": auroc(known_scores, open_scores),
        "fpr95": fpr_at_recall(known_scores, open_scores),
        "fpr95_open_positive": fpr_at_recall(-open_scores, -known_scores),
        "aupr_in": average_precision(known_scores, open_scores) if open_scores.size else None,
        "aupr_out": average_precision(-open_scores, -known_scores),
        "oscr": oscr(known_scores, known_correct, open_scores),
        "auroc_by_shot": {name: auroc(known_scores[groups[name][known_labels]], open_scores) for name in SHOT_GROUPS},
        "val_threshold": None,
        "at_val": None,
    }
    if val_known_scores is not None and np.size(val_known_scores):
        threshold = recall_threshold(val_known_scores, accept_rate)
        results["val_threshold"] = threshold
        results["at_val"] = _at_threshold(
            threshold, known_scores, known_labels, known_argmax, open_scores, class_counts, shot_args
        )
    return results


def _at_threshold(threshold, known_scores, known_labels, known_argmax, open_scores, class_counts, shot_args):
    accepted = known_scores >= threshold
    predictions = np.where(accepted, known_argmax, -1)
    correct = predictions == known_labels
    true_pos = int(correct.sum())
    false_neg = int(np.count_nonzero(open_scores >= threshold))
    shots = _shot_summary(predictions, known_labels, np.asarray(class_counts), **shot_args)
    return {
        "f_measure": f_measure(true_pos, known_labels.size - true_pos, false_neg),
        "overall_top1": float(correct.mean()),
        "many_shot_top1": shots["many_shot_top1"],
        "medium_shot_top1": shots["medium_shot_top1"],
        "few_shot_top1": shots["few_shot_top1"],
        "known_accepted": float(accepted.mean()),
        "open_rejected": float(np.mean(open_scores < threshold)) if open_scores.size else None,
    }
