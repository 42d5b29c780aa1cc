"""Classifiers of the decoupled recipes (Kang et al., "Decoupling Representation and Classifier for
Long-Tailed Recognition", ICLR 2020, Sec. 4), over a frozen stage-1 feature model.

    LWSClassifier       logits_j = s_j (W_j . x + b_j)           learnable weight scaling: only s trains
    TauNormClassifier   logits_j = W_j / ||W_j||^tau . x + b_j   tau-normalised stage-1 classifier
    NCMClassifier       logits_j = scale * cos(x, m_j)           nearest class mean, m_j the mean of the
                                                                 class's L2-normalised training features

Each has forward(x, centroids=None) -> (logits, None), like the classifiers of classifiers.py.
The stage-1 weights (``fc``) of LWS and tau-norm are frozen buffers of the recipe, stored as
parameters with ``requires_grad=False`` so a stage-1 ``fc.weight`` / ``fc.bias`` loads as is.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LWSClassifier(nn.Module):
    """Learnable weight scaling (Kang et al. 2020, Sec. 4): the stage-1 linear classifier, frozen,
    times one learnt scale per class (initialised to 1), as classifier-balancing's LWS."""

    def __init__(self, in_dim: int, num_classes: int):
        super().__init__()
        self.in_dim, self.num_classes = in_dim, num_classes
        self.fc = nn.Linear(in_dim, num_classes)
        self.fc.requires_grad_(False)
        self.scales = nn.Parameter(torch.ones(num_classes))

    def forward(self, x: torch.Tensor, centroids: torch.Tensor | None = None) -> tuple[torch.Tensor, None]:
        return self.fc(x) * self.scales, None


class TauNormClassifier(nn.Module):
    """tau-normalised classifier (Kang et al. 2020, Sec. 4, Eq. 3): W_j / ||W_j||^tau, no training.

    ``tau`` is a buffer (saved in checkpoints), picked by the recipe on the validation split.
    With ``use_bias`` (default) the stage-1 bias is kept, so tau = 0 is exactly the stage-1
    classifier; classifier-balancing's tau_norm.py drops it (``use_bias: false``).
    """

    def __init__(self, in_dim: int, num_classes: int, tau: float = 0.0, use_bias: bool = True):
        super().__init__()
        self.in_dim, self.num_classes = in_dim, num_classes
        self.use_bias = bool(use_bias)
        self.fc = nn.Linear(in_dim, num_classes)
        self.fc.requires_grad_(False)
        self.register_buffer("tau", torch.tensor(float(tau), dtype=torch.float64))

    def set_tau(self, tau: float) -> None:
        self.tau.fill_(float(tau))

    def normalised_weight(self) -> torch.Tensor:
        norms = torch.linalg.vector_norm(self.fc.weight, dim=1, keepdim=True).clamp_min(1e-12)
        return self.fc.weight / norms.pow(self.tau.to(norms.dtype))

    def forward(self, x: torch.Tensor, centroids: torch.Tensor | None = None) -> tuple[torch.Tensor, None]:
        weight = self.normalised_weight().to(x.dtype)
        bias = self.fc.bias.to(x.dtype) if self.use_bias else None
        return F.linear(x, weight, bias), None


class NCMClassifier(nn.Module):
    """Nearest class mean with cosine similarity (Kang et al. 2020, Sec. 4, "NCM").

    ``means`` (C x D, a buffer) is set by the recipe from one pass over the training split:
    m_j = mean of the L2-normalised features of class j. logits = ``scale`` * cos(x, m_j):
    argmax is the nearest mean whatever the scale; ``scale`` (default 16, the cosine-norm
    classifier's) only sharpens the softmax the open-set threshold reads.
    """

    def __init__(self, in_dim: int, num_classes: int, scale: float = 16.0):
        super().__init__()
        self.in_dim, self.num_classes = in_dim, num_classes
        self.scale = float(scale)
        self.register_buffer("means", torch.zeros(num_classes, in_dim))

    def forward(self, x: torch.Tensor, centroids: torch.Tensor | None = None) -> tuple[torch.Tensor, None]:
        cosine = F.linear(F.normalize(x, dim=1), F.normalize(self.means.to(x.dtype), dim=1))
        return self.scale * cosine, None
