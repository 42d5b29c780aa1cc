"""LDAM's formula (losses/ldam.py) with an analytic backward: ``ScaledMarginCrossEntropy``.

``CE(s (z - m_y onehot(y)), y)`` through autograd costs cross-entropy plus a pass for the
scaling and another for the scaling's backward. Here the forward keeps log_softmax(a) of the
adjusted logits a = s (z - m_y onehot(y)), and backward forms the gradient from it directly:
dL_i/dz_i = s w_i (softmax(a_i) - onehot(y_i)), with w_i the sample's share of the reduction
(1/B for the mean, w_{y_i} / sum_k w_{y_k} with class weights). One pass over the B x C logits
more than ``F.cross_entropy`` itself, where autograd takes two.
"""
import torch
from torch.autograd.function import once_differentiable

__all__ = ["ScaledMarginCrossEntropy"]


class ScaledMarginCrossEntropy(torch.autograd.Function):
    """``F.cross_entropy(scale * (z - margin_y onehot(y)), y, weight=class_weight, reduction=reduction)``.

    ``margin`` is per sample (B,) (the target's margin); ``class_weight`` (C,) or None.
    """

    @staticmethod
    def forward(ctx, z, targets, margin, scale, class_weight, reduction):
        index = targets.unsqueeze(1)
        adjusted = torch.mul(z, scale)
        adjusted.scatter_add_(1, index, margin.mul(-scale).unsqueeze(1))
        log_p = torch.log_softmax(adjusted, dim=1)
        per_sample = log_p.gather(1, index).squeeze(1).neg_()
        # Each sample's share of the reduced loss, as F.cross_entropy(weight=...) reduces.
        share = torch.ones_like(per_sample) if class_weight is None else class_weight[targets]
        if reduction == "mean":
            share = share / share.sum()
        loss = per_sample * share if reduction != "mean" else (per_sample * share).sum()
        if reduction == "sum":
            loss = loss.sum()
        if ctx.needs_input_grad[0]:
            ctx.log_p, ctx.index = log_p, index
            ctx.share, ctx.scale, ctx.reduction = share, scale, reduction
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_loss):
        row = grad_loss if ctx.reduction == "none" else grad_loss.expand_as(ctx.share)
        row = row * ctx.share * ctx.scale
        grad = torch.exp(ctx.log_p)  # softmax(a)
        grad.scatter_add_(1, ctx.index, torch.full_like(row, -1.0).unsqueeze(1))
        return grad.mul_(row.unsqueeze(1)), None, None, None, None, None
