"""Paired bootstrap of the open-set F-measure and AUROC of two models on the same test and open images.

Each resample draws images with replacement within their stratum (each known class, and the open set
as one stratum, as the runs' own intervals do) and applies the same draw to both models, so the
spread of the difference excludes what the two models share. F-measure: OLTR's, from each model's
saved predictions (-1 = rejected at its threshold). AUROC: known images positive against the open
ones, from each model's saved score (ties count half), computed on the resample's multiplicities.
"""

import numpy as np

from .uncertainty import _CHUNK_ELEMENTS, _f_measure, _stratified_weights, percentile_interval

KEYS = ("f_measure", "open_auroc")


def _strata(labels):
    """(layout -> original index, stratum sizes): known classes in label order, then the open set."""
    stratum = np.where(labels < 0, labels.max() + 1, labels)
    layout = np.argsort(stratum, kind="stable")
    return layout, np.bincount(stratum)[np.unique(stratum)]


def _f_measures(weights, labels, predictions):
    known = labels >= 0
    true_pos = weights @ (known & (predictions == labels)).astype(np.float64)
    false_pos = weights @ known.astype(np.float64) - true_pos
    false_neg = weights @ (~known & (predictions >= 0)).astype(np.float64)
    return _f_measure(true_pos, false_pos, false_neg)


def _aurocs(weights, known, scores):
    """AUROC of every weighted resample (rows of ``weights``, columns in the original order)."""
    order = np.argsort(scores, kind="stable")
    sorted_scores = scores[order]
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    w = weights[:, order]
    is_known = known[order].astype(np.float64)
    positive = np.add.reduceat(w * is_known, starts, axis=1)
    negative = np.add.reduceat(w * (1 - is_known), starts, axis=1)
    below = np.cumsum(negative, axis=1) - negative
    wins = np.sum(positive * (below + 0.5 * negative), axis=1)
    return wins / (positive.sum(axis=1) * negative.sum(axis=1))


def paired_open_resamples(labels, predictions_a, predictions_b, scores_a, scores_b, resamples, rng):
    """({f_measure, open_auroc: (resamples,) differences A - B}, observed differences); None without open images."""
    labels = np.asarray(labels, np.int64)
    if not (labels < 0).any() or not (labels >= 0).any():
        return None
    predictions_a, predictions_b = np.asarray(predictions_a, np.int64), np.asarray(predictions_b, np.int64)
    scores_a, scores_b = np.asarray(scores_a, np.float64), np.asarray(scores_b, np.float64)
    known = labels >= 0
    layout, sizes = _strata(labels)
    ones = np.ones((1, labels.size))
    point = {
        "f_measure": float(_f_measures(ones, labels, predictions_a)[0] - _f_measures(ones, labels, predictions_b)[0]),
        "open_auroc": float(_aurocs(ones, known, scores_a)[0] - _aurocs(ones, known, scores_b)[0]),
    }
    chunk = max(1, _CHUNK_ELEMENTS // labels.size)
    values = {key: [] for key in KEYS}
    for first in range(0, resamples, chunk):
        weights = _stratified_weights(sizes, min(chunk, resamples - first), rng, layout).astype(np.float64)
        values["f_measure"].append(
            _f_measures(weights, labels, predictions_a) - _f_measures(weights, labels, predictions_b)
        )
        values["open_auroc"].append(_aurocs(weights, known, scores_a) - _aurocs(weights, known, scores_b))
    return {key: np.concatenate(parts) for key, parts in values.items()}, point


def pooled_paired_open_difference(pairs, resamples=1000, seed=0):
    """{f_measure, open_auroc: {mean, low, high, significant}} averaged over seeds (one pair per seed:
    (labels, predictions_a, predictions_b, scores_a, scores_b)); None without open images."""
    rng = np.random.default_rng(seed)
    per_seed = [paired_open_resamples(*pair, resamples, rng) for pair in pairs]
    if not per_seed or any(entry is None for entry in per_seed):
        return None
    summary = {}
    for key in KEYS:
        low, high = percentile_interval(np.mean([values[key] for values, _ in per_seed], axis=0))
        mean = float(np.mean([point[key] for _, point in per_seed]))
        summary[key] = {"mean": mean, "low": float(low), "high": float(high), "significant": bool(low > 0 or high < 0)}
    return summary
