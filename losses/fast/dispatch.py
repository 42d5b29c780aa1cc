"""The one place that decides how a loss formula is computed.

The loss files define what is computed (their plain formulas); these two functions
choose how, from the logits alone, and every loss calls them:

1. Plain cross-entropy (no smoothing, no focusing, no high-confidence term) is
   ``F.cross_entropy``, on every device.
2. CPU float32/float64 logits, with the fused kernels available (``losses/native.py``:
   built on first use; ``OLTR_NATIVE_LOSSES=off`` turns them off): the fused C++ kernel.
   When no graph will be recorded (``no_grad``, logits without grad) it computes the loss
   alone, without the gradient pass.
3. Everywhere else (CUDA, no compiler, a weight shape the kernel does not take): the
   PyTorch Functions with analytic backwards (``focal_functions``, ``sigmoid_functions``).

LDAM and the prior-shifted losses are cross-entropy of adjusted logits: the fused kernel where
it applies (2.); elsewhere LDAM's Function (``margin_functions``) when a graph is recorded, and
``F.cross_entropy`` on the adjusted logits when none is (or always, for the prior shift).

Callers pass validated inputs: targets as int64, logits already in their compute dtype
(half precision promoted to float32 by ``checks.compute_dtype_logits``).
"""
import torch
import torch.nn.functional as F

from .. import native
from ..checks import reduce_loss
from .focal_functions import FocalFamilyFunction, FusedFocalFamilyFunction, target_only_loss
from .margin_functions import FusedAdjustedCrossEntropy, ScaledMarginCrossEntropy, adjusted_logits
from .sigmoid_functions import FusedSigmoidFocalFunction, SigmoidFocalFunction, fused_arguments

__all__ = ["focal_family", "records_graph", "scaled_margin_cross_entropy", "shifted_cross_entropy", "sigmoid_focal"]


def records_graph(z):
    """Whether autograd will record this call (so the gradient is worth computing)."""
    return torch.is_grad_enabled() and z.requires_grad


def focal_family(z, targets, gamma_pos, gamma_neg, gamma_hc, xi, eps, reduction):
    """``focal_family_formula`` reduced as asked (``losses/focal_family.py``), by the fastest path."""
    if eps == 0 and xi == 0 and gamma_pos == 0:
        # Exactly cross-entropy: the non-target weights multiply zero targets.
        return F.cross_entropy(z, targets, reduction=reduction)
    kernels = native.cpu_kernels(z)
    if kernels is not None:
        if records_graph(z):
            return FusedFocalFamilyFunction.apply(
                z, targets, gamma_pos, gamma_neg, gamma_hc, xi, eps, reduction, kernels
            )
        per_sample, _ = kernels.softmax_focal(z, targets, gamma_pos, gamma_neg, gamma_hc, xi, eps, False)
        return reduce_loss(per_sample, reduction)
    if eps == 0:
        return target_only_loss(z, targets, gamma_pos, gamma_hc, xi, reduction)
    return FocalFamilyFunction.apply(z, targets, gamma_pos, gamma_neg, gamma_hc, xi, eps, reduction)


def sigmoid_focal(z, targets, gamma, pos_weight, neg_weight, collect_gradient_sums):
    """``sigmoid_focal_formula`` per sample (``losses/sigmoid_focal.py``), by the fastest path.

    ``collect_gradient_sums`` (EFL's) is called from backward; both paths support it.
    """
    kernels = native.cpu_kernels(z)
    arguments = None if kernels is None else fused_arguments(z, gamma, pos_weight, neg_weight)
    if arguments is not None:
        if records_graph(z):
            return FusedSigmoidFocalFunction.apply(z, targets, *arguments, collect_gradient_sums, kernels)
        return kernels.sigmoid_focal(z, targets, *arguments, False)[0]
    return SigmoidFocalFunction.apply(z, targets, gamma, pos_weight, neg_weight, collect_gradient_sums)


def scaled_margin_cross_entropy(z, targets, margin, scale, class_weight, reduction):
    """``ldam_formula`` reduced as asked (``losses/ldam.py``); ``margin`` is the target's, per sample."""
    if records_graph(z):
        kernels = native.cpu_kernels(z)
        if kernels is not None:
            adjusted = adjusted_logits(z.detach(), targets.unsqueeze(1), margin, scale)
            return FusedAdjustedCrossEntropy.apply(z, adjusted, targets, scale, class_weight, reduction, kernels)
        return ScaledMarginCrossEntropy.apply(z, targets, margin, scale, class_weight, reduction)
    adjusted = z.scatter_add(1, targets.unsqueeze(1), margin.neg().unsqueeze(1)).mul_(scale)
    return F.cross_entropy(adjusted, targets, weight=class_weight, reduction=reduction)


def shifted_cross_entropy(z, targets, shift, reduction):
    """``CE(z + shift, y)`` for a per-class ``shift`` (``losses/logit_adjusted.py``), by the fastest path."""
    shifted = z + shift
    kernels = native.cpu_kernels(z)
    if kernels is not None and records_graph(z):
        return FusedAdjustedCrossEntropy.apply(z, shifted.detach(), targets, 1.0, None, reduction, kernels)
    return F.cross_entropy(shifted, targets, reduction=reduction)
