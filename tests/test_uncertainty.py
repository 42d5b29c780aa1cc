"""Bootstrap intervals: coverage on simulated truth, determinism, brute force; paired differences; t-intervals."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from oltr.evaluation.metrics import shot_groups
from oltr.evaluation.uncertainty import (
    _stratified_weights,
    auroc_resamples,
    pooled_paired_difference,
    run_intervals,
    t_interval,
)

COUNTS = np.array([300, 150, 120, 60, 40, 30, 15, 8, 5, 3])  # many: 3 classes, medium: 3, few: 4


def _groups():
    return shot_groups(COUNTS)


def test_coverage_of_the_overall_accuracy_on_simulated_truth():
    """Per class, k ~ Binomial(n, p_c) with known p_c: the 95% interval holds the true accuracy 92-98% of the time."""
    rng = np.random.default_rng(123)
    per_class_n = 30
    truth_p = np.linspace(0.3, 0.9, COUNTS.size)
    labels = np.repeat(np.arange(COUNTS.size), per_class_n)
    true_overall, true_few = truth_p.mean(), truth_p[_groups()["few"]].mean()
    trials, covered, covered_few = 400, 0, 0
    for trial in range(trials):
        correct = rng.random(labels.size) < truth_p[labels]
        ci = run_intervals(
            labels, np.where(correct, labels, -2), np.ones(labels.size), _groups(), resamples=400, seed=trial
        )["ci95"]
        covered += ci["overall_top1"][0] <= true_overall <= ci["overall_top1"][1]
        covered_few += ci["few_shot_top1"][0] <= true_few <= ci["few_shot_top1"][1]
    assert 0.92 <= covered / trials <= 0.98
    assert 0.92 <= covered_few / trials <= 0.98


def _open_case(seed=0, decimals=2):
    rng = np.random.default_rng(seed)
    labels = np.r_[np.repeat(np.arange(COUNTS.size), 12), -np.ones(50, int)]
    confidence = np.where(labels >= 0, rng.beta(4, 2, labels.size), rng.beta(2, 4, labels.size))
    confidence = confidence if decimals is None else confidence.round(decimals)
    predictions = np.where(rng.random(labels.size) < 0.7, labels, 0)
    predictions[confidence < 0.2] = -1
    return labels, predictions, confidence


def test_interval_holds_the_point_estimate_and_the_same_seed_repeats():
    labels, predictions, confidence = _open_case()
    first = run_intervals(labels, predictions, confidence, _groups(), resamples=500, seed=7)
    assert first == run_intervals(labels, predictions, confidence, _groups(), resamples=500, seed=7)
    assert first != run_intervals(labels, predictions, confidence, _groups(), resamples=500, seed=8)
    assert first["ci_resamples"] == 500 and first["ci_seed"] == 7
    known = labels >= 0
    auc = roc_auc_score(known, confidence)
    low, high = first["ci95"]["open_auroc"]
    assert low <= auc <= high and high - low < 0.3
    accuracy = np.mean(predictions[known] == labels[known])
    assert first["ci95"]["overall_top1"][0] <= accuracy <= first["ci95"]["overall_top1"][1]
    assert set(first["ci95"]) == {
        "overall_top1",
        "many_shot_top1",
        "medium_shot_top1",
        "few_shot_top1",
        "f_measure",
        "open_auroc",
    }
    closed = run_intervals(labels[known], predictions[known], confidence[known], _groups(), 100, 0)["ci95"]
    assert "f_measure" not in closed and "open_auroc" not in closed
    assert run_intervals(labels, predictions, confidence, _groups(), resamples=0)["ci95"] is None


def test_empty_group_has_no_interval():
    labels = np.repeat([0, 1, 2], 10)  # only many-shot classes in the test set
    ci = run_intervals(labels, labels, np.ones(30), _groups(), resamples=50)["ci95"]
    assert ci["few_shot_top1"] is None and ci["many_shot_top1"] == [1.0, 1.0]


@pytest.mark.parametrize("decimals", [2, None])  # tied scores, and the distinct-scores path
def test_weighted_auroc_equals_sklearn_on_the_drawn_resample(decimals):
    """One resample's weights, expanded into repeated images, scored by sklearn: the same AUROC."""
    labels, _, confidence = _open_case(1, decimals)
    known = labels >= 0
    drawn = auroc_resamples(confidence[known], labels[known], confidence[~known], 3, np.random.default_rng(5))
    # redraw the same weights (same generator state) and expand them by hand
    order = np.argsort(labels[known], kind="stable")
    laid_out = np.r_[confidence[known][order], confidence[~known]]
    truth = np.r_[np.ones(known.sum()), np.zeros((~known).sum())]
    sizes = np.r_[np.bincount(labels[known]), (~known).sum()]
    weights = _stratified_weights(sizes, 3, np.random.default_rng(5))
    for row in range(3):
        assert np.all(np.add.reduceat(weights[row], np.r_[0, np.cumsum(sizes)[:-1]]) == sizes)  # stratified
        repeat = np.repeat(np.arange(laid_out.size), weights[row])
        assert drawn[row] == pytest.approx(roc_auc_score(truth[repeat], laid_out[repeat]))


def _pair(seed, better_few=False, identical=False):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(COUNTS.size), 40)
    correct_b = rng.random(labels.size) < 0.6
    correct_a = correct_b.copy() if identical else rng.random(labels.size) < 0.6
    if better_few:
        few = _groups()["few"][labels]
        correct_a = correct_b.copy()
        correct_a[few & ~correct_b] = rng.random((few & ~correct_b).sum()) < 0.8  # never worse, often better
    return labels, correct_a, correct_b


def test_identical_models_differ_by_exactly_zero():
    result = pooled_paired_difference([_pair(0, identical=True), _pair(1, identical=True)], _groups(), 300, 0)
    for key in ("overall_top1", "many_shot_top1", "medium_shot_top1", "few_shot_top1"):
        assert result[key] == {"mean": 0.0, "low": 0.0, "high": 0.0, "significant": False}


def test_better_on_every_few_shot_class_is_significant_and_means_match_brute_force():
    pairs = [_pair(2, better_few=True), _pair(3, better_few=True)]
    result = pooled_paired_difference(pairs, _groups(), 500, 0)
    assert result["few_shot_top1"]["significant"] and result["few_shot_top1"]["low"] > 0
    assert not result["many_shot_top1"]["significant"] and result["many_shot_top1"]["mean"] == 0
    few_classes = np.flatnonzero(_groups()["few"])
    by_hand = np.mean([np.mean([a[l == c].mean() - b[l == c].mean() for c in few_classes]) for l, a, b in pairs])
    assert result["few_shot_top1"]["mean"] == pytest.approx(by_hand)
    overall = np.mean([a.mean() - b.mean() for _, a, b in pairs])
    assert result["overall_top1"]["mean"] == pytest.approx(overall)
    assert result["overall_top1"]["low"] <= overall <= result["overall_top1"]["high"]


def test_paired_interval_matches_index_resampling_in_distribution():
    """Binomial shortcut vs explicit index resampling within classes: same mean and spread of the difference."""
    labels, a, b = _pair(4)
    groups = _groups()
    fast = pooled_paired_difference([(labels, a, b)], groups, 4000, 1)["overall_top1"]
    rng = np.random.default_rng(2)
    diffs = []
    members = [np.flatnonzero(labels == c) for c in range(COUNTS.size)]
    for _ in range(2000):
        picked = np.concatenate([rng.choice(m, m.size) for m in members])
        diffs.append(a[picked].mean() - b[picked].mean())
    low, high = np.percentile(diffs, [2.5, 97.5])
    assert fast["low"] == pytest.approx(low, abs=0.012) and fast["high"] == pytest.approx(high, abs=0.012)


def test_t_interval_closed_form():
    values = [1.0, 2.0, 4.0]
    mean, sd = np.mean(values), np.std(values, ddof=1)
    half = 4.302652729911275 * sd / np.sqrt(3)  # t_{0.975, 2} from tables
    assert t_interval(values) == pytest.approx([mean - half, mean + half])
    assert t_interval([3.0]) is None
