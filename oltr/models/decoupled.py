"""Classifiers of the decoupled recipes (Kang et al., "Decoupling Representation and Classifier for
Long-Tailed Recognition", ICLR 2020, Sec. 4), over a frozen stage-1 feature model.

    LWSClassifier       logits_j = s_j (W_j . x + b_j)           learnable weight scaling: only s trains
    TauNormClassifier   logits_j = W_j / ||W_j||^tau . x + b_j   tau-normalised stage-1 classifier
    NCMClassifier       logits_j = scale * cos(x, m_j)           nearest class mean, m_j the mean of the
                                                                 class's L2-normalised training features
                        (or -||x^ - m_j||^2, centred)            (or classifier-balancing's centred L2 mode)

Each has forward(x, centroids=None) -> (logits, None), like the classifiers of classifiers.py.
The stage-1 weights (``fc``) of LWS and tau-norm are frozen buffers of the recipe, stored as
parameters with ``requires_grad=False`` so a stage-1 ``fc.weight`` / ``fc.bias`` loads as is.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..common.errors import ConfigError


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


NCM_MODES = ("cosine", "centered_l2")


class NCMClassifier(nn.Module):
    """Nearest class mean (Kang et al. 2020, Sec. 4, "NCM"), in one of two modes.

    ``mode="cosine"`` (ours, the default): ``means`` m_j = the mean of class j's L2-normalised
    training features; logits = ``scale`` * cos(x, m_j). The argmax is the nearest mean whatever the
    scale; ``scale`` (default 16, the cosine-norm classifier's) puts the logits on a scale whose
    softmax OLTR's fixed open-set threshold can read.

    ``mode="centered_l2"``: classifier-balancing's default (``feat_type='cl2n'``, ``dist_type='l2'``).
    ``feature_mean`` mu = the mean training feature; m_j = the mean of class j's normalise(f - mu);
    logits = -||normalise(x - mu) - m_j||^2, with no scale (``scale`` is unused). Its logits lie in
    [-4, 0], so its softmax is nearly flat and a fixed max-probability threshold rejects by accident;
    judge it with a validation-chosen threshold or a threshold-free measure.

    Both buffers are set by the recipe from one pass over the training split.
    """

    def __init__(self, in_dim: int, num_classes: int, scale: float = 16.0, mode: str = "cosine"):
        super().__init__()
        if mode not in NCM_MODES:
            raise ConfigError(
                f"ncm mode must be one of {', '.join(NCM_MODES)}, got {mode!r}; "
                "set networks.classifier.params.mode to one of them"
            )
        self.in_dim, self.num_classes, self.mode = in_dim, num_classes, mode
        self.scale = float(scale)
        self.register_buffer("means", torch.zeros(num_classes, in_dim))
        self.register_buffer("feature_mean", torch.zeros(in_dim))

    def forward(self, x: torch.Tensor, centroids: torch.Tensor | None = None) -> tuple[torch.Tensor, None]:
        means = self.means.to(x.dtype)
        if self.mode == "cosine":
            return self.scale * F.linear(F.normalize(x, dim=1), F.normalize(means, dim=1)), None
        query = F.normalize(x - self.feature_mean.to(x.dtype), dim=1)
        return -torch.cdist(query.unsqueeze(0), means.unsqueeze(0)).squeeze(0).square(), None

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # checkpoints from before the centred mode hold no feature_mean; the cosine mode never reads it
        state_dict.setdefault(prefix + "feature_mean", torch.zeros(self.in_dim))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self):
        return f"in_dim={self.in_dim}, num_classes={self.num_classes}, mode={self.mode!r}, scale={self.scale}"
