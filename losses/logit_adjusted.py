"""Softmax cross-entropy on logits shifted by the class prior: ``balanced_softmax``, ``logit_adjusted``.

With training counts n and prior pi = n / sum(n)::

    balanced_softmax   L = CE(z + log n, y)          Ren et al., "Balanced Meta-Softmax for
                                                     Long-Tailed Visual Recognition", NeurIPS 2020, Eq. 4
    logit_adjusted     L = CE(z + tau log pi, y)     Menon et al., "Long-Tail Learning via Logit
                                                     Adjustment", ICLR 2021, Eq. 10

Cross-entropy is invariant to a common shift of a row, so ``logit_adjusted`` with tau = 1
equals ``balanced_softmax``. The shift is a constant: the gradient is softmax(z + shift) - onehot(y).
"""

import torch.nn as nn
import torch.nn.functional as F

from .checks import (
    check_class_counts,
    check_logits_and_targets,
    check_non_negative,
    check_reduction,
    compute_dtype_logits,
)
from .registry import register_loss

__all__ = ["BalancedSoftmaxLoss", "LogitAdjustedLoss"]


class _PriorShiftedCrossEntropy(nn.Module):
    """CE(z + shift, y) for a per-class ``shift`` (C,) derived from the counts."""

    def __init__(self, shift, reduction):
        super().__init__()
        self.num_classes = shift.numel()
        self.reduction = check_reduction(reduction)
        # Derived from the constructor's arguments (so not saved in state_dict), float64 until used.
        self.register_buffer("shift", shift, persistent=False)

    def forward(self, logits, targets):
        check_logits_and_targets(logits, targets, self.num_classes, classes_from="class_counts")
        z = compute_dtype_logits(logits)
        shift = self.shift.to(device=z.device, dtype=z.dtype)
        return F.cross_entropy(z + shift, targets.long(), reduction=self.reduction)


@register_loss("balanced_softmax")
class BalancedSoftmaxLoss(_PriorShiftedCrossEntropy):
    """Balanced softmax (Ren et al. 2020, Eq. 4): CE(z + log n, y); ``class_counts`` (context) required."""

    def __init__(self, class_counts=None, num_classes=None, reduction="mean"):
        super().__init__(check_class_counts(class_counts, num_classes).log(), reduction)


@register_loss("logit_adjusted")
class LogitAdjustedLoss(_PriorShiftedCrossEntropy):
    """Logit-adjusted loss (Menon et al. 2021, Eq. 10): CE(z + tau log pi, y), ``tau`` >= 0 (default 1)."""

    def __init__(self, class_counts=None, tau=1.0, num_classes=None, reduction="mean"):
        counts = check_class_counts(class_counts, num_classes)
        self.tau = check_non_negative("tau", tau)
        super().__init__(self.tau * (counts.log() - counts.sum().log()), reduction)

    def extra_repr(self):
        return f"tau={self.tau}, num_classes={self.num_classes}, reduction={self.reduction!r}"
