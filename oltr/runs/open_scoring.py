"""``--test_open``'s scorers: build them from ``evaluation.open_scores``, fit the feature ones on the
training split (cached in the run directory under the checkpoint's hash), and score every split.

The results gain ``open_scorers``: per scorer, the threshold-free numbers, the AUROC of each shot
group's known images against the open set, and the F-measure and open-set accuracies at the
validation threshold (oltr.evaluation.open_scores). The predictions file gains each scorer's test scores
(``score_<name>``) for the report's paired comparisons.
"""

from pathlib import Path

import numpy as np

from ..common.atomic import write_atomic
from ..common.errors import ConfigError
from ..data import loaders
from ..engine.run_dir import note
from ..evaluation.open_scores import scorer_metrics
from ..evaluation.scorers import SCORERS, build_scorer
from ..evaluation.scorers.base import logits_array
from ..recipes.decoupled import collect_features
from .run import samples_sha256


def build_scorers(config):
    """[(name, scorer)] in the config's order; a ConfigError naming an unknown scorer or param."""
    evaluation = config["evaluation"]
    scorers = []
    for name in evaluation["open_scores"]:
        if name not in SCORERS:
            try:
                SCORERS.get(name)  # raises, naming the closest scorer
            except ConfigError as error:
                raise ConfigError(f"evaluation.open_scores: {error}") from None
        scorers.append((name, build_scorer(name, **evaluation["open_score_params"].get(name, {}))))
    return scorers


def needs_features(scorers):
    return any(scorer.needs_features for _, scorer in scorers)


def training_features(config, feat_model, ctx, weights_sha256):
    """(features, labels) of the training split with test-time transforms, from the run's cache when it
    holds the same checkpoint's features of the same split, else from one pass (then cached)."""
    training_opt = config["training_opt"]
    samples = loaders.load_samples(training_opt, "train")
    digest = samples_sha256(samples, training_opt["data_root"])
    path = Path(training_opt["log_dir"]) / f"open_fit_features-{weights_sha256[:16]}.npz"
    try:
        with np.load(path) as saved:
            if str(saved["split_sha256"]) == digest and saved["features"].shape[0] == len(samples):
                return saved["features"], saved["labels"]
    except (OSError, KeyError, ValueError):
        pass  # absent, unreadable or of another split: computed again below
    features, labels = collect_features(feat_model, training_opt, samples, ctx, "open-set scorer fit")
    features, labels = features.numpy(), labels.numpy()
    if ctx.is_main:
        arrays = {"features": features, "labels": labels, "split_sha256": np.array(digest)}
        write_atomic(path, lambda handle: np.savez(handle, **arrays), binary=True)
        note(f"cached the training features of the feature scorers in {path}")
    return features, labels


def fit_scorers(scorers, config, network, ctx, weights_sha256):
    """Fit every feature scorer on the training split's features (one pass, or the cache)."""
    if not needs_features(scorers):
        return
    features, labels = training_features(config, network.feat_model, ctx, weights_sha256)
    for _, scorer in scorers:
        if scorer.needs_features:
            scorer.fit(features, labels, config["training_opt"]["num_classes"])


def score_splits(scorers, logits, features):
    """{name: float64 scores} of every scorer on the same rows."""
    return {name: scorer.score(logits, features) for name, scorer in scorers}


def open_scorer_results(scorers, config, class_counts, shot_args, test, val):
    """The results' ``open_scorers`` and the per-row test scores.

    ``test``: (logits, labels, features) of the test split then the open split (label -1);
    ``val``: (logits, labels, features) of the validation split.
    """
    logits, labels, features = test
    labels = np.asarray(labels, np.int64)
    known = labels >= 0
    argmax = logits_array(logits).argmax(axis=1)
    test_scores = score_splits(scorers, logits, features)
    val_logits, _, val_features = val  # the validation split is all known: its labels are not needed
    val_scores = score_splits(scorers, val_logits, val_features)
    accept_rate = config["evaluation"]["val_accept_rate"]
    results = {}
    for name, scorer in scorers:
        scores = test_scores[name]
        results[name] = {
            "scorer": scorer.describe(),
            "paper": scorer.paper,
            **scorer_metrics(
                scores[known],
                labels[known],
                argmax[known],
                scores[~known],
                class_counts,
                shot_args,
                val_known_scores=val_scores[name],
                accept_rate=accept_rate,
            ),
        }
    return {"open_scorers": results, "val_accept_rate": accept_rate}, test_scores
