"""The focal family's formula (losses/focal_family.py) computed fast, with analytic backwards.

``losses.fast.dispatch`` decides which of these runs; each computes the same numbers as
``focal_family_formula`` (the tests hold them against it):

* ``FusedFocalFamilyFunction``: the fused CPU kernel (``losses/csrc/softmax_focal.cpp``)
  computes each row's loss and gradient in one pass; backward only scales that gradient.
* ``target_only_loss`` / ``TargetTermFunction`` (label smoothing 0): the non-target terms
  vanish. ``F.cross_entropy(reduction="none")`` gives -log p_y and a small Function weights
  it per row with an analytic derivative, so the B x C work is cross-entropy's own.
* ``FocalFamilyFunction`` (label smoothing > 0): the loss from a single log_softmax with row
  sums and the gradient in closed form (derived in its docstring), so autograd keeps no chain
  of B x C temporaries. The obvious implementation (one-hot by scatter, B x C tensor-valued
  ``torch.pow``) costs several times ``F.cross_entropy``.

Notation as in the formula: p = softmax(z), s = log p, eps the label smoothing, u = eps / C.
The weights are part of the graph (not detached), as in the focal loss paper and the CFL code.
"""
import math

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from ..checks import reduce_loss

__all__ = ["FocalFamilyFunction", "FusedFocalFamilyFunction", "TargetTermFunction", "target_only_loss"]

# exp(x) == exp2(x * log2(e)); on CPU torch.exp2 is several times faster than
# torch.exp for float32, which matters for the B x C probabilities.
_LOG2E = 1.0 / math.log(2.0)
# Integer exponents up to this are computed by repeated multiplication.
_MAX_INTEGER_POWER = 16


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


class TargetTermFunction(torch.autograd.Function):
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


def target_only_loss(logits, targets, gamma_pos, gamma_hc, xi, reduction):
    """The loss for eps = 0, where only the target term survives: -w_y(p_y) log p_y."""
    nll = F.cross_entropy(logits, targets, reduction="none")  # -log p_y
    return TargetTermFunction.apply(nll, gamma_pos, gamma_hc, xi, reduction)


class FocalFamilyFunction(torch.autograd.Function):
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


class FusedFocalFamilyFunction(torch.autograd.Function):
    """The general formula through the fused CPU kernel: loss and per-sample gradient in one pass.

    Same math as ``FocalFamilyFunction`` (whose docstring derives it), for any eps. The
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
