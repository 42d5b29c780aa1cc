"""GEN: Liu, Lochman, Zach, "GEN: Pushing the Limits of Softmax-Based Out-of-Distribution Detection",
CVPR 2023, Eq. 6.

score = -G_gamma(p) = -sum over the M largest probabilities of p_j^gamma (1 - p_j)^gamma, with the
paper's gamma = 0.1 and M = 100 (every class when there are fewer). A confident prediction has one p
near 1 and the rest near 0: every term is near 0, the score near its maximum 0.
"""

import numpy as np

from .base import Scorer, log_softmax, logits_array, register_scorer


@register_scorer
class GeneralizedEntropy(Scorer):
    name = "gen"
    paper = "Liu et al., CVPR 2023"

    def __init__(self, gamma=0.1, top_m=100):
        if not 0 < gamma < 1:
            raise TypeError(f"gamma must be in (0, 1), got {gamma!r}")
        if isinstance(top_m, bool) or not isinstance(top_m, int) or top_m < 1:
            raise TypeError(f"top_m must be a positive integer, got {top_m!r}")
        self.gamma, self.top_m = float(gamma), top_m

    def score(self, logits, features=None):
        probabilities = np.exp(log_softmax(logits_array(logits)))
        m = min(self.top_m, probabilities.shape[1])
        top = -np.partition(-probabilities, m - 1, axis=1)[:, :m]
        return -np.sum(top**self.gamma * (1 - top) ** self.gamma, axis=1)

    def describe(self):
        return f"gen (gamma={self.gamma:g}, M={self.top_m})"
