"""How sure a number is: bootstrap intervals for one run, paired differences of two, t-intervals over seeds.

Every bootstrap here is stratified: test images are resampled with replacement within their class
(and the open set within itself), so each resample keeps the class sizes of the test set, as the
shot-group means assume. Intervals are percentile intervals (2.5th and 97.5th) of ``resamples``
resamples drawn from ``numpy.random.default_rng(seed)``: the same seed gives the same interval.

Vectorised, no loop over images or resamples:

* accuracies, and OLTR's F-measure: a class's resampled number of correct images is
  Binomial(n_c, k_c / n_c) -- exactly the distribution of index resampling -- so a resample of every
  class is one (resamples, classes) binomial draw; F-measure's TP, FP and FN are sums of such counts;
* AUROC (known vs open) needs the images themselves: each resample is a row of multiplicity weights
  (a bincount of drawn indices), and the rank-sum statistic is computed once per row over the scores
  sorted once, ties counted half, in chunks of rows to bound memory;
* paired differences of two models on the same images: per class, the images where exactly one
  model is right decide; their resampled number is Binomial(n_c, discordant share), then how many of
  them favour the first model is Binomial(that, n10 / (n10 + n01)). Identical models give 0 exactly.
"""

import numpy as np

from .metrics import OPEN_LABEL, SHOT_GROUPS

CI_LEVEL = 0.95
_CHUNK_ELEMENTS = 4_000_000  # resample rows x images per AUROC chunk: ~32 MB of float64 weights


def percentile_interval(values):
    """[low, high]: the 2.5th and 97.5th percentiles of the resampled values (axis 0)."""
    tail = 100 * (1 - CI_LEVEL) / 2
    low, high = np.percentile(values, [tail, 100 - tail], axis=0)
    return low, high


def _pair(low, high):
    return None if not (np.isfinite(low) and np.isfinite(high)) else [float(low), float(high)]


# ------------------------------------------------------------------ one run


def _class_totals(labels, correct, num_classes):
    totals = np.bincount(labels, minlength=num_classes)
    hits = np.bincount(labels[correct], minlength=num_classes)
    return totals, hits


def _resampled_hits(totals, hits, resamples, rng):
    """(resamples, classes) resampled correct counts: Binomial(n_c, k_c / n_c) per class."""
    share = np.divide(hits, totals, out=np.zeros(totals.shape), where=totals > 0)
    return rng.binomial(totals, share, size=(resamples, totals.size))


def _group_means(per_class, group_masks, present):
    """{group: (resamples,) mean over the group's classes present in the test set}, None if none are."""
    means = {}
    for name in SHOT_GROUPS:
        members = np.asarray(group_masks[name], bool) & present
        means[name] = per_class[:, members].mean(axis=1) if members.any() else None
    return means


def accuracy_resamples(labels, correct, group_masks, resamples, rng):
    """{overall_top1, many/medium/few_shot_top1: (resamples,) array or None} for known samples."""
    num_classes = np.asarray(group_masks["many"]).size
    totals, hits = _class_totals(labels, correct, num_classes)
    drawn = _resampled_hits(totals, hits, resamples, rng)
    present = totals > 0
    per_class = drawn / np.where(present, totals, 1)
    groups = _group_means(per_class, group_masks, present)
    values = {"overall_top1": drawn.sum(axis=1) / totals.sum()}
    values.update({f"{name}_shot_top1": groups[name] for name in SHOT_GROUPS})
    return values, drawn


def _f_measure(true_pos, false_pos, false_neg):
    precision = np.divide(true_pos, true_pos + false_pos, out=np.zeros(true_pos.shape), where=true_pos + false_pos > 0)
    recall = np.divide(true_pos, true_pos + false_neg, out=np.zeros(true_pos.shape), where=true_pos + false_neg > 0)
    return np.divide(
        2 * precision * recall, precision + recall, out=np.zeros(true_pos.shape), where=precision + recall > 0
    )


def _stratified_weights(strata_sizes, resamples, rng, position=None):
    """(resamples, N) multiplicities for N images laid out stratum after stratum (sizes given).

    ``position`` (optional) maps that layout to the order the columns should have.
    """
    sizes = np.asarray(strata_sizes)
    total = int(sizes.sum())
    index = np.int32 if resamples * total < 2**31 else np.int64  # half the memory traffic where it fits
    starts = np.repeat(np.cumsum(sizes) - sizes, sizes).astype(index)  # each position's stratum start
    span = np.repeat(sizes, sizes).astype(np.float64)
    drawn = (rng.random((resamples, total)) * span).astype(index)
    drawn += starts
    if position is not None:
        drawn = position.astype(index)[drawn]
    drawn += (np.arange(resamples, dtype=index) * total)[:, None]
    return np.bincount(drawn.ravel(), minlength=resamples * total).reshape(resamples, total)


def auroc_resamples(known_scores, known_labels, open_scores, resamples, rng):
    """(resamples,) AUROC of known (positive) vs open under the stratified bootstrap."""
    # lay images out stratum after stratum (known classes, then the open set), then sort by score
    order_by_stratum = np.argsort(known_labels, kind="stable")
    scores = np.concatenate([known_scores[order_by_stratum], open_scores])
    is_known = np.r_[np.ones(known_scores.size), np.zeros(open_scores.size)]
    sizes = np.r_[np.bincount(known_labels)[np.unique(known_labels)], open_scores.size]
    by_score = np.argsort(scores, kind="stable")
    sorted_scores = scores[by_score]
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    known_sorted = is_known[by_score]
    rank = np.empty_like(by_score)
    rank[by_score] = np.arange(by_score.size)  # stratum layout -> score order
    tied = starts.size < scores.size
    open_sorted = known_sorted == 0
    chunk = max(1, _CHUNK_ELEMENTS // scores.size)
    values = []
    for first in range(0, resamples, chunk):
        weights = _stratified_weights(sizes, min(chunk, resamples - first), rng, rank)
        if tied:  # sum weights over each run of equal scores; ties count half
            positive = np.add.reduceat(weights * known_sorted, starts, axis=1)
            negative = np.add.reduceat(weights * (1 - known_sorted), starts, axis=1)
            below = np.cumsum(negative, axis=1) - negative
            values.append(np.sum(positive * (below + 0.5 * negative), axis=1))
        else:  # distinct scores: each known image beats the open weight sorted below it
            negative = np.where(open_sorted, weights, 0)
            below = np.cumsum(negative, axis=1)  # inclusive, but at a known position negative is 0
            weights[:, open_sorted] = 0
            values.append(np.einsum("ij,ij->i", weights, below))
    return np.concatenate(values) / (known_scores.size * open_scores.size)


def run_intervals(labels, predictions, confidence, group_masks, resamples=1000, seed=0):
    """``{"ci95": {metric: [low, high] or None}, "ci_resamples", "ci_seed"}`` for one test.

    ``labels`` -1 marks open samples (then the run is open-set and the F-measure and AUROC get
    intervals too); ``predictions`` are the run's (-1 = rejected); ``confidence`` the score the
    AUROC ranks (max softmax probability). ``resamples`` 0 gives no intervals.
    """
    labels, predictions = np.asarray(labels, np.int64), np.asarray(predictions, np.int64)
    confidence = np.asarray(confidence, np.float64)
    if resamples <= 0:
        return {"ci95": None, "ci_resamples": 0, "ci_seed": seed}
    rng = np.random.default_rng(seed)
    is_open = labels == OPEN_LABEL
    known_labels = labels[~is_open]
    known_correct = predictions[~is_open] == known_labels
    values, drawn = accuracy_resamples(known_labels, known_correct, group_masks, resamples, rng)
    if is_open.any():
        num_open = int(is_open.sum())
        kept_open = int(np.count_nonzero(predictions[is_open] != OPEN_LABEL))
        true_pos = drawn.sum(axis=1).astype(np.float64)
        false_neg = rng.binomial(num_open, kept_open / num_open, size=resamples).astype(np.float64)
        values["f_measure"] = _f_measure(true_pos, known_labels.size - true_pos, false_neg)
        values["open_auroc"] = auroc_resamples(confidence[~is_open], known_labels, confidence[is_open], resamples, rng)
    intervals = {}
    for key, samples in values.items():
        intervals[key] = None if samples is None else _pair(*percentile_interval(samples))
    return {"ci95": intervals, "ci_resamples": int(resamples), "ci_seed": int(seed)}


# ------------------------------------------------------------------ two runs, paired


def paired_resamples(labels, correct_a, correct_b, group_masks, resamples, rng):
    """{overall_top1, many/medium/few_shot_top1: (resamples,) differences A - B or None} and the observed ones.

    Both models' correctness is on the same known test images (same order); each resample draws
    the same images for both.
    """
    labels = np.asarray(labels, np.int64)
    correct_a, correct_b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    num_classes = np.asarray(group_masks["many"]).size
    totals = np.bincount(labels, minlength=num_classes)
    only_a = np.bincount(labels[correct_a & ~correct_b], minlength=num_classes)
    only_b = np.bincount(labels[correct_b & ~correct_a], minlength=num_classes)
    discordant = only_a + only_b
    share = np.divide(discordant, totals, out=np.zeros(num_classes), where=totals > 0)
    favour_a = np.divide(only_a, discordant, out=np.zeros(num_classes), where=discordant > 0)
    drawn_discordant = rng.binomial(totals, share, size=(resamples, num_classes))
    drawn_a = rng.binomial(drawn_discordant, favour_a)
    present = totals > 0
    scale = np.where(present, totals, 1)
    resampled = (2 * drawn_a - drawn_discordant) / scale  # (A-only - B-only) / n_c per class
    observed = ((only_a - only_b) / scale)[None, :]
    values, point = {}, {}
    for source, target in ((resampled, values), (observed, point)):
        groups = _group_means(source, group_masks, present)
        target["overall_top1"] = (source * scale).sum(axis=1) / totals.sum()
        target.update({f"{name}_shot_top1": groups[name] for name in SHOT_GROUPS})
    return values, {key: None if value is None else float(value[0]) for key, value in point.items()}


def pooled_paired_difference(pairs, group_masks, resamples=1000, seed=0):
    """Difference A - B per shot group, averaged over seeds, with its paired-bootstrap interval.

    ``pairs``: [(labels, correct_a, correct_b)], one per seed. The seeds' resamples are drawn
    independently and averaged resample by resample, so the interval is that of the mean over seeds.
    Returns {metric: {"mean", "low", "high", "significant"} or None}, in the units of the inputs
    (fractions); significant means the interval excludes zero.
    """
    rng = np.random.default_rng(seed)
    per_seed = [paired_resamples(*pair, group_masks, resamples, rng) for pair in pairs]
    summary = {}
    for key in per_seed[0][0]:
        if any(values[key] is None for values, _ in per_seed):
            summary[key] = None
            continue
        mean = float(np.mean([point[key] for _, point in per_seed]))
        low, high = percentile_interval(np.mean([values[key] for values, _ in per_seed], axis=0))
        summary[key] = {"mean": mean, "low": float(low), "high": float(high), "significant": bool(low > 0 or high < 0)}
    return summary


# ------------------------------------------------------------------ over seeds


def t_interval(values):
    """95% interval of the mean of ``values`` (Student's t, n - 1 degrees of freedom); None for n < 2."""
    from scipy.stats import t

    values = np.asarray(values, np.float64)
    if values.size < 2:
        return None
    half = t.ppf(0.5 + CI_LEVEL / 2, values.size - 1) * values.std(ddof=1) / np.sqrt(values.size)
    return [float(values.mean() - half), float(values.mean() + half)]
