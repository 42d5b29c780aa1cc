"""OLTR's discriminative centroids loss: ``disc_centroids``.

Liu, Miao, Zhan, Wang, Gong, Yu, "Large-Scale Long-Tailed Recognition in an Open World",
CVPR 2019, Sec. 3.3 (Eq. 5, the "discriminative centroids" feature loss of stage 2), ported
from the authors' loss/DiscCentroidsLoss.py:

    attract = sum_i ||f_i - c_{y_i}||^2 / 2 / B
    repel   = clamp(margin - sum_{i, k != y_i} ||f_i - c_k||^2 / (B * C), 0, 1e6)
    loss    = attract + 0.01 * repel

Under torch.distributed (a training step) the loss is the single-process loss of the global
batch: the per-class counts n_k and the repel sum are all-reduced, so the centre-loss update
divides by the global n_k and the clamp of the repel term is decided on the global mean. Each
rank's gradients are then its share of the global gradient times the number of ranks, which
DDP's (and the trainer's, for the centroids) mean over ranks turns into the global gradient;
the per-rank batches must be equal, as DDP's mean already assumes.
"""

import math

import torch
import torch.distributed as dist
import torch.nn as nn

from .checks import check_logits_and_targets
from .registry import register_loss

REPEL_WEIGHT = 0.01  # fixed in the original code
REPEL_CLAMP_MAX = 1e6


class _AttractCenterLoss(torch.autograd.Function):
    """``sum_i ||f_i - c_{y_i}||^2 / 2 / B`` with OLTR's center-loss backward.

    Features get the true gradient, ``grad_output * (f_i - c_{y_i}) / B``. Centroid k gets
    ``sum_{i: y_i = k} (c_k - f_i) / (1 + n_k) / B`` (n_k = samples of class k in the batch,
    ``counts``: the global batch's under DDP;
    Wen et al. 2016's center update), which is not the gradient of the attract term. As in the
    original, it ignores grad_output (the loss's weight in the objective, an AMP loss scale)
    unless ``scale_centroid_grad`` is set.
    """

    @staticmethod
    def forward(ctx, features, targets, centroids, scale_centroid_grad, counts=None):
        diff = features - centroids.index_select(0, targets)
        if counts is None:
            counts = class_counts(targets, centroids.shape[0], features.dtype)
        ctx.save_for_backward(diff, targets, counts)
        ctx.num_classes = centroids.shape[0]
        ctx.scale_centroid_grad = scale_centroid_grad
        return diff.pow(2).sum() / 2.0 / features.shape[0]

    @staticmethod
    def backward(ctx, grad_output):
        diff, targets, counts = ctx.saved_tensors
        batch_size = diff.shape[0]
        grad_features = grad_centroids = None
        if ctx.needs_input_grad[0]:
            grad_features = grad_output * diff / batch_size
        if ctx.needs_input_grad[2]:
            summed = torch.zeros(ctx.num_classes, diff.shape[1], dtype=diff.dtype, device=diff.device)
            summed.index_add_(0, targets, diff.neg())  # sum_{i: y_i = k} (c_k - f_i)
            grad_centroids = summed / (counts.to(diff.dtype) + 1.0).unsqueeze(1) / batch_size
            if ctx.scale_centroid_grad:
                grad_centroids = grad_centroids * grad_output
        return grad_features, None, grad_centroids, None, None


def class_counts(targets, num_classes, dtype=torch.float32):
    """Samples per class, by index_add_: CUDA's bincount reads the labels' min and max on the host."""
    return torch.zeros(num_classes, dtype=dtype, device=targets.device).index_add_(
        0, targets, torch.ones_like(targets, dtype=dtype)
    )


def negative_distance_sum(features, centroids, targets):
    """``sum_{i, k != y_i} ||f_i - c_k||^2`` without the B x C distance matrix.

    The all-pairs sum splits exactly into non-negative parts (cross terms vanish about the
    means): C * sum_i ||f_i - mean f||^2 + B * sum_k ||c_k - mean c||^2 + B*C * ||mean f - mean c||^2.
    Unlike ||f||^2 + ||c||^2 - 2 f.c it has no cancellation in float32, and costs O((B + C) D).
    The positive pairs are then subtracted.
    """
    batch_size, num_classes = features.shape[0], centroids.shape[0]
    feature_mean, centroid_mean = features.mean(dim=0), centroids.mean(dim=0)
    all_pairs = (
        num_classes * (features - feature_mean).pow(2).sum()
        + batch_size * (centroids - centroid_mean).pow(2).sum()
        + batch_size * num_classes * (feature_mean - centroid_mean).pow(2).sum()
    )
    positive_pairs = (features - centroids.index_select(0, targets)).pow(2).sum()
    return all_pairs - positive_pairs


@register_loss("disc_centroids")
class DiscCentroidsLoss(nn.Module):
    """OLTR discriminative centroids loss (Liu et al. 2019, Sec. 3.3), ``forward(features, targets)``.

    Parameters: ``num_classes`` and ``feat_dim`` (required, pipeline context), ``margin`` = 10.0
    (>= 0), ``reduction``: only "mean" (the batch mean of the original; it returns a scalar),
    ``scale_centroid_grad`` = False: when True the centroids' center-loss update is multiplied by
    the incoming gradient like any other gradient (needed under fp16 GradScaler, which would
    otherwise divide an unscaled centroid gradient by the loss scale); False is the original.

    ``centroids`` (C x D) is an nn.Parameter initialised with randn like the original; the trainer
    gives it its own optimizer and may overwrite ``centroids.data`` with computed class means.
    Features of any float dtype are handled in float32; the result is float32.

    Loss protocol hooks (losses/registry.py): ``centroids``, ``ignores_loss_scale``.
    """

    def __init__(self, num_classes=None, feat_dim=None, margin=10.0, reduction="mean", scale_centroid_grad=False):
        super().__init__()
        for name, value in (("num_classes", num_classes), ("feat_dim", feat_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"{name} must be a positive integer (the pipeline passes it as context), got {value!r}"
                )
        if not isinstance(margin, (int, float)) or isinstance(margin, bool) or not math.isfinite(margin) or margin < 0:
            raise ValueError(f"margin must be a finite number >= 0, got {margin!r}")
        if reduction != "mean":
            raise ValueError(
                f"reduction must be 'mean' for disc_centroids (it returns the batch mean), got {reduction!r}"
            )
        if not isinstance(scale_centroid_grad, bool):
            raise ValueError(f"scale_centroid_grad must be True or False, got {scale_centroid_grad!r}")
        self.num_classes = num_classes
        self.feat_dim = feat_dim
        self.margin = float(margin)
        self.reduction = reduction
        self.scale_centroid_grad = scale_centroid_grad
        self.centroids = nn.Parameter(torch.randn(num_classes, feat_dim))

    @property
    def ignores_loss_scale(self):
        """True with OLTR's rule: the centroid update ignores the incoming gradient, so an fp16
        GradScaler's unscaling would shrink it by the loss scale (trainers refuse that pairing)."""
        return not self.scale_centroid_grad

    def forward(self, features, targets):
        check_logits_and_targets(features, targets, self.num_classes, name="features")
        if features.shape[1] != self.feat_dim:
            raise ValueError(
                f"features must have shape (batch, {self.feat_dim}) to match feat_dim, got {tuple(features.shape)}"
            )
        targets = targets.long()
        features = features.float()
        centroids = self.centroids.float()
        counts = class_counts(targets, self.num_classes)
        negative = negative_distance_sum(features, centroids, targets)
        if not (self.training and features.requires_grad and dist.is_available() and dist.is_initialized()):
            attract = _AttractCenterLoss.apply(features, targets, centroids, self.scale_centroid_grad, counts)
            mean_negative = negative / (features.shape[0] * self.num_classes)
            repel = torch.clamp(self.margin - mean_negative, 0.0, REPEL_CLAMP_MAX)
            return attract + REPEL_WEIGHT * repel
        # One all-reduce of the counts and the repel sum (their sum over ranks is the global batch's).
        shared = torch.cat([counts, negative.detach().reshape(1)])
        dist.all_reduce(shared)
        counts, global_negative = shared[:-1], shared[-1]
        attract = _AttractCenterLoss.apply(features, targets, centroids, self.scale_centroid_grad, counts)
        inside = self.margin - global_negative / (counts.sum() * self.num_classes)  # the global batch's
        repel = torch.clamp(inside, 0.0, REPEL_CLAMP_MAX)
        # The global value, and where the clamp passes it the gradient of this rank's share (times
        # the number of ranks: divided by the local batch), as the single process's clamp would.
        passes = ((inside >= 0.0) & (inside <= REPEL_CLAMP_MAX)).to(negative.dtype)
        local = negative / (features.shape[0] * self.num_classes)
        return attract + REPEL_WEIGHT * (repel - passes * (local - local.detach()))

    def extra_repr(self):
        return f"num_classes={self.num_classes}, feat_dim={self.feat_dim}, margin={self.margin}"
