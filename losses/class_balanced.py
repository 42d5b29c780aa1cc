"""Class-balanced losses: ``cb_softmax``, ``cb_sigmoid``, ``cb_focal``.

Cui, Jia, Lin, Song, Belongie, "Class-Balanced Loss Based on Effective Number
of Samples", CVPR 2019. The effective number of class c is
``E_{n_c} = (1 - beta^{n_c}) / (1 - beta)`` (Eq. 3); each sample is weighted by
``a_y = 1 / E_{n_y}``, normalised so that ``sum_c a_c = C``, and the weight
multiplies softmax CE (Eq. 6), the per-class sigmoid BCE summed over classes
(Eq. 7) or the sigmoid focal loss summed over classes (Eq. 8).

cb_sigmoid and cb_focal are the sigmoid focal core (losses/sigmoid_focal.py), shared
with EFL, weighted per sample by ``a_y``.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .checks import (
    check_class_counts,
    check_in_unit_interval,
    check_logits_and_targets,
    check_non_negative,
    check_reduction,
    compute_dtype_logits,
)
from .registry import register_loss
from .sigmoid_focal import sigmoid_focal_per_sample


def class_balanced_weights(class_counts, beta):
    """Per-class weights ``a_c = (1 - beta) / (1 - beta^{n_c})`` scaled to sum to C (float64).

    Cui et al. 2019, Eq. 3 (effective number) and Sec. 3.2. beta = 0 gives uniform weights;
    beta -> 1 approaches inverse class frequency.
    """
    beta = check_in_unit_interval("beta", beta)
    counts = check_class_counts(class_counts, None)
    # 1 - beta^n = -expm1(n log beta): exact for beta near 1, and log(0) = -inf gives 1 for beta = 0.
    one_minus_beta_n = -torch.expm1(counts * math.log(beta)) if beta > 0 else torch.ones_like(counts)
    weights = (1.0 - beta) / one_minus_beta_n
    return weights * (counts.numel() / weights.sum())


class _ClassBalancedLoss(nn.Module):
    """Shared set-up: validated hyper-parameters and the class weights as a buffer."""

    def __init__(self, class_counts=None, beta=0.9999, num_classes=None, reduction="mean"):
        super().__init__()
        self.beta = check_in_unit_interval("beta", beta)
        counts = check_class_counts(class_counts, num_classes)
        self.num_classes = counts.numel()
        self.reduction = check_reduction(reduction)
        # Derived from the constructor's arguments, so not saved in state_dict (persistent=False):
        # a checkpoint cannot silently replace the weights the config asks for.
        self.register_buffer("class_weights", class_balanced_weights(counts, self.beta), persistent=False)

    def _check(self, logits, targets):
        """Validated targets as int64 (gather, scatter and cross_entropy need it)."""
        check_logits_and_targets(logits, targets, self.num_classes, classes_from="class_counts")
        return targets.long()

    def extra_repr(self):
        return f"num_classes={self.num_classes}, beta={self.beta}, reduction={self.reduction!r}"


@register_loss("cb_softmax")
class ClassBalancedSoftmaxLoss(_ClassBalancedLoss):
    """Class-balanced softmax cross-entropy, ``a_y * CE(z, y)`` (Cui et al. 2019, Eq. 6).

    ``class_counts``: per-class training counts (required). ``beta`` in [0, 1), default 0.9999.
    Reduction over the batch: mean (default), sum, or none (per-sample losses).
    """

    def forward(self, logits, targets):
        targets = self._check(logits, targets)
        z = compute_dtype_logits(logits)
        weight = self.class_weights.to(device=z.device, dtype=z.dtype)
        # CE's own class weights are exactly a_y per sample; its fused kernel keeps this at CE's
        # speed. Its "mean" would divide by sum_i a_{y_i}, so the batch mean is taken by hand.
        reduction = "sum" if self.reduction == "mean" else self.reduction
        loss = F.cross_entropy(z, targets, weight=weight, reduction=reduction)
        return loss / logits.shape[0] if self.reduction == "mean" else loss


@register_loss("cb_sigmoid")
class ClassBalancedSigmoidLoss(_ClassBalancedLoss):
    """Class-balanced sigmoid loss, ``a_y * sum_i BCE(z_i, [i = y])`` (Cui et al. 2019, Eq. 7).

    Sum over classes, then mean (default), sum or none over the batch.
    """

    def forward(self, logits, targets):
        targets = self._check(logits, targets)
        z = compute_dtype_logits(logits)
        weights = self.class_weights.to(device=z.device, dtype=z.dtype)[targets]
        per_sample = sigmoid_focal_per_sample(z, targets) * weights
        if self.reduction == "mean":
            return per_sample.mean()
        return per_sample.sum() if self.reduction == "sum" else per_sample


@register_loss("cb_focal")
class ClassBalancedFocalLoss(_ClassBalancedLoss):
    """Class-balanced focal loss (Cui et al. 2019, Eq. 8).

    ``a_y * sum_i (1 - p_i^t)^gamma * (-log p_i^t)`` with ``p_i^t = sigmoid(z_i)`` for i = y and
    ``sigmoid(-z_i)`` otherwise. Sum over classes, mean over the batch (the official code divides
    by the number of positives, which is B in single-label classification). ``gamma`` >= 0,
    default 1.0. Stable for any |z|: ``-log p^t = softplus(-z^t)`` and the modulator
    ``(1 - p^t)^gamma = exp(-gamma * softplus(z^t))`` come from sigmoid and softplus, never log(0).
    """

    def __init__(self, class_counts=None, beta=0.9999, gamma=1.0, num_classes=None, reduction="mean"):
        super().__init__(class_counts=class_counts, beta=beta, num_classes=num_classes, reduction=reduction)
        self.gamma = check_non_negative("gamma", gamma)

    def forward(self, logits, targets):
        targets = self._check(logits, targets)
        z = compute_dtype_logits(logits)
        weights = self.class_weights.to(device=z.device, dtype=z.dtype)[targets]
        per_sample = sigmoid_focal_per_sample(z, targets, self.gamma) * weights
        if self.reduction == "mean":
            return per_sample.mean()
        return per_sample.sum() if self.reduction == "sum" else per_sample

    def extra_repr(self):
        return f"{super().extra_repr()}, gamma={self.gamma}"
