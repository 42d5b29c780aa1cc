"""Class-balanced losses: ``cb_softmax``, ``cb_sigmoid``, ``cb_focal``.

Cui, Jia, Lin, Song, Belongie, "Class-Balanced Loss Based on Effective Number
of Samples", CVPR 2019. The effective number of class c is
``E_{n_c} = (1 - beta^{n_c}) / (1 - beta)`` (Eq. 3); each sample is weighted by
``a_y = 1 / E_{n_y}``, normalised so that ``sum_c a_c = C``, and the weight
multiplies softmax CE (Eq. 6), the per-class sigmoid BCE summed over classes
(Eq. 7) or the sigmoid focal loss summed over classes (Eq. 8).

This file also holds ``sigmoid_focal_per_sample``, the numerically stable sigmoid
focal loss shared with EFL (``losses/equalized_focal.py``): a fused C++ kernel on CPU
float logits (``losses/csrc/sigmoid_focal.cpp``), an analytic-backward PyTorch
Function elsewhere.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from . import native
from ._common import (
    check_in_unit_interval,
    check_logits_and_targets,
    check_non_negative,
    check_reduction,
    compute_dtype_logits,
)
from .registry import register_loss


def _as_counts(class_counts, num_classes):
    """``class_counts`` as a float64 vector of positive finite counts, or ValueError naming it."""
    if class_counts is None:
        raise ValueError(
            "class_counts is required for class-balanced losses: pass the per-class training counts "
            "(the pipeline passes them as context)"
        )
    try:
        counts = torch.as_tensor(class_counts, dtype=torch.float64).detach().cpu()
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"class_counts must be a sequence of numbers, got {class_counts!r}") from None
    if counts.dim() != 1 or counts.numel() == 0:
        raise ValueError(f"class_counts must be a non-empty 1-D sequence, got shape {tuple(counts.shape)}")
    if not bool(torch.isfinite(counts).all()) or bool((counts <= 0).any()):
        raise ValueError(f"class_counts must all be finite and > 0, got {counts.tolist()}")
    if num_classes is not None and counts.numel() != num_classes:
        raise ValueError(f"class_counts has {counts.numel()} entries but num_classes is {num_classes}")
    return counts


def class_balanced_weights(class_counts, beta):
    """Per-class weights ``a_c = (1 - beta) / (1 - beta^{n_c})`` scaled to sum to C (float64).

    Cui et al. 2019, Eq. 3 (effective number) and Sec. 3.2. beta = 0 gives uniform weights;
    beta -> 1 approaches inverse class frequency.
    """
    beta = check_in_unit_interval("beta", beta)
    counts = _as_counts(class_counts, None)
    # 1 - beta^n = -expm1(n log beta): exact for beta near 1, and log(0) = -inf gives 1 for beta = 0.
    one_minus_beta_n = -torch.expm1(counts * math.log(beta)) if beta > 0 else torch.ones_like(counts)
    weights = (1.0 - beta) / one_minus_beta_n
    return weights * (counts.numel() / weights.sum())


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


class _SigmoidFocalPerSample(torch.autograd.Function):
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
            return _SigmoidFocalPerSample._forward(
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
            return _SigmoidFocalPerSample._backward(ctx, grad_per_sample)

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


class _FusedSigmoidFocalPerSample(torch.autograd.Function):
    """``_SigmoidFocalPerSample`` through the fused CPU kernel: loss and gradient in one pass.

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


class _NotFusable(Exception):
    """Raised inside ``_fused_arguments`` for arguments only the PyTorch path takes."""


def _fused_arguments(z, gamma, pos_weight, neg_weight):
    """(scalar gamma, class gamma, pos weight, neg weight) in the kernel's form, or None if it cannot take them."""
    classes = z.shape[1]

    def vector(t, length):
        if t is None:
            return None
        if t.dim() == 2 and t.shape[0] == 1:
            t = t.squeeze(0)
        if t.shape != (length,):  # e.g. a full (B, C) weight: the PyTorch path handles any broadcast
            raise _NotFusable
        return t.detach().to(dtype=z.dtype).contiguous()

    try:
        if isinstance(gamma, (int, float)):
            scalar_gamma, class_gamma = float(gamma), None
        else:
            scalar_gamma, class_gamma = 0.0, vector(gamma, classes)
        return scalar_gamma, class_gamma, vector(pos_weight, z.shape[0]), vector(neg_weight, classes)
    except _NotFusable:
        return None


def sigmoid_focal_per_sample(z, targets, gamma=0.0, pos_weight=None, neg_weight=None, collect_gradient_sums=None):
    """``sum_j w_ij (1 - p_t)^gamma_j (-log p_t)`` for each sample i (shape (B,)).

    ``p_t = sigmoid(z_ij)`` on the target entry and ``1 - sigmoid(z_ij)`` elsewhere (Lin et al.
    2017, Eq. 5, one binary classifier per class). ``gamma``: a float, or a (C,) tensor (one per
    class, used by EFL). ``pos_weight``: (B,) weight >= 0 of each target entry or None;
    ``neg_weight``: broadcastable to (B, C), weight >= 0 of the non-target entries, or None.
    ``z`` is float32 or float64 (the losses promote half precision before calling this).
    Weights and gamma are constants for autograd. gamma = 0 gives the summed binary
    cross-entropy. ``collect_gradient_sums(targets, pos_abs, neg_abs_sums)``, if given, is called
    in backward with |dObjective/dz| at each sample's target entry (B,) and summed over the
    non-target entries of each class (C,).
    """
    kernels = native.cpu_kernels(z)
    arguments = None if kernels is None else _fused_arguments(z, gamma, pos_weight, neg_weight)
    if arguments is not None:
        if torch.is_grad_enabled() and z.requires_grad:
            return _FusedSigmoidFocalPerSample.apply(z, targets, *arguments, collect_gradient_sums, kernels)
        # No graph will be recorded (evaluation, no_grad): the loss alone, no gradient pass.
        return kernels.sigmoid_focal(z, targets, *arguments, False)[0]
    return _SigmoidFocalPerSample.apply(z, targets, gamma, pos_weight, neg_weight, collect_gradient_sums)


class _ClassBalancedLoss(nn.Module):
    """Shared set-up: validated hyper-parameters and the class weights as a buffer."""

    def __init__(self, class_counts=None, beta=0.9999, num_classes=None, reduction="mean"):
        super().__init__()
        self.beta = check_in_unit_interval("beta", beta)
        counts = _as_counts(class_counts, num_classes)
        self.num_classes = counts.numel()
        self.reduction = check_reduction(reduction)
        # Derived from the constructor's arguments, so not saved in state_dict (persistent=False):
        # a checkpoint cannot silently replace the weights the config asks for.
        self.register_buffer("class_weights", class_balanced_weights(counts, self.beta), persistent=False)

    def _check(self, logits, targets):
        """Validated targets as int64 (gather, scatter and cross_entropy need it)."""
        check_logits_and_targets(logits, targets, self.num_classes)
        if logits.shape[1] != self.num_classes:
            raise ValueError(
                f"logits have {logits.shape[1]} classes but class_counts has {self.num_classes} entries"
            )
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
