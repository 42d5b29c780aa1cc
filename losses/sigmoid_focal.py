"""The sigmoid focal loss summed over classes: the core that CB (cb_sigmoid, cb_focal) and EFL share.

Lin, Goyal, Girshick, He, Dollar, "Focal Loss for Dense Object Detection", ICCV 2017,
Eq. 5 with one binary classifier per class. For sample i and class j, with
``p_ij = sigmoid(z_ij)`` and ``p_t = p_ij`` on the target entry, ``1 - p_ij`` elsewhere::

    L_i = sum_j w_ij (1 - p_t)^gamma_j (-log p_t)

``w_ij`` is ``pos_weight_i`` on the target entry and ``neg_weight_ij`` elsewhere (1 when
not given); gamma = 0 is the summed binary cross-entropy. ``sigmoid_focal_formula`` is
that definition in plain PyTorch, differentiated by autograd; ``sigmoid_focal_per_sample`` adds
the gradient collection EFL needs (a hook on the logits).
"""

from typing import Callable, Optional, Union

import torch
import torch.nn.functional as F

__all__ = ["sigmoid_focal_formula", "sigmoid_focal_per_sample"]


def sigmoid_focal_formula(
    z: torch.Tensor,
    targets: torch.Tensor,
    gamma: Union[float, torch.Tensor] = 0.0,
    pos_weight: Optional[torch.Tensor] = None,
    neg_weight: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Per-sample ``L_i`` (shape (B,)), autograd for the gradient; arguments as ``sigmoid_focal_per_sample``."""
    is_target = torch.zeros_like(z, dtype=torch.bool).scatter_(1, targets.unsqueeze(1), True)
    # p_t = sigmoid(z_t) with z_t = z on the target and -z elsewhere, so 1 - p_t = sigmoid(-z_t)
    # and -log p_t = softplus(-z_t): both finite for any |z|.
    z_t = torch.where(is_target, z, -z)
    # the base clamped as in focal_family_formula: no inf * 0 in the gradient where 1 - p_t underflows
    focusing = torch.sigmoid(-z_t).clamp_min(torch.finfo(z.dtype).tiny).pow(gamma)
    weight = torch.ones_like(z)
    if neg_weight is not None:
        weight = torch.where(is_target, weight, torch.as_tensor(neg_weight, dtype=z.dtype).expand_as(z))
    if pos_weight is not None:
        weight = torch.where(is_target, pos_weight.to(z.dtype).unsqueeze(1), weight)
    return (weight * focusing * F.softplus(-z_t)).sum(dim=1)


def sigmoid_focal_per_sample(
    z: torch.Tensor,
    targets: torch.Tensor,
    gamma: Union[float, torch.Tensor] = 0.0,
    pos_weight: Optional[torch.Tensor] = None,
    neg_weight: Optional[torch.Tensor] = None,
    collect_gradient_sums: Optional[Callable] = None,
) -> torch.Tensor:
    """``L_i`` for each sample i (shape (B,)): ``sigmoid_focal_formula``, and EFL's gradient collection.

    ``z``: float32 or float64 logits (B, C) (the losses promote half precision first);
    ``targets``: int64 (B,). ``gamma``: a float, or a (C,) tensor (one per class, EFL's).
    ``pos_weight``: (B,) weight >= 0 of each target entry, or None; ``neg_weight``:
    broadcastable to (B, C), weight >= 0 of the non-target entries, or None. Weights and
    gamma are constants for autograd. ``collect_gradient_sums(targets, pos_abs, neg_abs_sums)``,
    if given, is called in backward with |dObjective/dz| at each sample's target entry (B,)
    and summed over the non-target entries of each class (C,).
    """
    if collect_gradient_sums is not None and torch.is_grad_enabled() and z.requires_grad:
        # A node of its own: its hook sees the gradient of this loss alone, not of others on the same logits.
        z = z.view_as(z)
        z.register_hook(lambda grad: _collect(grad, targets, collect_gradient_sums))
    return sigmoid_focal_formula(z, targets, gamma, pos_weight, neg_weight)


def _collect(grad, targets, collect_gradient_sums):
    """|gradient| at each sample's target entry (B,) and summed off the targets per class (C,); the
    gradient itself passes on unchanged."""
    magnitude = grad.abs()
    is_target = torch.zeros_like(magnitude, dtype=torch.bool).scatter_(1, targets.unsqueeze(1), True)
    at_target = magnitude.gather(1, targets.unsqueeze(1)).squeeze(1)
    collect_gradient_sums(targets, at_target, magnitude.masked_fill(is_target, 0).sum(dim=0))
