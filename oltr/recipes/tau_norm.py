"""tau-normalised classifier (Kang et al. 2020, Sec. 4): ``tau_norm``.

Stage 1's linear classifier with W_j / ||W_j||^tau (``oltr.models.decoupled.TauNormClassifier``),
no training: tau is picked on the validation split over ``training_opt.tau_grid`` (best top-1, the
smallest tau on ties; never the test split) and recorded in the checkpoint and results (``recipe_fit``).
"""

import numpy as np
import torch

from .base import register_recipe
from .decoupled import FittedRecipe, top1


def tau_grid(training_opt):
    """The tau values tried: min, min + step, ..., max (default 0, 0.1, ..., 2)."""
    grid = training_opt["tau_grid"]
    count = int(np.floor((grid["max"] - grid["min"]) / grid["step"] + 1e-9)) + 1
    return [round(grid["min"] + i * grid["step"], 10) for i in range(count)]


@torch.no_grad()
def fit_tau(classifier, features, labels, taus):
    """The tau of ``taus`` with the best validation top-1 (the smallest on ties), and every score."""
    scores = {}
    for tau in taus:
        classifier.set_tau(tau)
        scores[tau] = top1(classifier(features)[0], labels)
    best = max(taus, key=lambda tau: (scores[tau], -tau))
    classifier.set_tau(best)
    return best, scores


@register_recipe
class TauNorm(FittedRecipe):
    name = "tau_norm"
    order = 3
    label = "tau-norm"
    classifier = "tau_norm"
    uses_stage1_classifier = True

    def fit_classifier(self, classifier, feat_model, training_opt, train_samples, ctx, logger, val):
        taus = tau_grid(training_opt)
        best, scores = fit_tau(classifier, *val, taus)
        logger.info(
            f"tau_norm: tau {best} (validation top-1 {scores[best]:.4f}; grid {taus[0]}..{taus[-1]}, "
            f"{len(taus)} values)"
        )
        return {"tau": best, "val_top1_by_tau": {str(tau): score for tau, score in scores.items()}}
