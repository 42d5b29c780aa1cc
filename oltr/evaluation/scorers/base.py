"""The scorer protocol and its registry.

A scorer maps a test image to one number, higher meaning "more likely a known class". A logit scorer
reads the logits alone; a feature scorer (``needs_features``) also reads the features and must be
fitted first on the training split's features and labels. ``params`` are a scorer's constructor
arguments, given in ``evaluation.open_score_params.<name>``.
"""

import numpy as np

from losses.registry import Registry

from ...common.errors import ConfigError

SCORERS = Registry("open-set scorer", "open-set scorers", error=ConfigError)


class Scorer:
    """Base class: ``score(logits, features)`` -> float64 (N,), higher = known."""

    name = None
    needs_features = False
    paper = ""

    def fit(self, features, labels, num_classes):
        """Learn what the score needs from training features (N, D) and labels (N,); logit scorers need nothing."""

    def score(self, logits, features=None):
        raise NotImplementedError

    def describe(self):
        return self.name


def register_scorer(cls):
    """Class decorator: register ``cls`` under ``cls.name``."""
    SCORERS.register(cls.name, cls)
    return cls


def build_scorer(name, **params):
    """The scorer registered as ``name``, with its params; a ConfigError naming a wrong param."""
    cls = SCORERS.get(name)
    try:
        return cls(**params)
    except TypeError as error:
        raise ConfigError(
            f"evaluation.open_score_params.{name}: {error}; see docs/open-set.md for each scorer's params"
        ) from None


def logits_array(logits):
    """float64 numpy (N, C) from a tensor or array."""
    return np.asarray(logits.detach().cpu().double() if hasattr(logits, "detach") else logits, np.float64)


def log_softmax(z):
    """Row-wise log softmax of float64 logits, stable for any finite scale."""
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


# Every logit scorer: evaluation.open_scores' default (they cost no pass over the training split).
LOGIT_SCORERS = ("msp", "max_logit", "energy", "gen")
