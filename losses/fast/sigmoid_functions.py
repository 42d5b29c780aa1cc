"""The sigmoid focal formula (losses/sigmoid_focal.py) computed fast, with analytic backwards.

``losses.fast.dispatch`` decides which of these runs; both compute the same numbers as
``sigmoid_focal_formula`` (the tests hold them against it):

* ``FusedSigmoidFocalFunction``: the fused CPU kernel (``losses/csrc/sigmoid_focal.cpp``)
  computes each row's loss and gradient in one pass; backward scales the kept gradient and,
  for EFL, sums |gradient| per class in the same pass (``scale_rows_collect``).
* ``SigmoidFocalFunction``: PyTorch, the gradient computed in the forward pass (it shares
  every intermediate) and only scaled in backward.

Both are stable for any |z|: -log p_t and the modulator come from sigmoid and softplus.
"""
import math

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

__all__ = ["FusedSigmoidFocalFunction", "NotFusable", "SigmoidFocalFunction", "fused_arguments"]

_LOG2_E = 1.0 / math.log(2.0)


def _focal_parts(z, gamma, weight):
    """For *non-target* entries: s = sigmoid(z), -log p_t = softplus(z), weighted modulator.

    A non-target entry has p_t = 1 - sigmoid(z), so (1 - p_t)^gamma = sigmoid(z)^gamma and
    -log p_t = softplus(z); a target entry is the same term at -z. sigmoid and softplus are
    stable for any |z|: no log(0), no overflow. Returns s, softplus(z) and
    ``weight * s^gamma`` (None when both are trivial), which never aliases s.
    """
    s = torch.sigmoid(z)
    neg_log_p = F.softplus(z)
    if isinstance(gamma, (int, float)) and gamma == int(gamma) and gamma <= 4:
        # Small integer powers as products: far cheaper than pow.
        modulator = None if gamma == 0 else s
        for _ in range(int(gamma) - 1):
            modulator = modulator * s
        if weight is None or modulator is None:
            return s, neg_log_p, weight if modulator is None else modulator
        return s, neg_log_p, modulator * weight if modulator is s else modulator.mul_(weight)
    # s^gamma = 2^(gamma * log2(e) * log s), log s = z - softplus(z) (exact to float32 rounding
    # for any z). On CPU, pow with a float or tensor exponent costs ~10x and exp ~3x exp2.
    modulator = torch.sub(z, neg_log_p).mul_(gamma * _LOG2_E).exp2_()
    return s, neg_log_p, modulator if weight is None else modulator.mul_(weight)


def _focal_grad_(s, neg_log_p, modulator, gamma):
    """d/dz of ``modulator * softplus(z)`` = modulator * (s + gamma * (1 - s) * softplus(z)).

    Overwrites ``neg_log_p`` and ``s`` (call it once the loss is summed): in-place passes only.
    With A = gamma * softplus(z), s + A * (1 - s) = A + s * (1 - A) is one lerp.
    """
    if isinstance(gamma, (int, float)) and gamma == 0:
        return s if modulator is None else s.mul_(modulator)
    grad = neg_log_p.mul_(gamma).lerp_(s.new_ones(()), s)
    return grad.mul_(modulator)


def _weighted_row_sums(neg_log_p, modulator):
    if modulator is None:
        return neg_log_p.sum(dim=1)
    if modulator.shape[0] == 1 and neg_log_p.shape[0] != 1:
        return neg_log_p @ modulator.squeeze(0)
    return torch.linalg.vecdot(modulator, neg_log_p)


class SigmoidFocalFunction(torch.autograd.Function):
    """Per-sample sums over classes of a weighted sigmoid focal loss, with an analytic backward.

    The gradient is computed in the forward pass (it shares every intermediate) and only
    scaled by the incoming gradient in backward: far fewer passes over the B x C logits than
    autograd through the elementwise ops would take. The target entries' gradient is kept
    apart from the rest, whose entries are all >= 0 (weights >= 0), so the per-class sums of
    |gradient| EFL collects cost one matrix-vector product instead of a pass taking |.|.
    """

    @staticmethod
    def forward(ctx, z, targets, gamma, pos_weight, neg_weight, collect_gradient_sums):
        # float32 throughout: under autocast the row sums (matrix-vector products) would drop to fp16
        with torch.autocast(z.device.type, enabled=False):
            return SigmoidFocalFunction._forward(
                ctx, z, targets, gamma, pos_weight, neg_weight, collect_gradient_sums
            )

    @staticmethod
    def _forward(ctx, z, targets, gamma, pos_weight, neg_weight, collect_gradient_sums):
        index = targets.unsqueeze(1)
        scalar_gamma = isinstance(gamma, (int, float))
        gamma_neg = gamma if scalar_gamma else gamma.unsqueeze(0)
        gamma_pos = gamma if scalar_gamma else gamma[targets].unsqueeze(1)
        # Every entry as a non-target; the B target entries are then replaced.
        s, neg_log_p, modulator = _focal_parts(z, gamma_neg, neg_weight)
        neg_log_p.scatter_(1, index, 0.0)  # zeroed rather than subtracted: no cancellation at large z_y
        per_sample = _weighted_row_sums(neg_log_p, modulator)
        # Target entries: the non-target term at -z_y, whose derivative in z changes sign.
        weight_pos = None if pos_weight is None else pos_weight.unsqueeze(1)
        s_pos, neg_log_p_pos, modulator_pos = _focal_parts(z.gather(1, index).neg_(), gamma_pos, weight_pos)
        loss_pos = neg_log_p_pos if modulator_pos is None else neg_log_p_pos * modulator_pos
        per_sample = per_sample.add_(loss_pos.squeeze(1))
        if ctx.needs_input_grad[0]:
            grad_neg = _focal_grad_(s, neg_log_p, modulator, gamma_neg).scatter_(1, index, 0.0)
            grad_pos = _focal_grad_(s_pos, neg_log_p_pos, modulator_pos, gamma_pos).neg_()
            ctx.save_for_backward(grad_neg, grad_pos, targets)
            ctx.collect_gradient_sums = collect_gradient_sums
        return per_sample

    @staticmethod
    def backward(ctx, grad_per_sample):
        with torch.autocast(grad_per_sample.device.type, enabled=False):
            return SigmoidFocalFunction._backward(ctx, grad_per_sample)

    @staticmethod
    def _backward(ctx, grad_per_sample):
        grad_neg, grad_pos, targets = ctx.saved_tensors
        upstream = grad_per_sample.unsqueeze(1)
        grad_pos = grad_pos * upstream
        grad = (grad_neg * upstream).scatter_(1, targets.unsqueeze(1), grad_pos)
        if ctx.collect_gradient_sums is not None:
            # |G_ij| = |upstream_i| * grad_neg_ij off the targets (grad_neg >= 0 there, 0 on them)
            neg_sums = grad_per_sample.abs() @ grad_neg
            ctx.collect_gradient_sums(targets, grad_pos.squeeze(1).abs(), neg_sums)
        return grad, None, None, None, None, None


class FusedSigmoidFocalFunction(torch.autograd.Function):
    """``SigmoidFocalFunction`` through the fused CPU kernel: loss and gradient in one pass.

    Backward scales the kept per-sample gradient by the incoming one; with EFL's collection,
    the same pass also sums |gradient| per class (``scale_rows_collect``).
    """

    @staticmethod
    def forward(ctx, z, targets, scalar_gamma, class_gamma, pos_weight, neg_weight, collect_gradient_sums, kernels):
        per_sample, grad = kernels.sigmoid_focal(
            z, targets, scalar_gamma, class_gamma, pos_weight, neg_weight, ctx.needs_input_grad[0]
        )
        ctx.per_sample_grad, ctx.targets, ctx.kernels = grad, targets, kernels
        ctx.collect_gradient_sums = collect_gradient_sums
        return per_sample

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_per_sample):
        if ctx.collect_gradient_sums is None:
            grad = ctx.per_sample_grad * grad_per_sample.unsqueeze(1)
        else:
            grad, target_abs, off_target_sums = ctx.kernels.scale_rows_collect(
                ctx.per_sample_grad, grad_per_sample, ctx.targets
            )
            ctx.collect_gradient_sums(ctx.targets, target_abs, off_target_sums)
        return grad, None, None, None, None, None, None, None


class NotFusable(Exception):
    """Raised inside ``fused_arguments`` for arguments only the PyTorch path takes."""


def fused_arguments(z, gamma, pos_weight, neg_weight):
    """(scalar gamma, class gamma, pos weight, neg weight) in the kernel's form, or None if it cannot take them."""
    classes = z.shape[1]

    def vector(t, length):
        if t is None:
            return None
        if t.dim() == 2 and t.shape[0] == 1:
            t = t.squeeze(0)
        if t.shape != (length,):  # e.g. a full (B, C) weight: the PyTorch path handles any broadcast
            raise NotFusable
        return t.detach().to(dtype=z.dtype).contiguous()

    try:
        if isinstance(gamma, (int, float)):
            scalar_gamma, class_gamma = float(gamma), None
        else:
            scalar_gamma, class_gamma = 0.0, vector(gamma, classes)
        return scalar_gamma, class_gamma, vector(pos_weight, z.shape[0]), vector(neg_weight, classes)
    except NotFusable:
        return None
