"""The open-set scorers and their numbers, each held against an independent computation.

Scorers: msp, max_logit, energy and gen against float64 torch written from the papers' equations;
mahalanobis against scikit-learn's EmpiricalCovariance; knn against scikit-learn's NearestNeighbors.
Numbers: AUROC, AUPR and FPR95 (both positive sides) against scikit-learn's curves; the validation
threshold and the F-measure at it against a brute-force loop.
"""

import numpy as np
import pytest
import torch
from sklearn.covariance import EmpiricalCovariance
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve
from sklearn.neighbors import NearestNeighbors

from oltr.common.errors import ConfigError
from oltr.config.schema import validate
from oltr.evaluation.metrics import open_set_metrics
from oltr.evaluation.open_scores import fpr_at_recall, recall_threshold, scorer_metrics
from oltr.evaluation.scorers import LOGIT_SCORERS, SCORERS, build_scorer

SHOTS = {"many_threshold": 30, "few_threshold": 10, "inclusive": True}
COUNTS = [60, 40, 20, 12, 8, 5]


def logits_features(seed=0, rows=40, classes=6, dim=5):
    generator = np.random.default_rng(seed)
    return generator.normal(size=(rows, classes)) * 3, generator.normal(size=(rows, dim))


def test_every_registered_scorer_is_here_and_the_default_is_every_logit_scorer():
    assert set(SCORERS.names()) == {"msp", "max_logit", "energy", "gen", "mahalanobis", "knn"}
    assert set(LOGIT_SCORERS) == {name for name in SCORERS.names() if not SCORERS.get(name).needs_features}
    assert validate(
        {
            "training_opt": {
                "dataset": "Digits_LT",
                "data_root": "d",
                "log_dir": "l",
                "num_classes": 8,
                "batch_size": 4,
                "num_epochs": 1,
                "feature_dim": 8,
            },
            "networks": {
                "feat_model": {"type": "resnet10", "optim_params": {"lr": 0.1}},
                "classifier": {"type": "dot_product", "optim_params": {"lr": 0.1}},
            },
            "criterions": {"PerformanceLoss": {"loss": "softmax"}},
        }
    )["evaluation"]["open_scores"] == list(LOGIT_SCORERS)


@pytest.mark.parametrize("temperature", [1.0, 0.5, 7.0])
def test_logit_scorers_match_the_papers_equations(temperature):
    z, _ = logits_features()
    t = torch.tensor(z, dtype=torch.float64)
    p = torch.softmax(t, dim=1)
    assert np.allclose(build_scorer("msp").score(z), p.max(dim=1).values.numpy(), rtol=1e-12)
    assert np.allclose(build_scorer("max_logit").score(z), t.max(dim=1).values.numpy(), rtol=1e-12)
    energy = temperature * torch.logsumexp(t / temperature, dim=1)  # -E(x; T), Liu et al. Eq. 1
    assert np.allclose(build_scorer("energy", temperature=temperature).score(z), energy.numpy(), rtol=1e-12)


@pytest.mark.parametrize("gamma, top_m", [(0.1, 100), (0.1, 3), (0.5, 1)])
def test_gen_is_the_generalised_entropy_of_the_top_m_probabilities(gamma, top_m):
    z, _ = logits_features(seed=1)
    expected = []
    for row in torch.softmax(torch.tensor(z, dtype=torch.float64), dim=1).tolist():
        top = sorted(row, reverse=True)[: min(top_m, len(row))]
        expected.append(-sum(p**gamma * (1 - p) ** gamma for p in top))
    assert np.allclose(build_scorer("gen", gamma=gamma, top_m=top_m).score(z), expected, rtol=1e-12)


def test_scores_are_not_fooled_by_huge_logits():
    z = np.array([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0]])
    for name in LOGIT_SCORERS:
        assert np.all(np.isfinite(build_scorer(name).score(z))), name
    assert build_scorer("msp").score(z).tolist() == pytest.approx([1.0, 1 / 3])


def test_mahalanobis_is_sklearns_distance_to_the_nearest_class_mean():
    generator = np.random.default_rng(2)
    labels = np.repeat(np.arange(4), [30, 20, 10, 6])
    features = generator.normal(size=(labels.size, 5)) + labels[:, None]
    queries = generator.normal(size=(9, 5)) * 2
    scorer = build_scorer("mahalanobis")
    scorer.fit(features, labels, 4)
    means = np.stack([features[labels == c].mean(axis=0) for c in range(4)])
    shared = EmpiricalCovariance(assume_centered=True).fit(features - means[labels])
    expected = -np.min([shared.mahalanobis(queries - mean) for mean in means], axis=0)
    assert np.allclose(scorer.score(None, queries), expected, rtol=1e-9)


def test_mahalanobis_survives_a_singular_covariance_and_refuses_an_empty_class():
    labels = np.array([0, 0, 1, 1])
    features = np.array([[1.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 3.0, 0.0]])  # rank 2 of 3
    scorer = build_scorer("mahalanobis")
    scorer.fit(features, labels, 2)
    assert np.all(np.isfinite(scorer.score(None, features)))
    with pytest.raises(Exception, match="class 2 has none"):
        scorer.fit(features, labels, 3)


@pytest.mark.parametrize("k", [1, 5, 500])
def test_knn_is_sklearns_kth_neighbour_distance_on_normalised_features(k):
    generator = np.random.default_rng(3)
    bank, queries = generator.normal(size=(50, 6)), generator.normal(size=(7, 6))
    scorer = build_scorer("knn", k=k)
    scorer.fit(bank, np.zeros(50, int), 1)
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    distances, _ = NearestNeighbors(n_neighbors=min(k, 50)).fit(unit(bank)).kneighbors(unit(queries))
    assert np.allclose(scorer.score(None, queries), -distances[:, -1], atol=1e-5)


def test_a_scorer_param_of_the_wrong_kind_is_a_config_error_naming_it():
    with pytest.raises(ConfigError, match="open_score_params.knn"):
        build_scorer("knn", k=0)
    with pytest.raises(ConfigError, match="open_score_params.energy"):
        build_scorer("energy", temp=2)
    with pytest.raises(ConfigError, match="did you mean 'energy'"):
        build_scorer("enrgy")


def sklearn_fpr95(positive, negative):
    truth = np.r_[np.ones(positive.size), np.zeros(negative.size)]
    fpr, tpr, _ = roc_curve(truth, np.r_[positive, negative], drop_intermediate=False)
    return fpr[np.searchsorted(tpr, 0.95, side="left")]


@pytest.mark.parametrize("ties", [False, True])
def test_threshold_free_numbers_match_sklearn_on_both_positive_sides(ties):
    generator = np.random.default_rng(4)
    known, open_ = generator.normal(1.0, 1.0, 200), generator.normal(0.0, 1.0, 70)
    if ties:  # a coarse score: many tied (known, open) pairs
        known, open_ = np.round(known), np.round(open_)
    labels = generator.integers(0, 6, 200)
    metrics = scorer_metrics(known, labels, labels, open_, COUNTS, SHOTS)
    truth = np.r_[np.ones(200), np.zeros(70)]
    scores = np.r_[known, open_]
    assert metrics["auroc"] == pytest.approx(roc_auc_score(truth, scores), abs=1e-12)
    assert metrics["aupr_in"] == pytest.approx(average_precision_score(truth, scores), abs=1e-12)
    assert metrics["aupr_out"] == pytest.approx(average_precision_score(1 - truth, -scores), abs=1e-12)
    assert metrics["fpr95"] == pytest.approx(sklearn_fpr95(known, open_), abs=1e-12)
    assert metrics["fpr95_open_positive"] == pytest.approx(sklearn_fpr95(-open_, -known), abs=1e-12)
    for name, group in (("many", [0, 1]), ("medium", [2, 3]), ("few", [4, 5])):
        members = np.isin(labels, group)
        expected = roc_auc_score(np.r_[np.ones(members.sum()), np.zeros(70)], np.r_[known[members], open_])
        assert metrics["auroc_by_shot"][name] == pytest.approx(expected, abs=1e-12)


def test_msp_numbers_agree_with_the_results_oltr_threshold_keys():
    z, _ = logits_features(seed=5, rows=60)
    labels = np.r_[np.arange(40) % 6, -np.ones(20, int)]
    fixed = open_set_metrics(z, labels, COUNTS, threshold=0.5, **SHOTS)
    scores = build_scorer("msp").score(z)
    ours = scorer_metrics(scores[:40], labels[:40], z[:40].argmax(1), scores[40:], COUNTS, SHOTS)
    assert ours["auroc"] == pytest.approx(fixed["open_auroc"], abs=1e-12)
    assert ours["fpr95"] == pytest.approx(fixed["fpr_at_95_tpr"], abs=1e-12)


def test_validation_threshold_and_f_measure_by_brute_force():
    generator = np.random.default_rng(6)
    val = np.round(generator.normal(size=40), 1)  # ties at the threshold are accepted together
    known, open_ = generator.normal(0.5, 1.0, 50), generator.normal(-0.5, 1.0, 30)
    labels = generator.integers(0, 6, 50)
    argmax = np.where(generator.random(50) < 0.7, labels, (labels + 1) % 6)
    for rate in (0.95, 0.5, 1.0, 0.01):
        # the highest candidate threshold that still accepts at least `rate` of the validation images
        threshold = max(t for t in val if np.mean(val >= t) >= rate)
        assert recall_threshold(val, rate) == threshold
        at_val = scorer_metrics(known, labels, argmax, open_, COUNTS, SHOTS, val, rate)["at_val"]
        true_pos = sum(1 for s, y, a in zip(known, labels, argmax) if s >= threshold and a == y)
        false_pos = 50 - true_pos
        false_neg = sum(1 for s in open_ if s >= threshold)
        precision, recall = true_pos / (true_pos + false_pos), true_pos / (true_pos + false_neg)
        assert at_val["f_measure"] == pytest.approx(2 * precision * recall / (precision + recall))
        assert at_val["overall_top1"] == pytest.approx(true_pos / 50)
        assert at_val["known_accepted"] == pytest.approx(np.mean(known >= threshold))
        assert at_val["open_rejected"] == pytest.approx(np.mean(open_ < threshold))
    assert fpr_at_recall([], open_) is None and fpr_at_recall(known, []) is None


def test_a_validation_threshold_follows_the_logit_scale_where_a_fixed_one_collapses():
    # A recipe that shrinks the logits (as tau-norm can) keeps its argmax, so its closed-set accuracy,
    # but its max softmax probability falls below OLTR's fixed threshold; the validation threshold
    # is chosen on the same scale and keeps accepting ~95% of the known images.
    generator = np.random.default_rng(7)
    classes, known_rows, open_rows = 6, 300, 100

    def logits_for(labels, margin):
        z = generator.normal(size=(labels.size, classes))
        known = labels >= 0
        z[np.flatnonzero(known), labels[known]] += margin
        return z

    labels = np.r_[generator.integers(0, classes, known_rows), -np.ones(open_rows, int)]
    z = logits_for(labels, 4.0)
    val_labels = generator.integers(0, classes, 120)
    val_z = logits_for(val_labels, 4.0)
    closed_top1 = np.mean(z[:known_rows].argmax(1) == labels[:known_rows])
    for scale, fixed_survives in ((1.0, True), (0.1, False)):
        fixed = open_set_metrics(z * scale, labels, [50] * classes, threshold=0.5, **SHOTS)
        msp = build_scorer("msp")
        scores, val_scores = msp.score(z * scale), msp.score(val_z * scale)
        at_val = scorer_metrics(
            scores[:known_rows],
            labels[:known_rows],
            z[:known_rows].argmax(1),
            scores[known_rows:],
            [50] * classes,
            SHOTS,
            val_scores,
            0.95,
        )["at_val"]
        assert at_val["overall_top1"] >= closed_top1 - 0.08  # about 5% of the known images turned away
        assert (fixed["overall_top1"] >= closed_top1 - 0.1) == fixed_survives
    assert fixed["overall_top1"] < 0.05  # scale 0.1: the fixed threshold rejects nearly every known image
