"""LDAM's formula (losses/ldam.py) with an analytic backward: ``ScaledMarginCrossEntropy``.

``CE(s (z - m_y onehot(y)), y)`` through autograd costs cross-entropy plus a pass for the
scaling and another for the scaling's backward. Here the forward keeps log_softmax(a) of the
adjusted logits a = s (z - m_y onehot(y)), and backward forms the gradient from it directly:
dL_i/dz_i = s w_i (softmax(a_i) - onehot(y_i)), with w_i the sample's share of the reduction
(1/B for the mean, w_{y_i} / sum_k w_{y_k} with class weights). One pass over the B x C logits
more than ``F.cross_entropy`` itself, where autograd takes two.

``FusedAdjustedCrossEntropy`` hands adjusted logits a (LDAM's, or the prior-shifted z + shift of
``balanced_softmax`` and ``logit_adjusted``, where s = 1) to the fused CPU cross-entropy kernel
(``softmax_focal`` with every focusing term off), which returns each sample's loss and dloss_i/da_i
in one pass per row; backward scales that by s w_i, one pass.
"""
import torch
from torch.autograd.function import once_differentiable

__all__ = ["FusedAdjustedCrossEntropy", "ScaledMarginCrossEntropy", "adjusted_logits", "reduction_shares"]


def adjusted_logits(z, index, margin, scale):
    """a = s (z - m_y onehot(y)), in one new tensor."""
    adjusted = torch.mul(z, scale)
    return adjusted.scatter_add_(1, index, margin.mul(-scale).unsqueeze(1))


def reduction_shares(per_sample, targets, class_weight, reduction):
    """Each sample's share of the reduced loss, as F.cross_entropy(weight=...) reduces."""
    share = torch.ones_like(per_sample) if class_weight is None else class_weight[targets]
    return share / share.sum() if reduction == "mean" else share


def _reduce(per_sample, share, reduction):
    loss = per_sample * share
    return loss if reduction == "none" else loss.sum()


class ScaledMarginCrossEntropy(torch.autograd.Function):
    """``F.cross_entropy(scale * (z - margin_y onehot(y)), y, weight=class_weight, reduction=reduction)``.

    ``margin`` is per sample (B,) (the target's margin); ``class_weight`` (C,) or None.
    """

    @staticmethod
    def forward(ctx, z, targets, margin, scale, class_weight, reduction):
        index = targets.unsqueeze(1)
        log_p = torch.log_softmax(adjusted_logits(z, index, margin, scale), dim=1)
        per_sample = log_p.gather(1, index).squeeze(1).neg_()
        share = reduction_shares(per_sample, targets, class_weight, reduction)
        if ctx.needs_input_grad[0]:
            ctx.log_p, ctx.index = log_p, index
            ctx.share, ctx.scale, ctx.reduction = share, scale, reduction
        return _reduce(per_sample, share, reduction)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_loss):
        row = grad_loss if ctx.reduction == "none" else grad_loss.expand_as(ctx.share)
        row = row * ctx.share * ctx.scale
        grad = torch.exp(ctx.log_p)  # softmax(a)
        grad.scatter_add_(1, ctx.index, torch.full_like(row, -1.0).unsqueeze(1))
        return grad.mul_(row.unsqueeze(1)), None, None, None, None, None


class FusedAdjustedCrossEntropy(torch.autograd.Function):
    """``F.cross_entropy(adjusted, y, weight=class_weight, reduction=reduction)`` differentiated with respect
    to z, where ``adjusted`` = s z + (terms constant in z), through the fused CPU kernel (CPU
    float32/float64 logits). The caller forms ``adjusted`` from z outside autograd."""

    @staticmethod
    def forward(ctx, z, adjusted, targets, scale, class_weight, reduction, kernels):
        # gamma_pos = gamma_neg = gamma_hc = xi = eps = 0: plain cross-entropy of the adjusted logits
        per_sample, grad = kernels.softmax_focal(adjusted, targets, 0.0, 0.0, 0.0, 0.0, 0.0, ctx.needs_input_grad[0])
        share = reduction_shares(per_sample, targets, class_weight, reduction)
        ctx.per_sample_grad, ctx.share, ctx.scale, ctx.reduction = grad, share, scale, reduction
        return _reduce(per_sample, share, reduction)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_loss):
        row = grad_loss if ctx.reduction == "none" else grad_loss.expand_as(ctx.share)
        grad = ctx.per_sample_grad * (row * ctx.share * ctx.scale).unsqueeze(1)
        return grad, None, None, None, None, None, None
