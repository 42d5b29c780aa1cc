"""oltr.evaluation.metrics against hand-counted examples and plain float64 references."""

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score

from oltr.evaluation import metrics, summary


def logits_from_probs(probs):
    """Logits whose softmax is exactly ``probs`` (up to rounding)."""
    return np.log(np.asarray(probs, dtype=np.float64))


def probs_with_max(max_probs, num_classes=10, top_class=None):
    """Rows whose max probability is the given value (on ``top_class``, default 0), rest spread evenly."""
    max_probs = np.asarray(max_probs, dtype=np.float64)
    rows = np.repeat(((1 - max_probs) / (num_classes - 1))[:, None], num_classes, axis=1)
    top = np.zeros(len(max_probs), dtype=int) if top_class is None else np.asarray(top_class)
    rows[np.arange(len(max_probs)), top] = max_probs
    return rows


# ---------------------------------------------------------------- shot groups

BOUNDARY_COUNTS = [100, 20, 21, 99, 101, 19]


def test_shot_groups_inclusive_boundaries():
    groups = metrics.shot_groups(BOUNDARY_COUNTS)  # OLTR code: many >= 100, few <= 20
    assert groups["many"].tolist() == [True, False, False, False, True, False]
    assert groups["medium"].tolist() == [False, False, True, True, False, False]
    assert groups["few"].tolist() == [False, True, False, False, False, True]


def test_shot_groups_exclusive_boundaries():
    groups = metrics.shot_groups(BOUNDARY_COUNTS, inclusive=False)  # paper text: many > 100, few < 20
    assert groups["many"].tolist() == [False, False, False, False, True, False]
    assert groups["medium"].tolist() == [True, True, True, True, False, False]
    assert groups["few"].tolist() == [False, False, False, False, False, True]


def test_shot_groups_custom_thresholds_and_validation():
    groups = metrics.shot_groups([3, 5, 8, 10, 12], many_threshold=10, few_threshold=5)
    assert groups["many"].tolist() == [False, False, False, True, True]
    assert groups["few"].tolist() == [True, True, False, False, False]
    with pytest.raises(ValueError, match="few_threshold"):
        metrics.shot_groups([1, 2], many_threshold=20, few_threshold=20)


def test_shot_group_description_records_sizes_and_rules():
    result = metrics.closed_set_metrics(np.eye(6), np.arange(6), BOUNDARY_COUNTS, inclusive=False)
    groups = result["shot_groups"]
    assert groups["inclusive"] is False
    assert (groups["many"]["num_classes"], groups["medium"]["num_classes"], groups["few"]["num_classes"]) == (1, 4, 1)
    assert groups["many"]["threshold"] == 100 and groups["few"]["threshold"] == 20
    assert groups["many"]["rule"] == "n > 100" and groups["few"]["rule"] == "n < 20"


# ---------------------------------------------------------------- accuracies


def test_group_accuracy_is_mean_of_class_accuracies_not_of_samples():
    # class 0: 3 samples, all right; class 1: 1 sample, wrong. Both many-shot.
    logits = np.array([[5.0, 0.0], [5.0, 0.0], [5.0, 0.0], [5.0, 0.0]])
    labels = np.array([0, 0, 0, 1])
    result = metrics.closed_set_metrics(logits, labels, [500, 300])
    assert result["many_shot_top1"] == pytest.approx(0.5)  # (1 + 0) / 2
    assert result["overall_top1"] == pytest.approx(0.75)  # 3 / 4 samples


def test_empty_group_is_none_never_nan():
    logits = np.eye(3)
    labels = np.array([0, 1, 2])
    result = metrics.closed_set_metrics(logits, labels, [150, 200, 50])  # no class with <= 20 images
    assert result["few_shot_top1"] is None
    assert result["many_shot_top1"] == 1.0 and result["medium_shot_top1"] == 1.0
    # a group whose classes have no test sample is empty as well
    result = metrics.closed_set_metrics(np.eye(3)[:2], np.array([0, 1]), [150, 200, 5])
    assert result["few_shot_top1"] is None
    assert result["per_class_top1"] == [1.0, 1.0, None]
    assert "n/a" in summary.format_results_table(result)


def test_per_class_accuracy_matches_loop_reference():
    rng = np.random.default_rng(7)
    num_classes = 13
    labels = rng.integers(0, num_classes - 2, size=500)  # the last two classes have no test sample
    predictions = np.where(rng.random(500) < 0.4, labels, rng.integers(-1, num_classes, size=500))
    expected = []
    for class_index in range(num_classes):
        members = [i for i in range(len(labels)) if labels[i] == class_index]
        expected.append(np.nan if not members else sum(predictions[i] == class_index for i in members) / len(members))
    np.testing.assert_allclose(
        metrics.per_class_accuracy(predictions, labels, num_classes), expected, rtol=0, atol=1e-15
    )


def test_top5_hand_counted():
    labels = np.array([0, 0, 0])
    logits = np.array(
        [
            [9.0, 1.0, 2.0, 3.0, 4.0, 5.0],  # label ranked 1st -> hit
            [5.0, 1.0, 6.0, 7.0, 8.0, 9.0],  # label ranked 5th -> hit
            [0.0, 1.0, 2.0, 3.0, 4.0, 5.0],  # label ranked 6th -> miss
        ]
    )
    result = metrics.closed_set_metrics(logits, labels, [100] * 6)
    assert result["top5"] == pytest.approx(2 / 3)
    assert result["overall_top1"] == pytest.approx(1 / 3)
    assert metrics.closed_set_metrics(np.eye(4), np.arange(4), [1] * 4)["top5"] is None


def test_macro_f1_matches_formula_and_sklearn():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 6, size=300)
    logits = rng.normal(size=(300, 6)) + 1.5 * np.eye(6)[labels]
    predictions = logits.argmax(1)
    result = metrics.closed_set_metrics(logits, labels, [50] * 6)
    per_class = []
    for c in np.union1d(labels, predictions):
        tp = np.sum((predictions == c) & (labels == c))
        fp = np.sum((predictions == c) & (labels != c))
        fn = np.sum((predictions != c) & (labels == c))
        per_class.append(2 * tp / (2 * tp + fp + fn))
    assert result["macro_f1"] == pytest.approx(np.mean(per_class), abs=1e-12)
    assert result["macro_f1"] == pytest.approx(f1_score(labels, predictions, average="macro"), abs=1e-12)


def test_closed_set_rejects_open_labels():
    with pytest.raises(ValueError, match=">= 0"):
        metrics.closed_set_metrics(np.eye(3), np.array([0, -1, 2]), [5, 5, 5])


def test_torch_inputs_give_the_same_numbers():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(64, 7))
    labels = rng.integers(0, 7, size=64)
    counts = [300, 120, 60, 30, 20, 10, 5]
    expected = metrics.closed_set_metrics(logits, labels, counts)
    got = metrics.closed_set_metrics(torch.tensor(logits), torch.tensor(labels), torch.tensor(counts))
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == (pytest.approx(value, abs=1e-12) if isinstance(value, float) else value), key


# ---------------------------------------------------------------- calibration


def test_ece_hand_computed():
    probs = np.array([[0.95, 0.05], [0.97, 0.03], [0.55, 0.45], [0.75, 0.25], [0.22, 0.78]])
    labels = np.array([0, 1, 0, 0, 1])
    # 15 bins of width 1/15. (0.9333, 1]: conf 0.95 right, 0.97 wrong -> |0.5 - 0.96| = 0.46, weight 2/5
    # (0.5333, 0.6]: 0.55 right -> |1 - 0.55| = 0.45, weight 1/5
    # (0.7333, 0.8]: 0.75 and 0.78 right -> |1 - 0.765| = 0.235, weight 2/5
    expected = 0.4 * 0.46 + 0.2 * 0.45 + 0.4 * 0.235  # = 0.368
    assert metrics.expected_calibration_error(probs, labels) == pytest.approx(expected, abs=1e-12)
    # one bin: |accuracy - mean confidence| = |4/5 - 4.0/5| = 0
    assert metrics.expected_calibration_error(probs, labels, num_bins=1) == pytest.approx(0.0, abs=1e-12)
    closed = metrics.closed_set_metrics(logits_from_probs(probs), labels, [10, 10])
    assert closed["ece"] == pytest.approx(expected, abs=1e-9)


# ---------------------------------------------------------------- open set

# Three known classes with training counts 150 (many), 50 (medium), 10 (few); threshold 0.5.
OPEN_PROBS = np.array(
    [
        [0.80, 0.10, 0.10],  # label 0: predicted 0                -> TP
        [0.10, 0.70, 0.20],  # label 1: predicted 1                -> TP
        [0.60, 0.20, 0.20],  # label 2: predicted 0                -> FP
        [0.40, 0.30, 0.30],  # label 0: argmax right but 0.4 < 0.5 -> rejected -> FP
        [0.10, 0.85, 0.05],  # label 1: predicted 1                -> TP
        [0.45, 0.30, 0.25],  # open: 0.45 < 0.5, rejected          -> nothing
        [0.20, 0.70, 0.10],  # open: accepted as class 1           -> FN
    ]
)
OPEN_LABELS = np.array([0, 1, 2, 0, 1, -1, -1])
OPEN_COUNTS = [150, 50, 10]


def test_open_f_measure_hand_counted():
    result = metrics.open_set_metrics(logits_from_probs(OPEN_PROBS), OPEN_LABELS, OPEN_COUNTS, threshold=0.5)
    # TP = 3, FP = 2, FN = 1: precision 3/5, recall 3/4, F = 2 * 0.6 * 0.75 / 1.35 = 2/3
    assert result["f_measure"] == pytest.approx(2 / 3, abs=1e-12)
    assert result["overall_top1"] == pytest.approx(3 / 5)
    assert result["open_rejection_acc"] == pytest.approx(1 / 2)
    assert (result["num_known"], result["num_open"], result["threshold"]) == (5, 2, 0.5)
    # per class on known samples: class 0 1/2 (one rejected), class 1 2/2, class 2 0/1
    assert result["per_class_top1"] == pytest.approx([0.5, 1.0, 0.0])
    assert (result["many_shot_top1"], result["medium_shot_top1"], result["few_shot_top1"]) == pytest.approx(
        (0.5, 1.0, 0.0)
    )


def test_threshold_rejection_makes_a_known_sample_wrong():
    logits = logits_from_probs(OPEN_PROBS)
    lenient = metrics.open_set_metrics(logits, OPEN_LABELS, OPEN_COUNTS, threshold=0.3)
    strict = metrics.open_set_metrics(logits, OPEN_LABELS, OPEN_COUNTS, threshold=0.5)
    # sample 3 (label 0, max prob 0.40, argmax right) is accepted at 0.3, rejected at 0.5
    assert lenient["per_class_top1"][0] == 1.0 and strict["per_class_top1"][0] == 0.5
    assert lenient["overall_top1"] == pytest.approx(4 / 5) and strict["overall_top1"] == pytest.approx(3 / 5)
    # at 0.3 nothing is rejected: TP 4, FP 1, FN 2 -> P 4/5, R 4/6, F = 2*(0.8*2/3)/(0.8+2/3) = 8/11
    assert lenient["f_measure"] == pytest.approx(8 / 11, abs=1e-12)
    assert lenient["open_rejection_acc"] == 0.0


def test_f_measure_undefined_is_zero():
    assert metrics.f_measure(0, 0, 0) == 0.0
    assert metrics.f_measure(0, 3, 2) == 0.0


def test_open_auroc_hand_computed():
    # known scores 0.9, 0.6, 0.4; open 0.5, 0.3: known beats open in 2 + 2 + 1 of 6 pairs
    probs = probs_with_max([0.9, 0.6, 0.4, 0.5, 0.3])
    labels = np.array([0, 0, 0, -1, -1])
    result = metrics.open_set_metrics(logits_from_probs(probs), labels, [100] + [10] * 9)
    assert result["open_auroc"] == pytest.approx(5 / 6, abs=1e-12)


def test_fpr_at_95_tpr_constructed():
    known = 0.50 + 0.02 * np.arange(20)  # 0.50 ... 0.88; keeping 19 of 20 needs threshold 0.52
    opened = np.array([0.30, 0.45, 0.51, 0.53, 0.60, 0.90])  # 0.53, 0.60, 0.90 pass it -> 3/6
    assert metrics.fpr_at_tpr(known, opened) == pytest.approx(0.5)
    probs = probs_with_max(np.concatenate([known, opened]))
    labels = np.array([0] * 20 + [-1] * 6)
    result = metrics.open_set_metrics(logits_from_probs(probs), labels, [100] + [10] * 9, threshold=0.52)
    assert result["fpr_at_95_tpr"] == pytest.approx(0.5)
    assert result["open_rejection_acc"] == pytest.approx(3 / 6)


def test_open_metrics_without_open_samples():
    result = metrics.open_set_metrics(np.eye(3) * 5, np.arange(3), [5, 50, 500])
    assert result["open_auroc"] is None and result["fpr_at_95_tpr"] is None
    assert result["open_rejection_acc"] is None and result["num_open"] == 0
    assert result["f_measure"] == pytest.approx(1.0)  # P = 1, R = 1 with no open sample


def test_open_ece_uses_known_samples_only():
    probs = np.array([[0.95, 0.05], [0.97, 0.03], [0.55, 0.45], [0.75, 0.25], [0.22, 0.78], [0.9, 0.1]])
    labels = np.array([0, 1, 0, 0, 1, -1])
    result = metrics.open_set_metrics(logits_from_probs(probs), labels, [10, 10])
    assert result["ece"] == pytest.approx(0.368, abs=1e-9)  # as in test_ece_hand_computed


def test_open_set_input_checks():
    with pytest.raises(ValueError, match="-1"):
        metrics.open_set_metrics(np.eye(2), np.array([0, -2]), [5, 5])
    with pytest.raises(ValueError, match="known"):
        metrics.open_set_metrics(np.eye(2), np.array([-1, -1]), [5, 5])
    with pytest.raises(ValueError, match="threshold"):
        metrics.open_set_metrics(np.eye(2), np.array([0, 1]), [5, 5], threshold=1.5)
    with pytest.raises(ValueError, match="class_counts"):
        metrics.open_set_metrics(np.eye(2), np.array([0, 1]), [5, 5, 5])


def test_format_results_table_shows_percentages_and_groups():
    result = metrics.open_set_metrics(logits_from_probs(OPEN_PROBS), OPEN_LABELS, OPEN_COUNTS, threshold=0.5)
    text = summary.format_results_table(result)
    assert "60.0%" in text  # overall top-1 3/5
    assert "0.667" in text  # F-measure
    assert "n >= 100: 1 classes" in text and "n <= 20: 1 classes" in text
    assert "threshold 0.5" in text
