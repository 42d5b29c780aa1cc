"""The focal family: softmax CE, focal loss and asymmetric loss (cfl and casl: cyclical_focal.py).

One formula covers all five members. With ``p = softmax(z)``, label smoothing ``eps``
and the smoothed target distribution ``t_j = (1 - eps) [j = y] + eps / C``::

    target class       w_y = (1 - xi) (1 - p_y)^gamma_pos + xi (1 + p_y)^gamma_hc
    other classes j    w_j = (1 - xi) p_j^gamma_neg       + xi
    loss of a sample   L   = - sum_j t_j w_j log p_j

* softmax cross-entropy: every gamma 0, xi 0 (with eps: ``F.cross_entropy(label_smoothing=eps)``);
* focal loss, Lin et al. 2017 (CFL paper Eq. 5): gamma_pos = gamma_neg = gamma, xi = 0;
* asymmetric loss, Ridnik et al. 2021 (CFL paper Eq. 6-7, single-label form): xi = 0;
* cyclical focal / asymmetric loss, Smith 2022 (CFL paper Eq. 9 / 10): xi follows the
  cyclical schedule of Eq. 8, and ``(1 + p_y)^gamma_hc`` is the high-confidence weight of Eq. 2.

``focal_family_formula`` below is that definition, in plain PyTorch, and it is what every
member computes, differentiated by autograd (plain cross-entropy goes to ``F.cross_entropy``).
The weights are part of the graph (not detached), as in the focal loss paper and the CFL
reference code.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .checks import (
    check_in_unit_interval,
    check_logits_and_targets,
    check_non_negative,
    check_reduction,
    compute_dtype_logits,
    reduce_loss,
)
from .registry import register_loss

__all__ = ["AsymmetricLoss", "FocalLoss", "SoftmaxCrossEntropy", "focal_family_formula", "focal_family_loss"]


def focal_family_formula(
    logits: torch.Tensor,
    targets: torch.Tensor,
    gamma_pos: float = 0.0,
    gamma_neg: float = 0.0,
    gamma_hc: float = 0.0,
    xi: float = 0.0,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Per-sample loss ``L_i = - sum_j t_ij w_ij log p_ij`` (shape (B,)), autograd for the gradient."""
    num_classes = logits.shape[1]
    log_p = torch.log_softmax(logits, dim=1)
    p = log_p.exp()
    is_target = torch.zeros_like(log_p, dtype=torch.bool).scatter_(1, targets.unsqueeze(1), True)
    eps = label_smoothing
    t = torch.where(is_target, log_p.new_tensor(1 - eps + eps / num_classes), log_p.new_tensor(eps / num_classes))
    one_minus_p = -torch.expm1(log_p)  # 1 - p without cancellation as p -> 1
    # x^gamma has an infinite slope at x = 0 for gamma < 1, and the chain rule then multiplies inf by 0
    # (NaN); the term's true gradient there is 0, which clamping the base at the smallest normal float gives.
    tiny = torch.finfo(log_p.dtype).tiny
    low = torch.where(is_target, one_minus_p.clamp_min(tiny).pow(gamma_pos), p.clamp_min(tiny).pow(gamma_neg))
    high = torch.where(is_target, (1 + p).pow(gamma_hc), torch.ones_like(p))
    w = (1 - xi) * low + xi * high
    # a class with t = 0 adds nothing, even where log p is -inf (a masked class: a -inf logit): 0 * -inf would
    # be NaN, in the loss and through autograd, so its log p is replaced before the product, not after
    log_p = torch.where(t > 0, log_p, torch.zeros_like(log_p))
    return -(t * w * log_p).sum(dim=1)


def focal_family_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    gamma_pos: float = 0.0,
    gamma_neg: float = 0.0,
    gamma_hc: float = 0.0,
    xi: float = 0.0,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """The focal-family loss as a function, reduced (``"mean"``, ``"sum"``, ``"none"``).

    ``xi`` is the blend weight of the high-confidence term (CFL paper Eq. 9-10); any
    finite value is accepted so that the reference schedule (which leaves [0, 1]) can be replayed.
    """
    gamma_pos = check_non_negative("gamma_pos", gamma_pos)
    gamma_neg = check_non_negative("gamma_neg", gamma_neg)
    gamma_hc = check_non_negative("gamma_hc", gamma_hc)
    if not isinstance(xi, (int, float)) or isinstance(xi, bool) or not math.isfinite(xi):
        raise ValueError(f"xi must be a finite number, got {xi!r}")
    eps = check_in_unit_interval("label_smoothing", label_smoothing)
    check_reduction(reduction)
    return _checked_loss(logits, targets, gamma_pos, gamma_neg, gamma_hc, float(xi), eps, reduction)


def _checked_loss(logits, targets, gamma_pos, gamma_neg, gamma_hc, xi, eps, reduction):
    """Inputs checked, logits in their compute dtype, then the formula (hyper-parameters already valid)."""
    check_logits_and_targets(logits, targets)
    z, targets = compute_dtype_logits(logits), targets.long()
    if eps == 0 and xi == 0 and gamma_pos == 0:
        # Exactly cross-entropy: the non-target weights multiply zero targets.
        return F.cross_entropy(z, targets, reduction=reduction)
    return reduce_loss(focal_family_formula(z, targets, gamma_pos, gamma_neg, gamma_hc, xi, eps), reduction)


class FocalFamilyLoss(nn.Module):
    """The members' shared forward; each subclass validates its own parameters under its own names.

    ``xi`` is 0 here; the cyclical members (cyclical_focal.py) move it with ``set_progress``.
    """

    def __init__(self, gamma_pos, gamma_neg, gamma_hc, label_smoothing, reduction):
        super().__init__()
        self.gamma_pos = gamma_pos
        self.gamma_neg = gamma_neg
        self.gamma_hc = gamma_hc
        self.label_smoothing = check_in_unit_interval("label_smoothing", label_smoothing)
        self.reduction = check_reduction(reduction)
        self._xi = 0.0

    def forward(self, logits, targets):
        return _checked_loss(
            logits,
            targets,
            self.gamma_pos,
            self.gamma_neg,
            self.gamma_hc,
            self._xi,
            self.label_smoothing,
            self.reduction,
        )

    def extra_repr(self):
        return ", ".join(f"{k}={v!r}" for k, v in self._describe().items())

    def _describe(self):
        return {"label_smoothing": self.label_smoothing, "reduction": self.reduction}


@register_loss("softmax")
class SoftmaxCrossEntropy(FocalFamilyLoss):
    """Softmax cross-entropy, optionally with label smoothing: L = -sum_j t_j log p_j.

    Without smoothing this is ``F.cross_entropy``; with smoothing it matches
    ``F.cross_entropy(label_smoothing=eps)`` but runs through the focal family's
    fused path, which on CPU is faster than torch's smoothing path.
    """

    def __init__(self, label_smoothing=0.0, reduction="mean"):
        super().__init__(0.0, 0.0, 0.0, label_smoothing, reduction)


@register_loss("focal")
class FocalLoss(FocalFamilyLoss):
    """Focal loss (Lin et al. 2017; CFL paper Eq. 5) on the softmax: FL(p_t) = -(1 - p_t)^gamma log p_t.

    With label smoothing the non-target terms are weighted by p_j^gamma, as
    in the CFL reference code (ASL_FocalLoss). gamma = 0 is cross-entropy.
    """

    def __init__(self, gamma=2.0, label_smoothing=0.0, reduction="mean"):
        gamma = check_non_negative("gamma", gamma)
        super().__init__(gamma, gamma, 0.0, label_smoothing, reduction)
        self.gamma = gamma

    def _describe(self):
        return {"gamma": self.gamma, **super()._describe()}


@register_loss("asl")
class AsymmetricLoss(FocalFamilyLoss):
    """Asymmetric loss (Ridnik et al. 2021; CFL paper Eq. 6-7), single-label form.

    L+ = -(1 - p)^gamma_pos log p on the target, L- weighted by p^gamma_neg on
    the others. For one label per sample with eps = 0 the non-target terms
    vanish, so ASL differs from (focal) CE only through label smoothing.
    """

    def __init__(self, gamma_pos=0.0, gamma_neg=4.0, label_smoothing=0.0, reduction="mean"):
        super().__init__(
            check_non_negative("gamma_pos", gamma_pos),
            check_non_negative("gamma_neg", gamma_neg),
            0.0,
            label_smoothing,
            reduction,
        )

    def _describe(self):
        return {"gamma_pos": self.gamma_pos, "gamma_neg": self.gamma_neg, **super()._describe()}
