"""Open-set extras against independent computations: sklearn, brute-force loops, hand-computed cases."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from oltr.evaluation.metrics import open_set_metrics, shot_groups
from oltr.evaluation.metrics_open import auroc, average_precision, open_set_extras, oscr


def _brute_oscr(known_scores, known_correct, open_scores):
    """CCR/FPR at every threshold d in the scores (plus one above all), trapezoids in a plain loop."""
    points = [(0.0, 0.0)]
    for d in sorted(set(np.r_[known_scores, open_scores]), reverse=True):
        ccr = sum(1 for s, c in zip(known_scores, known_correct) if c and s >= d) / len(known_scores)
        fpr = sum(1 for s in open_scores if s >= d) / len(open_scores)
        points.append((fpr, ccr))
    return sum((f1 - f0) * (c0 + c1) / 2 for (f0, c0), (f1, c1) in zip(points, points[1:]))


def _random_open_case(seed, num_classes=6, known=60, unknown=25, rounding=None):
    rng = np.random.default_rng(seed)
    labels = np.r_[rng.integers(0, num_classes, known), -np.ones(unknown, int)]
    logits = rng.normal(size=(labels.size, num_classes)) * 2
    logits[labels >= 0, labels[labels >= 0]] += rng.random((labels >= 0).sum()) * 3
    if rounding is not None:
        logits = logits.round(rounding)  # ties in the scores
    counts = rng.integers(1, 200, num_classes)
    counts[:2] = (150, 5)  # every shot group present (many >= 100, few <= 20)
    counts[2] = 50
    return logits, labels, counts


@pytest.mark.parametrize("seed", range(4))
def test_aupr_and_auroc_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    known, unknown = rng.random(40).round(1 + seed % 2), rng.random(23).round(1)  # many ties
    truth = np.r_[np.ones(40), np.zeros(23)]
    scores = np.r_[known, unknown]
    assert average_precision(known, unknown) == pytest.approx(average_precision_score(truth, scores))
    assert average_precision(-unknown, -known) == pytest.approx(average_precision_score(1 - truth, -scores))
    assert auroc(known, unknown) == pytest.approx(roc_auc_score(truth, scores))


@pytest.mark.parametrize("seed", range(5))
def test_oscr_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    known = rng.random(30).round(seed % 3 + 1)
    correct = rng.random(30) < 0.6
    unknown = rng.random(17).round(1)
    assert oscr(known, correct, unknown) == pytest.approx(_brute_oscr(known, correct, unknown))


def test_oscr_toy_cases():
    # perfect classifier, every known score above every open one: CCR 1 before any open is accepted
    assert oscr([0.9, 0.8, 0.7], [True, True, True], [0.1, 0.2]) == pytest.approx(1.0)
    # by hand: known (0.9 right, 0.5 wrong), open (0.7, 0.3): points (0,0) (0,.5) (.5,.5) (.5,.5) (1,.5)
    assert oscr([0.9, 0.5], [True, False], [0.7, 0.3]) == pytest.approx(0.5)
    # open above every known: CCR rises only once FPR is 1
    assert oscr([0.2, 0.3], [True, True], [0.9]) == pytest.approx(0.0)
    # random scores: about accuracy / 2
    rng = np.random.default_rng(0)
    correct = rng.random(20000) < 0.7
    value = oscr(rng.random(20000), correct, rng.random(20000))
    assert value == pytest.approx(correct.mean() / 2, abs=0.01)


def test_f_measure_curve_matches_fixed_threshold():
    logits, labels, counts = _random_open_case(1)
    curve = open_set_extras(logits, labels, counts)["f_measure_curve"]
    assert len(curve["thresholds"]) == 101 and curve["thresholds"][0] == 0 and curve["thresholds"][-1] == 1
    for index in (10, 20, 35, 50):
        threshold = curve["thresholds"][index]
        fixed = open_set_metrics(logits, labels, counts, threshold=threshold)
        assert curve["f_measure"][index] == pytest.approx(fixed["f_measure"], abs=1e-12)
    # precision/recall by hand at the 0.1 default
    probabilities = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    kept = probabilities.max(1) >= 0.1
    right = (probabilities.argmax(1) == labels) & kept & (labels >= 0)
    true_pos = right.sum()
    assert curve["precision"][10] == pytest.approx(true_pos / (labels >= 0).sum())
    assert curve["recall"][10] == pytest.approx(true_pos / (true_pos + (kept & (labels < 0)).sum()))


def test_auroc_by_shot_matches_sklearn_on_the_subset():
    logits, labels, counts = _random_open_case(2, rounding=1)
    extras = open_set_extras(logits, labels, counts)
    probabilities = np.exp(logits - logits.max(1, keepdims=True))
    score = (probabilities / probabilities.sum(1, keepdims=True)).max(1)
    groups = shot_groups(counts)
    for name, mask in groups.items():
        subset = (labels < 0) | ((labels >= 0) & mask[np.maximum(labels, 0)])
        expected = roc_auc_score(labels[subset] >= 0, score[subset])
        assert extras["open_auroc_by_shot"][name] == pytest.approx(expected)
    truth = labels >= 0
    assert extras["open_aupr_in"] == pytest.approx(average_precision_score(truth, score))
    assert extras["open_aupr_out"] == pytest.approx(average_precision_score(~truth, -score))


def test_no_open_samples_gives_none_and_empty_group_none():
    logits, labels, counts = _random_open_case(3)
    extras = open_set_extras(logits[labels >= 0], labels[labels >= 0], counts)
    assert extras["oscr"] is None and extras["f_measure_curve"] is None
    counts_no_few = np.full(counts.size, 500)
    by_shot = open_set_extras(logits, labels, counts_no_few)["open_auroc_by_shot"]
    assert by_shot["few"] is None and by_shot["medium"] is None and by_shot["many"] is not None
