"""Classifiers of OLTR (Liu et al., CVPR 2019): dot product, cosine norm, meta-embedding; and the
plain cosine classifier that fine-tuning recipes use (LIFT, Shi et al., ICML 2024).

Every classifier has forward(x, centroids=None) -> (logits, extras_or_None), so the
trainer calls them the same way; only the meta-embedding classifier uses centroids.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..common.errors import CheckpointError

# A feature that coincides with a centroid (a one-image class seen again without
# augmentation, or an all-zero feature next to a zero centroid) has min distance 0,
# and reachability 10/0 = inf turns the logits into NaN. 1e-6 is far below any real
# feature distance; it caps reachability at 1e7, where the cosine-norm squashing
# |x'|/(1+|x'|) is already 1, so the logits are unchanged in practice.
MIN_CENTROID_DISTANCE = 1e-6


class DotProductClassifier(nn.Module):
    """Linear classifier (OLTR stage 1): logits = x W^T + b."""

    def __init__(self, in_dim: int, num_classes: int):
        super().__init__()
        self.in_dim = in_dim
        self.num_classes = num_classes
        self.fc = nn.Linear(in_dim, num_classes)

    def forward(self, x: torch.Tensor, centroids: torch.Tensor | None = None) -> tuple[torch.Tensor, None]:
        return self.fc(x), None


class CosineNormClassifier(nn.Module):
    """Cosine-norm classifier (OLTR Eq. 6-7): logits_k = scale * (|x|/(1+|x|)) * (x/|x|) . (w_k/|w_k|).

    |x|/(1+|x|) * x/|x| is computed as x/(1+|x|), the same value, finite at x = 0.
    """

    def __init__(self, in_dim: int, num_classes: int, scale: float = 16.0):
        super().__init__()
        self.in_dim = in_dim
        self.num_classes = num_classes
        self.scale = float(scale)
        self.weight = nn.Parameter(torch.empty(num_classes, in_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.in_dim)  # as OLTR's CosNorm_Classifier
        nn.init.uniform_(self.weight, -bound, bound)

    def forward(self, x: torch.Tensor, centroids: torch.Tensor | None = None) -> tuple[torch.Tensor, None]:
        squashed = x / (1.0 + torch.linalg.vector_norm(x, dim=1, keepdim=True))
        unit_weight = F.normalize(self.weight, dim=1)
        return self.scale * F.linear(squashed, unit_weight), None


class CosineClassifier(nn.Module):
    """Cosine classifier: logits_k = scale * (x/|x|) . (w_k/|w_k|), without OLTR's squashing or a bias.

    LIFT's head over CLIP features (scale 25 in its configs).
    """

    def __init__(self, in_dim: int, num_classes: int, scale: float = 25.0):
        super().__init__()
        self.in_dim = in_dim
        self.num_classes = num_classes
        self.scale = float(scale)
        self.weight = nn.Parameter(torch.empty(num_classes, in_dim))
        nn.init.uniform_(self.weight, -1.0 / math.sqrt(in_dim), 1.0 / math.sqrt(in_dim))

    def forward(self, x: torch.Tensor, centroids: torch.Tensor | None = None) -> tuple[torch.Tensor, None]:
        return self.scale * F.linear(F.normalize(x, dim=1), F.normalize(self.weight, dim=1)), None


class MetaEmbeddingClassifier(nn.Module):
    """Meta-embedding classifier (OLTR Sec. 3.1, Eq. 1-4) over class centroids M (C x D).

        reach_i = reachability_scale / min_k ||x_i - M_k||
        mem_i   = softmax(fc_hallucinator(x_i)) @ M         (memory feature)
        e_i     = tanh(fc_selector(x_i))                    (concept selector)
        x'_i    = reach_i * (x_i + e_i * mem_i)
        logits  = CosineNormClassifier(x'_i)

    The centroids are read as constants (detached): they are trained by the feature
    loss's own optimizer, not through this classifier. Returns
    (logits, [direct_feature x, infused_feature e * mem]) as OLTR does.
    """

    def __init__(self, in_dim: int, num_classes: int, scale: float = 16.0, reachability_scale: float = 10.0):
        super().__init__()
        self.in_dim = in_dim
        self.num_classes = num_classes
        self.reachability_scale = float(reachability_scale)
        self.fc_hallucinator = nn.Linear(in_dim, num_classes)
        self.fc_selector = nn.Linear(in_dim, in_dim)
        self.cosnorm_classifier = CosineNormClassifier(in_dim, num_classes, scale=scale)

    def forward(
        self, x: torch.Tensor, centroids: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        memory = self._check_centroids(centroids, x)
        direct_feature = x

        # Exact pairwise distances (no |a|^2 - 2ab + |b|^2 cancellation, which is
        # badly wrong exactly when x is near a centroid and reach is largest).
        distance_dtype = torch.promote_types(x.dtype, torch.float32)  # fp16/bf16 -> fp32, fp64 stays
        distances = torch.cdist(
            x.to(distance_dtype), memory.to(distance_dtype), compute_mode="donot_use_mm_for_euclid_dist"
        )
        nearest = distances.min(dim=1, keepdim=True).values.clamp_min(MIN_CENTROID_DISTANCE)
        reachability = self.reachability_scale / nearest  # (B, 1)

        memory_weights = torch.softmax(self.fc_hallucinator(x), dim=1)  # (B, C)
        memory_feature = memory_weights @ memory.to(memory_weights.dtype)  # (B, D)
        concept_selector = torch.tanh(self.fc_selector(x))  # (B, D)
        infused_feature = concept_selector * memory_feature
        meta_embedding = reachability * (direct_feature + infused_feature)

        logits, _ = self.cosnorm_classifier(meta_embedding)
        return logits, [direct_feature, infused_feature]

    def _check_centroids(self, centroids: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
        if centroids is None:
            raise ValueError(
                "MetaEmbeddingClassifier.forward needs centroids (num_classes x in_dim); "
                "compute them before stage 2 (config memory.centroids: true)."
            )
        expected = (self.num_classes, self.in_dim)
        if tuple(centroids.shape) != expected:
            raise ValueError(
                f"MetaEmbeddingClassifier got centroids of shape {tuple(centroids.shape)}, expected {expected} "
                f"(num_classes, in_dim)."
            )
        if x.dim() != 2 or x.shape[1] != self.in_dim:
            raise ValueError(
                f"MetaEmbeddingClassifier got features of shape {tuple(x.shape)}, expected (B, {self.in_dim})."
            )
        return centroids.detach().to(x.device)

    @torch.no_grad()
    def init_from_stage1(self, state_dict: Mapping[str, torch.Tensor]) -> None:
        """Copy a stage-1 DotProductClassifier state dict (fc.weight, fc.bias) into fc_hallucinator."""
        for key, target in (("fc.weight", self.fc_hallucinator.weight), ("fc.bias", self.fc_hallucinator.bias)):
            if key not in state_dict:
                raise CheckpointError(
                    f"stage-1 classifier weights lack {key!r} (found keys: {', '.join(sorted(state_dict)) or 'none'}); "
                    f"they must come from a dot_product classifier."
                )
            source = state_dict[key]
            if tuple(source.shape) != tuple(target.shape):
                raise CheckpointError(
                    f"stage-1 classifier {key} has shape {tuple(source.shape)} but fc_hallucinator needs "
                    f"{tuple(target.shape)}; check num_classes and the feature dimension against stage 1."
                )
        self.fc_hallucinator.weight.copy_(state_dict["fc.weight"])
        self.fc_hallucinator.bias.copy_(state_dict["fc.bias"])
