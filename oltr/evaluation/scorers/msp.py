"""Maximum softmax probability: Hendrycks and Gimpel, "A Baseline for Detecting Misclassified and
Out-of-Distribution Examples in Neural Networks", ICLR 2017. OLTR's open-set score (its threshold 0.1)."""

import numpy as np

from .base import Scorer, log_softmax, logits_array, register_scorer


@register_scorer
class MaxSoftmax(Scorer):
    name = "msp"
    paper = "Hendrycks and Gimpel, ICLR 2017"

    def score(self, logits, features=None):
        return np.exp(log_softmax(logits_array(logits)).max(axis=1))
