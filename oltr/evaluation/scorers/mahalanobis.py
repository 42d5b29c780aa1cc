"""Mahalanobis distance: Lee, Lee, Lee, Shin, "A Simple Unified Framework for Detecting
Out-of-Distribution Samples and Adversarial Attacks", NeurIPS 2018, Eq. 2 (the last feature layer, no
input perturbation and no layer ensemble, as OpenOOD's ``mds``).

Fit: mu_c = the mean training feature of class c; Sigma = the shared covariance
sum_c sum_{i in c} (f_i - mu_c)(f_i - mu_c)^T / N. score = -min_c (x - mu_c)^T Sigma^+ (x - mu_c), with the
pseudo-inverse, since Sigma is singular when the features outnumber the images or are rank-deficient
(ReLU features often are).
"""

import numpy as np

from ...common.errors import DataError
from .base import Scorer, register_scorer


@register_scorer
class Mahalanobis(Scorer):
    name = "mahalanobis"
    paper = "Lee et al., NeurIPS 2018"
    needs_features = True

    def fit(self, features, labels, num_classes):
        features, labels = np.asarray(features, np.float64), np.asarray(labels, np.int64)
        counts = np.bincount(labels, minlength=num_classes)
        if (counts == 0).any():
            raise DataError(
                f"the mahalanobis scorer needs a training image of every class, but class "
                f"{int(np.flatnonzero(counts == 0)[0])} has none; fix the training split or drop it from "
                "evaluation.open_scores"
            )
        sums = np.zeros((num_classes, features.shape[1]))
        np.add.at(sums, labels, features)
        self.means = sums / counts[:, None]
        centred = features - self.means[labels]
        self.precision = np.linalg.pinv(centred.T @ centred / len(features), hermitian=True)

    def score(self, logits, features=None):
        x = np.asarray(features, np.float64)
        # (x - mu)^T P (x - mu) = x P x - 2 x P mu + mu P mu, for every class at once
        xp = x @ self.precision
        distances = (
            np.einsum("nd,nd->n", xp, x)[:, None]
            - 2 * xp @ self.means.T
            + np.einsum("cd,cd->c", self.means @ self.precision, self.means)[None, :]
        )
        return -distances.min(axis=1)
