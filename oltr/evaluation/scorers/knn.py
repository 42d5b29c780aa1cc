"""Deep nearest neighbours: Sun, Ming, Zhu, Li, "Out-of-Distribution Detection with Deep Nearest
Neighbors", ICML 2022, Sec. 3.

Fit: the L2-normalised features of the training split. score = -||z/|z| - z_(k)||, the distance to the
k-th nearest normalised training feature (the paper's k = 50 on CIFAR-10 with every training image;
1000 on ImageNet). k above the number of training images is taken as that number.
"""

import numpy as np

from .base import Scorer, register_scorer

_CHUNK = 256  # query rows per distance block: 256 x 116k floats (ImageNet-LT train) is 120 MB


def _normalised(features):
    features = np.asarray(features, np.float32)
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


@register_scorer
class KNearestNeighbour(Scorer):
    name = "knn"
    paper = "Sun et al., ICML 2022"
    needs_features = True

    def __init__(self, k=50):
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise TypeError(f"k must be a positive integer, got {k!r}")
        self.k = k

    def fit(self, features, labels, num_classes):
        self.bank = _normalised(features)

    def score(self, logits, features=None):
        queries = _normalised(features)
        k = min(self.k, len(self.bank))
        scores = np.empty(len(queries))
        for start in range(0, len(queries), _CHUNK):
            block = queries[start : start + _CHUNK]
            # unit vectors: |a - b|^2 = 2 - 2 a.b, so the k-th nearest is the k-th largest dot product
            similarity = block @ self.bank.T
            kth = -np.partition(-similarity, k - 1, axis=1)[:, k - 1]
            scores[start : start + _CHUNK] = -np.sqrt(np.maximum(2.0 - 2.0 * kth.astype(np.float64), 0.0))
        return scores

    def describe(self):
        return f"knn (k={self.k})"
