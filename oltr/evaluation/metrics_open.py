"""Open-set quality beyond OLTR's fixed-threshold F-measure, from the same max-probability score.

All functions are vectorised numpy (sort once, then cumulative sums over distinct scores); none
imports sklearn, so the tests can hold them against it.

* ``auroc``: area under the ROC curve, ties counted half (Mann-Whitney U / (n1 n0)).
* ``average_precision``: sum over distinct thresholds of (R_k - R_{k-1}) P_k, the step-wise
  definition sklearn's ``average_precision_score`` uses (no interpolation).
* ``oscr``: the open-set classification rate of Dhamija, Guenther and Boult, "Reducing Network
  Agnostophobia", NeurIPS 2018: the area under CCR(d) = #{known, correctly classified, score >= d}
  / #known against FPR(d) = #{open, score >= d} / #open, over all thresholds d (trapezoidal,
  FPR from 0 to 1; at the lowest threshold CCR is the closed-set accuracy).
* ``f_measure_curve``: OLTR's F-measure, precision and recall at thresholds 0, 0.01, ..., 1.
"""

import numpy as np
from numpy.typing import ArrayLike

from .metrics import OPEN_LABEL, SHOT_GROUPS, _check_inputs, _max_softmax, shot_groups

CURVE_THRESHOLDS = np.arange(101) / 100.0  # k / 100 exactly, so 0.1 is the configured default itself


def _distinct_score_counts(scores, *weights):
    """Distinct scores in descending order and, per distinct score, the sum of each weight array."""
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    return sorted_scores[starts], [np.add.reduceat(w[order].astype(np.float64), starts) for w in weights]


def auroc(positive_scores: ArrayLike, negative_scores: ArrayLike) -> float:
    """P(score of a positive > score of a negative) + P(equal) / 2; None if a side is empty."""
    positive_scores, negative_scores = np.asarray(positive_scores, float), np.asarray(negative_scores, float)
    if positive_scores.size == 0 or negative_scores.size == 0:
        return None
    scores = np.concatenate([positive_scores, negative_scores])
    is_positive = np.r_[np.ones(positive_scores.size), np.zeros(negative_scores.size)]
    _, (positives, negatives) = _distinct_score_counts(-scores, is_positive, 1 - is_positive)  # ascending
    negatives_below = np.cumsum(negatives) - negatives
    wins = np.sum(positives * (negatives_below + 0.5 * negatives))
    return float(wins / (positive_scores.size * negative_scores.size))


def average_precision(positive_scores: ArrayLike, negative_scores: ArrayLike) -> float:
    """Average precision with the first argument's samples as positives; None without positives."""
    positive_scores, negative_scores = np.asarray(positive_scores, float), np.asarray(negative_scores, float)
    if positive_scores.size == 0:
        return None
    scores = np.concatenate([positive_scores, negative_scores])
    is_positive = np.r_[np.ones(positive_scores.size), np.zeros(negative_scores.size)]
    _, (positives, negatives) = _distinct_score_counts(scores, is_positive, 1 - is_positive)
    true_pos, accepted = np.cumsum(positives), np.cumsum(positives + negatives)
    return float(np.sum(positives / positive_scores.size * (true_pos / accepted)))


def oscr(known_scores: ArrayLike, known_correct: ArrayLike, open_scores: ArrayLike) -> float:
    """Area under CCR against FPR (Dhamija et al. 2018); None without open or known samples."""
    known_scores, open_scores = np.asarray(known_scores, float), np.asarray(open_scores, float)
    known_correct = np.asarray(known_correct, bool)
    if known_scores.size == 0 or open_scores.size == 0:
        return None
    scores = np.concatenate([known_scores, open_scores])
    correct = np.r_[known_correct, np.zeros(open_scores.size, bool)]
    is_open = np.r_[np.zeros(known_scores.size), np.ones(open_scores.size)]
    _, (correct_counts, open_counts) = _distinct_score_counts(scores, correct, is_open)
    ccr = np.r_[0.0, np.cumsum(correct_counts)] / known_scores.size  # d above every score, then each score
    fpr = np.r_[0.0, np.cumsum(open_counts)] / open_scores.size  # ends at 1: the lowest d accepts all
    return float(np.sum((fpr[1:] - fpr[:-1]) * (ccr[1:] + ccr[:-1]) / 2))


def f_measure_curve(known_scores, known_correct, open_scores, thresholds=CURVE_THRESHOLDS):
    """OLTR's F-measure, precision and recall at each threshold (rejected when score < threshold).

    TP = known correct and kept, FP = the other known samples, FN = open samples kept.
    """
    known_scores, open_scores = np.asarray(known_scores, float), np.asarray(open_scores, float)
    correct_scores = np.sort(known_scores[np.asarray(known_correct, bool)])
    thresholds = np.asarray(thresholds, float)
    true_pos = correct_scores.size - np.searchsorted(correct_scores, thresholds, side="left")
    false_pos = known_scores.size - true_pos
    false_neg = open_scores.size - np.searchsorted(np.sort(open_scores), thresholds, side="left")
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(true_pos + false_pos > 0, true_pos / np.maximum(true_pos + false_pos, 1), 0.0)
        recall = np.where(true_pos + false_neg > 0, true_pos / np.maximum(true_pos + false_neg, 1), 0.0)
        f_measure = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return {
        "thresholds": thresholds.tolist(),
        "f_measure": f_measure.tolist(),
        "precision": precision.tolist(),
        "recall": recall.tolist(),
    }


def open_set_extras(logits, labels, class_counts, many_threshold=100, few_threshold=20, inclusive=True):
    """The threshold-free open-set numbers beyond open_set_metrics, on the same inputs.

    Score = max softmax probability of the given logits (so of any post-hoc adjusted logits).
    Keys: open_aupr_in (known positive), open_aupr_out (open positive, score negated), oscr,
    open_auroc_by_shot ({many, medium, few}: that group's known samples against all open ones),
    f_measure_curve. Without open samples every value is None.
    """
    logits, labels, class_counts = _check_inputs(logits, labels, class_counts)
    confidence = _max_softmax(logits)
    is_open = labels == OPEN_LABEL
    known_scores, open_scores = confidence[~is_open], confidence[is_open]
    known_labels = labels[~is_open]
    known_correct = logits[~is_open].argmax(axis=1) == known_labels
    if not is_open.any():
        return {
            "open_aupr_in": None,
            "open_aupr_out": None,
            "oscr": None,
            "open_auroc_by_shot": {name: None for name in SHOT_GROUPS},
            "f_measure_curve": None,
        }
    groups = shot_groups(class_counts, many_threshold, few_threshold, inclusive)
    by_shot = {name: auroc(known_scores[groups[name][known_labels]], open_scores) for name in SHOT_GROUPS}
    return {
        "open_aupr_in": average_precision(known_scores, open_scores),
        "open_aupr_out": average_precision(-open_scores, -known_scores),
        "oscr": oscr(known_scores, known_correct, open_scores),
        "open_auroc_by_shot": by_shot,
        "f_measure_curve": f_measure_curve(known_scores, known_correct, open_scores),
    }
