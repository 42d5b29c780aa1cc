"""Equalized focal loss: ``efl``.

Li, Wang, Zhang, Yang, Zhu, Zhu, Song, Li, "Equalized Focal Loss for Dense Long-Tailed Object
Detection", CVPR 2022, Eq. 4-7. One sigmoid classifier per class; class j gets its own
focusing factor ``gamma_j = gamma_b + s * (1 - g_j)`` (Eq. 5) and weighting factor
``w_j = gamma_j / gamma_b`` (Eq. 6), where g_j in [0, 1] is the accumulated ratio of the
positive to the negative gradient magnitude class j has received (from EQLv2):

    L = sum_ij alpha_t * w_j * (1 - p_t)^gamma_j * (-log p_t) / B           (Eq. 7)

In classification every class is foreground (there is no background class).
"""

import math

import torch
import torch.distributed as dist
import torch.nn as nn

from .checks import check_logits_and_targets, check_non_negative, check_reduction, compute_dtype_logits
from .registry import register_loss
from .sigmoid_focal import sigmoid_focal_per_sample


@register_loss("efl")
class EqualizedFocalLoss(nn.Module):
    """Equalized focal loss (Li et al. 2022, Eq. 7) with EQLv2-style gradient collection.

    Parameters: ``num_classes`` (required, pipeline context), ``gamma_b`` = 2.0 (> 0, the base
    focusing factor), ``scale_factor`` = 8.0 (s >= 0), ``alpha`` = 0.25 (in [0, 1]; alpha < 0
    disables the alpha_t balance), ``reduction``: "mean" (default) = sum over all entries / B,
    "sum" = sum over all entries, "none" = per-sample sums over classes, shape (B,).

    Gradient collection (EQLv2's, as in the authors' code): in training mode, when the logits
    take part in autograd, the backward pass of this loss sees G = dObjective/dlogits of this call,
    i.e. what a hook on the logits sees of this loss: it includes the loss's weight in the total
    objective, the 1/B of "mean" and any AMP loss scale (the ratio pos/neg is unchanged by such
    constant factors, as in the original code); gradients that other losses send to the same
    logits are not counted. It adds ``pos_grad_j += sum_i |G_ij| [y_i = j]`` and
    ``neg_grad_j += sum_i |G_ij| [y_i != j]``, by a hook on a view of the logits of its own.
    Under torch.distributed the per-step sums are averaged over ranks first, so every rank holds
    the same sums as one process given the global batch. A step whose gradient is not finite (an
    AMP overflow step) is skipped on every rank.
    ``g_j = clamp(pos_grad_j / (neg_grad_j + 1e-10), 0, 1)``, and 1 for a class that has not
    received any gradient yet, so EFL starts as sigmoid focal loss with weight 1.
    ``pos_grad`` and ``neg_grad`` are float64 buffers: they go into state_dict (checkpoints).

    Loss protocol hooks (losses/registry.py): state buffers ``pos_grad``, ``neg_grad``.
    """

    def __init__(self, num_classes=None, gamma_b=2.0, scale_factor=8.0, alpha=0.25, reduction="mean"):
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(
                f"num_classes must be a positive integer (the pipeline passes it as context), got {num_classes!r}"
            )
        if check_non_negative("gamma_b", gamma_b) == 0:
            raise ValueError("gamma_b must be > 0 (the weighting factor divides by it), got 0")
        if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not math.isfinite(alpha) or alpha > 1:
            raise ValueError(f"alpha must be a number <= 1 (alpha < 0 disables it), got {alpha!r}")
        self.num_classes = num_classes
        self.gamma_b = float(gamma_b)
        self.scale_factor = check_non_negative("scale_factor", scale_factor)
        self.alpha = float(alpha)
        self.reduction = check_reduction(reduction)
        self.register_buffer("pos_grad", torch.zeros(num_classes, dtype=torch.float64))
        self.register_buffer("neg_grad", torch.zeros(num_classes, dtype=torch.float64))

    @property
    def g(self):
        """Per-class ratio g_j in [0, 1] (float64); 1 where no gradient has been collected yet."""
        ratio = (self.pos_grad / (self.neg_grad + 1e-10)).clamp_(0.0, 1.0)
        # both sums are >= 0, so a zero total means no gradient yet
        return ratio.masked_fill_((self.pos_grad + self.neg_grad) == 0, 1.0)

    def forward(self, logits, targets):
        check_logits_and_targets(logits, targets, self.num_classes)
        targets = targets.long()  # gather and scatter need int64
        collect = None
        if self.training and logits.requires_grad and torch.is_grad_enabled():
            collect = self._accumulate_gradient_sums
        z = compute_dtype_logits(logits)
        focusing = (self.gamma_b + self.scale_factor * (1.0 - self.g)).to(device=z.device, dtype=z.dtype)
        # weighting factor w_j = gamma_j / gamma_b, times alpha_t
        pos_alpha, neg_alpha = (self.alpha, 1.0 - self.alpha) if self.alpha >= 0 else (1.0, 1.0)
        pos_weight = (focusing * (pos_alpha / self.gamma_b))[targets]
        neg_weight = (focusing * (neg_alpha / self.gamma_b)).unsqueeze(0)
        per_sample = sigmoid_focal_per_sample(z, targets, focusing, pos_weight, neg_weight, collect)
        if self.reduction == "mean":
            return per_sample.mean()
        return per_sample.sum() if self.reduction == "sum" else per_sample

    def _accumulate_gradient_sums(self, targets, pos_abs, neg_abs_sums):
        """Called in backward with |dObjective/dlogits|: at the targets (B,), off them per class (C,)."""
        pos = torch.zeros_like(neg_abs_sums, dtype=torch.float64).index_add_(0, targets, pos_abs.double())
        step = torch.stack([pos, neg_abs_sums.double()])
        if dist.is_available() and dist.is_initialized():
            # Each rank's mean is over its share of the batch: the sum over ranks is world_size times
            # the global batch's, so divide, and every rank holds a single process's statistics.
            dist.all_reduce(step)
            step /= dist.get_world_size()
        # Skipped on every rank alike (the check follows the all-reduce): an AMP overflow step
        # must not poison the running sums with inf/nan. torch.where: no host sync on a GPU.
        step = torch.where(torch.isfinite(step).all(), step, torch.zeros_like(step)).to(self.pos_grad.device)
        self.pos_grad += step[0]
        self.neg_grad += step[1]

    def extra_repr(self):
        return (
            f"num_classes={self.num_classes}, gamma_b={self.gamma_b}, scale_factor={self.scale_factor}, "
            f"alpha={self.alpha}, reduction={self.reduction!r}"
        )
