"""The focal family: softmax CE, focal, asymmetric, cyclical focal and cyclical asymmetric losses.

One formula covers all five (docs: design/losses.md section 1). With
``p = softmax(z)``, ``s = log p``, label smoothing ``eps`` and the target
distribution ``t_j = (1 - eps) [j = y] + eps / C``::

    target class       w_y = (1 - xi) (1 - p_y)^gamma_pos + xi (1 + p_y)^gamma_hc
    other classes j    w_j = (1 - xi) p_j^gamma_neg       + xi
    loss of a sample   L   = - sum_j t_j w_j s_j

* focal loss, Lin et al. 2017 (CFL paper Eq. 5): gamma_pos = gamma_neg = gamma, xi = 0;
* asymmetric loss, Ridnik et al. 2021 (CFL paper Eq. 6-7, single-label form): xi = 0;
* cyclical focal / asymmetric loss, Smith 2022 (CFL paper Eq. 9 / Eq. 10): xi follows the
  cyclical schedule of Eq. 8 (losses/schedule.py); the high-confidence weight
  ``(1 + p_y)^gamma_hc`` is the paper's Eq. 2.

The weights are part of the graph (not detached), as in the focal loss paper
and the CFL reference code.

Speed: the obvious implementation (one-hot by scatter, B x C tensor-valued
``torch.pow``) costs several times ``F.cross_entropy``. Here:

* CPU float32/float64 logits: a fused C++ kernel (``losses/csrc/softmax_focal.cpp``,
  built by ``losses/native.py``) computes each row's loss and gradient in one pass,
  and backward only scales that gradient (``_FusedFocalFamilyFunction``).
* Elsewhere (CUDA, or no compiler), in PyTorch:
  - eps = 0: the non-target terms vanish. ``F.cross_entropy(reduction="none")``
    gives -log p_y and a small Function (``_TargetTermFunction``) weights it per
    row with an analytic derivative, so the B x C work is cross-entropy's own.
  - eps > 0: one Function (``_FocalFamilyFunction``) computes the loss from a
    single log_softmax with row sums and returns the gradient in closed form
    (derivation in its docstring), so autograd keeps no chain of B x C temporaries.

Plain cross-entropy (eps = 0, gamma_pos = 0, xi = 0) is ``F.cross_entropy`` everywhere.
"""
import math
import warnings

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
    reduce_loss,
)
from .registry import register_loss
from .schedule import check_cyclical_factor, check_progress, cyclical_xi, reference_xi

__all__ = [
    "focal_family_loss",
    "SoftmaxCrossEntropy",
    "FocalLoss",
    "AsymmetricLoss",
    "CyclicalFocalLoss",
    "CyclicalAsymmetricLoss",
]

# exp(x) == exp2(x * log2(e)); on CPU torch.exp2 is several times faster than
# torch.exp for float32, which matters for the B x C probabilities.
_LOG2E = 1.0 / math.log(2.0)
# Integer exponents up to this are computed by repeated multiplication.
_MAX_INTEGER_POWER = 16
SCHEDULES = ("paper", "reference")


def _exp(x):
    """exp(x) through exp2 (one temporary)."""
    return torch.mul(x, _LOG2E).exp2_()


def _integer_power(x, n, inplace=False):
    """x ** n for an integer n >= 1 by repeated squaring (a few multiplications, no pow).

    ``inplace=True`` (only outside autograd) reuses the fresh intermediate
    tensors instead of allocating one per multiplication; x itself is never modified.
    """
    result = None
    base = x
    while n:
        if n & 1:
            if result is None:
                result = base
            elif inplace and result is not x:
                result.mul_(base)
            else:
                result = result * base
        n >>= 1
        if n:
            if inplace and base is not x and base is not result:
                base.mul_(base)
            else:
                base = base * base
    return result


def _is_small_integer(gamma):
    return float(gamma).is_integer() and 1 <= gamma <= _MAX_INTEGER_POWER


def _power(x, gamma):
    """x ** gamma for a tensor x, or None when gamma == 0 (a factor of one)."""
    if gamma == 0:
        return None
    return _integer_power(x, int(gamma)) if _is_small_integer(gamma) else x.pow(gamma)


def _times(a, b):
    """a * b where None stands for one."""
    if a is None:
        return b
    return a if b is None else a * b


def _scaled_product(a, b, c):
    """c * a * b for tensors a (None standing for one) and b, and a number c; b is not modified."""
    return b * c if a is None else (a * b).mul_(c)


def _blend(low, high, xi):
    """(1 - xi) low + xi high, skipping the side whose weight is zero (tensors or floats)."""
    if xi == 0:
        return low
    if xi == 1:
        return high
    if torch.is_tensor(low) and torch.is_tensor(high):
        return torch.lerp(low, high, xi)
    return (1 - xi) * low + xi * high


def _target_weight_and_slope(s_y, gamma_pos, gamma_hc, xi):
    """Per-row target weight w_y and ``p_y * s_y * dw_y/dp_y`` (tensors of shape (B,) or floats).

    w_y = (1 - xi) (1 - p_y)^a + xi (1 + p_y)^b with a = gamma_pos, b = gamma_hc:
        p s d/dp (1 - p)^a = -a (p s) (1 - p)^(a - 1),   p s d/dp (1 + p)^b = b (p s) (1 + p)^(b - 1).
    For 0 < a < 1 the first is written -a p (s / (1 - p)) (1 - p)^a, which stays
    finite as p -> 1 (s / (1 - p) -> -1 there). With nll = -s_y and p_y = exp(-nll),
    d(w_y nll)/d nll = w_y + slope.
    """
    low = high = 1.0
    low_slope = high_slope = 0.0
    if (xi != 1 and gamma_pos != 0) or (xi != 0 and gamma_hc != 0):
        p_y = torch.exp(s_y)
        p_log_p = p_y * s_y
    if xi != 1 and gamma_pos != 0:
        one_minus_p = torch.expm1(s_y).neg_()  # 1 - p_y without cancellation
        if gamma_pos >= 1:
            reduced = _power(one_minus_p, gamma_pos - 1)  # (1 - p)^(a - 1)
            low = _times(reduced, one_minus_p)
            low_slope = _scaled_product(reduced, p_log_p, -gamma_pos)
        else:
            low = one_minus_p.pow(gamma_pos)
            ratio = torch.where(one_minus_p > 0, s_y / one_minus_p, -1.0)
            low_slope = (-gamma_pos) * p_y * ratio * low
    if xi != 0 and gamma_hc != 0:
        one_plus_p = 1 + p_y
        reduced = _power(one_plus_p, gamma_hc - 1) if gamma_hc >= 1 else one_plus_p.pow(gamma_hc - 1)
        high = _times(reduced, one_plus_p)
        high_slope = _scaled_product(reduced, p_log_p, gamma_hc)
    return _blend(low, high, xi), _blend(low_slope, high_slope, xi)


def _reduce_in_function(ctx, per_sample, reduction):
    """Reduce inside a Function (one autograd node less); ``_per_row_grad`` undoes it in backward."""
    ctx.batch, ctx.reduction = per_sample.shape[0], reduction
    return reduce_loss(per_sample, reduction)


def _per_row_grad(ctx, grad_loss):
    """The incoming gradient as one value per row, shape (B,)."""
    if ctx.reduction == "none":
        return grad_loss
    if ctx.reduction == "mean" and ctx.batch:
        grad_loss = grad_loss / ctx.batch
    return grad_loss.expand(ctx.batch)


class _TargetTermFunction(torch.autograd.Function):
    """w_y(p_y) * nll per row, reduced, from nll = -log p_y (shape (B,)), with an analytic backward.

    This is the whole loss when eps = 0; nll comes from F.cross_entropy, so the
    only B x C work is cross-entropy's own. d(w nll)/d nll = w + slope
    (``_target_weight_and_slope``); one Function instead of a dozen small
    autograd nodes keeps the per-row overhead low.
    """

    @staticmethod
    def forward(ctx, nll, gamma_pos, gamma_hc, xi, reduction):
        weight, slope = _target_weight_and_slope(-nll, gamma_pos, gamma_hc, xi)
        ctx.derivative = weight + slope  # a tensor, or a number when the weight is constant
        return _reduce_in_function(ctx, nll * weight, reduction)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_loss):
        return _per_row_grad(ctx, grad_loss) * ctx.derivative, None, None, None, None


def _target_only_loss(logits, targets, gamma_pos, gamma_hc, xi, reduction):
    """The loss for eps = 0, where only the target term survives: -w_y(p_y) log p_y."""
    nll = F.cross_entropy(logits, targets, reduction="none")  # -log p_y
    return _TargetTermFunction.apply(nll, gamma_pos, gamma_hc, xi, reduction)


class _FocalFamilyFunction(torch.autograd.Function):
    """The general formula's loss (reduced as asked), with an analytic backward.

    Used when label smoothing is on (eps > 0), where every class contributes;
    correct for any eps.

    Derivation. Write s = log_softmax(z), p_j = exp(s_j), u = eps / C,
    t_y = 1 - eps + u, q_j = p_j^gamma_neg. Every weight w_j depends on p_j
    alone, so L = sum_j l_j(s_j) with l_j = -t_j w_j(exp(s_j)) s_j and

        G_j := dL/ds_j = -t_j (w_j + p_j s_j w_j'(p_j)).

    For a non-target class p_j w_j' = (1 - xi) gamma_neg q_j, so
        G_j = -u [(1 - xi) q_j (1 + gamma_neg s_j) + xi],
    and for the target G_y = -t_y (w_y + p_y s_y w_y') (``_target_weight_and_slope``).
    Through the log_softmax, ds_j/dz_k = [j = k] - p_k, hence

        dL/dz_k = G_k - p_k * SG,      SG = sum_j G_j.

    Let Gn_j be the non-target expression evaluated at every j (y included) and
    delta = G_y - Gn_y. Then SG = sum_j Gn_j + delta with
        sum_j Gn_j = -u [(1 - xi)(A + gamma_neg S1) + xi C],  A = sum_j q_j, S1 = sum_j q_j s_j,
    and the gradient is, per row and scaled by the incoming g,
        dz = K1 h + K3 p + K0 + g delta e_y,   h = q (1 + gamma_neg s),
        K1 = -g u (1 - xi),  K3 = -g SG,  K0 = -g u xi.
    With gamma_neg = 0 or xi = 1 every non-target weight is 1: Gn_j = -u and
    dz = K3 p - g u + g delta e_y. The loss uses the same row sums:
        L = -t_y w_y s_y - u [(1 - xi)(S1 - q_y s_y) + xi (S0 - s_y)],  S0 = sum_j s_j.
    """

    @staticmethod
    def forward(ctx, logits, targets, gamma_pos, gamma_neg, gamma_hc, xi, eps, reduction):
        s = torch.log_softmax(logits, dim=1)
        num_classes = s.shape[1]
        index = targets.unsqueeze(1)
        s_y = s.gather(1, index).squeeze(1)
        weight, slope = _target_weight_and_slope(s_y, gamma_pos, gamma_hc, xi)
        t_y = 1.0 - eps + eps / num_classes
        u = eps / num_classes
        uniform = gamma_neg == 0 or xi == 1
        # Scalar factors ride along as ``alpha=`` of in-place adds: one op per term.
        loss = (s_y * weight).mul_(-t_y)
        p = q = None
        if uniform:
            loss.add_(s.sum(1), alpha=-u).add_(s_y, alpha=u)
        else:
            if _is_small_integer(gamma_neg):
                p = _exp(s)
                q = _integer_power(p, int(gamma_neg), inplace=True)
            else:
                q = torch.mul(s, gamma_neg * _LOG2E).exp2_()  # p is recomputed in backward
            s1 = torch.linalg.vecdot(q, s, dim=1)  # S1 = sum_j q_j s_j
            q_y = q.gather(1, index).squeeze(1)
            qs_y = q_y * s_y
            low = u * (1 - xi)
            loss.add_(s1, alpha=-low).add_(qs_y, alpha=low)
            if xi != 0:
                loss.add_(s.sum(1), alpha=-u * xi).add_(s_y, alpha=u * xi)

        if ctx.needs_input_grad[0]:
            # G_y = -t_y (w_y + slope); weight and slope are both tensors or both numbers.
            if torch.is_tensor(weight):
                target_grad = torch.add(weight, slope).mul_(-t_y)
            else:
                target_grad = s_y.new_full(s_y.shape, -t_y * (weight + slope))
            if uniform:
                delta = target_grad.add_(u)
                total = delta - u * num_classes
            else:
                delta = target_grad.add_(q_y, alpha=low).add_(qs_y, alpha=low * gamma_neg).add_(u * xi)
                total = torch.add(delta, q.sum(1), alpha=-low).add_(s1, alpha=-low * gamma_neg)
                total.sub_(u * xi * num_classes)
            # Intermediates (neither inputs nor outputs) are kept as plain attributes.
            ctx.index, ctx.delta, ctx.total, ctx.u, ctx.xi = index, delta, total, u, xi
            # s is needed only to recompute p; q is turned in place into
            # h = q (1 + gamma_neg s), the only B x C factor of the non-target gradient.
            ctx.s = s if p is None else None
            ctx.p = p
            if uniform:
                ctx.h = None
            elif q is p:  # gamma_neg == 1: p itself must survive
                ctx.h = torch.addcmul(q, q, s, value=gamma_neg)
            else:
                ctx.h = q.addcmul_(q, s, value=gamma_neg)
        return _reduce_in_function(ctx, loss, reduction)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_loss):
        g = _per_row_grad(ctx, grad_loss)
        u, xi = ctx.u, ctx.xi
        k3 = (-(g * ctx.total)).unsqueeze(1)  # -g SG
        grad = _exp(ctx.s).mul_(k3) if ctx.p is None else ctx.p * k3
        if ctx.h is None:  # uniform non-target weights: Gn_j = -u
            grad.add_((-u * g).unsqueeze(1))
        else:
            grad.addcmul_(ctx.h, ((-u * (1 - xi)) * g).unsqueeze(1))
            if xi != 0:
                grad.add_((-u * xi * g).unsqueeze(1))
        grad.scatter_add_(1, ctx.index, (g * ctx.delta).unsqueeze(1))
        return grad, None, None, None, None, None, None, None


class _FusedFocalFamilyFunction(torch.autograd.Function):
    """The general formula through the fused CPU kernel: loss and per-sample gradient in one pass.

    Same math as ``_FocalFamilyFunction`` (whose docstring derives it), for any eps. The
    forward keeps dloss_i/dz_i (B x C, the size of the log_softmax output cross-entropy
    keeps); backward scales it by the incoming gradient, a single pass.
    """

    @staticmethod
    def forward(ctx, logits, targets, gamma_pos, gamma_neg, gamma_hc, xi, eps, reduction, kernels):
        per_sample, grad = kernels.softmax_focal(
            logits, targets, gamma_pos, gamma_neg, gamma_hc, xi, eps, ctx.needs_input_grad[0]
        )
        ctx.per_sample_grad = grad  # an intermediate, not an input or output: a plain attribute
        return _reduce_in_function(ctx, per_sample, reduction)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_loss):
        grad = ctx.per_sample_grad * _per_row_grad(ctx, grad_loss).unsqueeze(1)
        return grad, None, None, None, None, None, None, None, None


def _focal_family(logits, targets, gamma_pos, gamma_neg, gamma_hc, xi, eps, reduction):
    """Unchecked core shared by the modules (hyper-parameters validated at construction)."""
    check_logits_and_targets(logits, targets)
    z = compute_dtype_logits(logits)
    targets = targets.long()
    if eps == 0 and xi == 0 and gamma_pos == 0:
        # Exactly cross-entropy: the non-target weights multiply zero targets.
        return F.cross_entropy(z, targets, reduction=reduction)
    kernels = native.cpu_kernels(z)
    if kernels is not None:
        if torch.is_grad_enabled() and z.requires_grad:
            return _FusedFocalFamilyFunction.apply(
                z, targets, gamma_pos, gamma_neg, gamma_hc, xi, eps, reduction, kernels
            )
        # No graph will be recorded (evaluation, no_grad): the loss alone, no gradient pass.
        per_sample, _ = kernels.softmax_focal(z, targets, gamma_pos, gamma_neg, gamma_hc, xi, eps, False)
        return reduce_loss(per_sample, reduction)
    if eps == 0:
        return _target_only_loss(z, targets, gamma_pos, gamma_hc, xi, reduction)
    return _FocalFamilyFunction.apply(z, targets, gamma_pos, gamma_neg, gamma_hc, xi, eps, reduction)


def focal_family_loss(
    logits,
    targets,
    gamma_pos=0.0,
    gamma_neg=0.0,
    gamma_hc=0.0,
    xi=0.0,
    label_smoothing=0.0,
    reduction="mean",
):
    """The general focal-family loss (design/losses.md section 1) as a function.

    ``xi`` is the blend weight of the high-confidence term (CFL paper Eq. 9-10);
    any finite value is accepted so that the reference schedule (which leaves
    [0, 1]) can be replayed.
    """
    gamma_pos = check_non_negative("gamma_pos", gamma_pos)
    gamma_neg = check_non_negative("gamma_neg", gamma_neg)
    gamma_hc = check_non_negative("gamma_hc", gamma_hc)
    if not isinstance(xi, (int, float)) or isinstance(xi, bool) or not math.isfinite(xi):
        raise ValueError(f"xi must be a finite number, got {xi!r}")
    eps = check_in_unit_interval("label_smoothing", label_smoothing)
    check_reduction(reduction)
    return _focal_family(logits, targets, gamma_pos, gamma_neg, gamma_hc, float(xi), eps, reduction)


class _FocalFamilyLoss(nn.Module):
    """Shared forward; subclasses validate their own parameters under their own names."""

    def __init__(self, gamma_pos, gamma_neg, gamma_hc, label_smoothing, reduction):
        super().__init__()
        self.gamma_pos = gamma_pos
        self.gamma_neg = gamma_neg
        self.gamma_hc = gamma_hc
        self.label_smoothing = check_in_unit_interval("label_smoothing", label_smoothing)
        self.reduction = check_reduction(reduction)
        self._xi = 0.0

    def forward(self, logits, targets):
        return _focal_family(
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
class SoftmaxCrossEntropy(_FocalFamilyLoss):
    """Softmax cross-entropy, optionally with label smoothing: L = -sum_j t_j log p_j.

    Without smoothing this is ``F.cross_entropy``; with smoothing it matches
    ``F.cross_entropy(label_smoothing=eps)`` but runs through the focal family's
    fused path, which on CPU is faster than torch's smoothing path.
    """

    def __init__(self, label_smoothing=0.0, reduction="mean"):
        super().__init__(0.0, 0.0, 0.0, label_smoothing, reduction)


@register_loss("focal")
class FocalLoss(_FocalFamilyLoss):
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
class AsymmetricLoss(_FocalFamilyLoss):
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


class _CyclicalSchedule:
    """Mixin: xi follows the cyclical schedule (CFL paper Eq. 8) driven by ``set_progress``."""

    def _init_schedule(self, cyclical_factor, schedule, epochs, num_epochs):
        self.cyclical_factor = check_cyclical_factor(cyclical_factor)
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
        self.schedule = schedule
        if schedule == "paper":
            if epochs is not None:
                raise ValueError(
                    f"epochs={epochs!r} is only used by schedule='reference'; the 'paper' schedule "
                    "follows the trainer's progress"
                )
            self.epochs = None
            self.num_epochs = num_epochs
        else:
            if num_epochs is None:
                raise ValueError(
                    "num_epochs is required with schedule='reference' (it maps progress to the epoch number)"
                )
            if not isinstance(num_epochs, int) or isinstance(num_epochs, bool) or num_epochs < 1:
                raise ValueError(f"num_epochs must be an integer >= 1, got {num_epochs!r}")
            epochs = num_epochs if epochs is None else epochs
            if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 2:
                raise ValueError(f"epochs (the loss-local epoch count) must be an integer >= 2, got {epochs!r}")
            self.epochs = epochs
            self.num_epochs = num_epochs
            if epochs != num_epochs:
                warnings.warn(
                    f"schedule='reference' with epochs={epochs} but num_epochs={num_epochs}: "
                    "like the published code, xi then leaves [0, 1] late in training",
                    UserWarning,
                    stacklevel=3,
                )
        self.progress = 0.0
        self.set_progress(0.0)

    def set_progress(self, t):
        """Set training progress t in [0, 1] (0-based epoch index / (num_epochs - 1), or per step)."""
        t = check_progress(t)
        if self.schedule == "paper":
            xi = cyclical_xi(t, self.cyclical_factor)
        else:
            # The published code uses 1-based epochs: progress t is the 0-based
            # epoch index (num_epochs - 1) t, rounded to the nearest epoch.
            epoch_index = int(math.floor(t * (self.num_epochs - 1) + 0.5))
            xi = reference_xi(epoch_index + 1, self.epochs, self.cyclical_factor)
        self.progress = t
        self._xi = xi

    @property
    def xi(self):
        """Current weight of the high-confidence term (1 before any ``set_progress``)."""
        return self._xi

    def _describe_schedule(self):
        described = {"cyclical_factor": self.cyclical_factor, "schedule": self.schedule}
        if self.schedule == "reference":
            described.update(epochs=self.epochs, num_epochs=self.num_epochs)
        described["xi"] = self._xi
        return described


@register_loss("cfl")
class CyclicalFocalLoss(_CyclicalSchedule, _FocalFamilyLoss):
    """Cyclical focal loss (Smith 2022, CFL paper Eq. 9): xi L_hc + (1 - xi) L_lc.

    L_lc is the focal loss with ``gamma`` (Eq. 1/5), L_hc weights the target by
    (1 + p_y)^gamma_hc (Eq. 2), xi follows Eq. 8 with cyclical_factor f.
    ``schedule="reference"`` replays the published code's xi (see
    losses/schedule.py:reference_xi) with a loss-local ``epochs`` (default
    ``num_epochs``).
    """

    def __init__(
        self,
        gamma=2.0,
        gamma_hc=2.0,
        cyclical_factor=4.0,
        label_smoothing=0.0,
        schedule="paper",
        epochs=None,
        num_epochs=None,
        reduction="mean",
    ):
        gamma = check_non_negative("gamma", gamma)
        super().__init__(gamma, gamma, check_non_negative("gamma_hc", gamma_hc), label_smoothing, reduction)
        self.gamma = gamma
        self._init_schedule(cyclical_factor, schedule, epochs, num_epochs)

    def _describe(self):
        return {
            "gamma": self.gamma,
            "gamma_hc": self.gamma_hc,
            **self._describe_schedule(),
            **super()._describe(),
        }


@register_loss("casl")
class CyclicalAsymmetricLoss(_CyclicalSchedule, _FocalFamilyLoss):
    """Cyclical asymmetric loss (Smith 2022, CFL paper Eq. 10): xi L_hc + (1 - xi)(L+ + L-).

    L+ and L- are the asymmetric loss terms (Eq. 7) with gamma_pos, gamma_neg;
    L_hc and xi as in ``cfl``.
    """

    def __init__(
        self,
        gamma_pos=0.0,
        gamma_neg=4.0,
        gamma_hc=2.0,
        cyclical_factor=4.0,
        label_smoothing=0.0,
        schedule="paper",
        epochs=None,
        num_epochs=None,
        reduction="mean",
    ):
        super().__init__(
            check_non_negative("gamma_pos", gamma_pos),
            check_non_negative("gamma_neg", gamma_neg),
            check_non_negative("gamma_hc", gamma_hc),
            label_smoothing,
            reduction,
        )
        self._init_schedule(cyclical_factor, schedule, epochs, num_epochs)

    def _describe(self):
        return {
            "gamma_pos": self.gamma_pos,
            "gamma_neg": self.gamma_neg,
            "gamma_hc": self.gamma_hc,
            **self._describe_schedule(),
            **super()._describe(),
        }
