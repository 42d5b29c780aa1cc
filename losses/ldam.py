"""Label-distribution-aware margin loss with deferred re-weighting: ``ldam``.

Cao, Wei, Gaidon, Arechiga, Ma, "Learning Imbalanced Datasets with Label-Distribution-Aware
Margin Loss", NeurIPS 2019. Class j gets the margin Delta_j proportional to n_j^(-1/4)
(Eq. 12-13), scaled so that the largest is ``max_margin``; the target logit is lowered by
its margin and the logits are scaled by ``scale`` (s, as in the authors' code)::

    L = CE(s (z - Delta_y onehot(y)), y)          (``ldam_formula``, what the loss computes)

Deferred re-weighting (DRW, Sec. 3.3): from training progress ``drw_start`` on, the batch
mean becomes weighted by the class-balanced weights of Cui et al. 2019,
w_j = (1 - beta) / (1 - beta^n_j) normalised to sum C, as ``F.cross_entropy(weight=w)``
weights it: sum_i w_{y_i} L_i / sum_i w_{y_i}. Under torch.distributed (a training step) the
denominator is the global batch's (all-reduced), so DDP's mean over ranks gives one process's
gradient of the global batch.

Loss protocol hooks (losses/registry.py): ``set_progress(t)``.
"""

import math
from typing import Optional

import torch
import torch.distributed as dist
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
from .class_balanced import class_balanced_weights
from .registry import register_loss
from .schedule import check_progress

__all__ = ["LDAMLoss", "ldam_formula"]


def ldam_formula(
    logits: torch.Tensor,
    targets: torch.Tensor,
    margins: torch.Tensor,
    scale: float,
    class_weight: Optional[torch.Tensor] = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """``CE(s (z - Delta_y onehot(y)), y)``, weighted by ``class_weight`` as F.cross_entropy weights (plain PyTorch)."""
    is_target = torch.zeros_like(logits, dtype=torch.bool).scatter_(1, targets.unsqueeze(1), True)
    adjusted = scale * torch.where(is_target, logits - margins[targets].unsqueeze(1), logits)
    return F.cross_entropy(adjusted, targets, weight=class_weight, reduction=reduction)


@register_loss("ldam")
class LDAMLoss(nn.Module):
    """LDAM (Cao et al. 2019, Eq. 13) with DRW; ``class_counts`` (context) required.

    ``max_margin`` = 0.5 (>= 0), ``scale`` = 30 (> 0), ``drw_start`` = 0.8 (progress in [0, 1]
    from which DRW is on; None turns it off), ``drw_beta`` = 0.9999 (in [0, 1)).
    """

    def __init__(
        self,
        class_counts=None,
        max_margin=0.5,
        scale=30.0,
        drw_start=0.8,
        drw_beta=0.9999,
        num_classes=None,
        reduction="mean",
    ):
        super().__init__()
        counts = check_class_counts(class_counts, num_classes)
        self.max_margin = check_non_negative("max_margin", max_margin)
        if check_non_negative("scale", scale) == 0:
            raise ValueError("scale must be > 0 (it multiplies the logits), got 0")
        self.scale = float(scale)
        if drw_start is not None and (
            not isinstance(drw_start, (int, float))
            or isinstance(drw_start, bool)
            or not math.isfinite(drw_start)
            or not 0.0 <= drw_start <= 1.0
        ):
            raise ValueError(f"drw_start must be training progress in [0, 1] or None (no DRW), got {drw_start!r}")
        self.drw_start = None if drw_start is None else float(drw_start)
        self.drw_beta = check_in_unit_interval("drw_beta", drw_beta)
        self.num_classes = counts.numel()
        self.reduction = check_reduction(reduction)
        margins = counts.pow(-0.25)
        # Derived from the constructor's arguments, so not saved in state_dict.
        self.register_buffer("margins", margins * (self.max_margin / margins.max()), persistent=False)
        self.register_buffer("drw_weights", class_balanced_weights(counts, self.drw_beta), persistent=False)
        self.set_progress(0.0)

    def set_progress(self, t):
        """Training progress t in [0, 1]: DRW is on from ``drw_start``."""
        self.progress = check_progress(t)
        self.reweighting = self.drw_start is not None and self.progress >= self.drw_start

    def forward(self, logits, targets):
        check_logits_and_targets(logits, targets, self.num_classes, classes_from="class_counts")
        z = compute_dtype_logits(logits)
        targets = targets.long()
        margins = self.margins.to(device=z.device, dtype=z.dtype)
        weight = self.drw_weights.to(device=z.device, dtype=z.dtype) if self.reweighting else None
        distributed = dist.is_available() and dist.is_initialized() and self.training and logits.requires_grad
        if weight is None or self.reduction != "mean" or not distributed:
            return ldam_formula(z, targets, margins, self.scale, weight, self.reduction)
        # This rank's weighted sum over the global batch's weight total, times the number of ranks
        # (DDP averages the ranks' gradients): the weighted mean of the global batch.
        weighted_sum = ldam_formula(z, targets, margins, self.scale, weight, "sum")
        total = weight[targets].sum().detach()
        dist.all_reduce(total)
        return weighted_sum * dist.get_world_size() / total

    def extra_repr(self):
        return (
            f"max_margin={self.max_margin}, scale={self.scale}, drw_start={self.drw_start}, "
            f"drw_beta={self.drw_beta}, reduction={self.reduction!r}"
        )
