"""Seesaw loss: ``seesaw``.

Wang, Zhang, Zang, Gao, Feng, Chen, Lin, Loy, "Seesaw Loss for Long-Tailed Instance
Segmentation", CVPR 2021, Eq. 2-5. For a sample of class i, every other class j has its
logit raised by log S_ij before softmax cross-entropy::

    S_ij = M_ij C_ij
    M_ij = (N_j / N_i)^p      if N_j < N_i, else 1      mitigation: a rare class j is pushed
                                                        down less by samples of a frequent i
    C_ij = (sigma_j / max(sigma_i, eps))^q  if that ratio > 1, else 1
                                                        compensation: a class that wrongly
                                                        scores above i is penalised more
    L = CE(z + log S_i, y = i)

with sigma = softmax(z) detached and N the training counts. log S_ii = 0, so the target logit
is unchanged. S is a constant for autograd, so the gradient is softmax(z + log S) - onehot(y).

``eps`` (default 1e-2) floors the target's probability in C, as the authors' implementation
(mmdetection's ``SeesawLoss``, ``eps=1e-2``) does; the paper's Eq. 5 has no floor. Early in
training, when sigma_i is tiny, the floor bounds the compensation: with logits [-4, 0, 0, 0],
label 0, equal counts, p 0.8 and q 2 the loss is 12.0996 with the floor and 13.0986 without
(``eps=0``, where log C_ij = q max(z_j - z_i, 0) exactly).

N: ``counts="online"`` (default, the paper's) accumulates the labels of every training batch,
including the current one, before the loss is computed, in the float64 buffer
``seen_counts`` (saved in checkpoints; under torch.distributed the batch counts are summed
across ranks, so every rank holds the same N); each N is taken as at least 1, as in
mmdetection's implementation. ``counts="static"`` uses ``class_counts`` (context) instead.

Loss protocol hooks (losses/registry.py): the state buffer ``seen_counts``.
"""

import math

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from .checks import (
    check_class_counts,
    check_logits_and_targets,
    check_non_negative,
    check_reduction,
    compute_dtype_logits,
)
from .registry import register_loss

__all__ = ["COUNT_MODES", "SeesawLoss"]

COUNT_MODES = ("online", "static")


@register_loss("seesaw")
class SeesawLoss(nn.Module):
    """Seesaw loss (Wang et al. 2021): ``p`` = 0.8 (mitigation), ``q`` = 2.0 (compensation), both >= 0;
    ``eps`` = 1e-2, the floor of the target's probability in the compensation (mmdetection's; 0: none).

    ``counts``: ``"online"`` (default; needs ``num_classes``) or ``"static"`` (needs
    ``class_counts``). Online counts grow only in training steps (training mode, logits in an
    autograd graph), like EFL's statistics.
    """

    def __init__(self, num_classes=None, class_counts=None, p=0.8, q=2.0, eps=1e-2, counts="online", reduction="mean"):
        super().__init__()
        if counts not in COUNT_MODES:
            raise ValueError(f"counts must be one of {COUNT_MODES}, got {counts!r}")
        self.counts = counts
        self.p = check_non_negative("p", p)
        self.q = check_non_negative("q", q)
        self.eps = check_non_negative("eps", eps)
        if self.eps >= 1:
            raise ValueError(f"eps must be below 1 (a floor of a probability), got {eps!r}")
        self.reduction = check_reduction(reduction)
        if counts == "static":
            static = check_class_counts(class_counts, num_classes)
            self.num_classes = static.numel()
            self.register_buffer("static_counts", static, persistent=False)  # from the config: not a state
        else:
            if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
                raise ValueError(
                    f"num_classes must be a positive integer (the pipeline passes it as context), got {num_classes!r}"
                )
            self.num_classes = num_classes
            self.register_buffer("seen_counts", torch.zeros(num_classes, dtype=torch.float64))

    def class_counts_now(self):
        """N as used by the next loss: the static counts or the online ones, each at least 1."""
        counts = self.static_counts if self.counts == "static" else self.seen_counts
        return counts.clamp(min=1.0)

    def forward(self, logits, targets):
        check_logits_and_targets(logits, targets, self.num_classes)
        z = compute_dtype_logits(logits)
        targets = targets.long()
        if self.counts == "online" and self.training and logits.requires_grad and torch.is_grad_enabled():
            self._count(targets)
        with torch.no_grad():
            log_counts = self.class_counts_now().log().to(device=z.device, dtype=z.dtype)
            index = targets.unsqueeze(1)
            # log M_ij = p min(log N_j - log N_i, 0);  log C_ij = q max(log sigma_j - log max(sigma_i, eps), 0)
            log_seesaw = (log_counts - log_counts[index]).clamp_(max=0.0).mul_(self.p)
            log_sigma = torch.log_softmax(z, dim=1)
            log_floor = log_sigma.gather(1, index).clamp(min=math.log(self.eps) if self.eps > 0 else -math.inf)
            log_seesaw.add_((log_sigma - log_floor).clamp_(min=0.0), alpha=self.q)
        return F.cross_entropy(z + log_seesaw, targets, reduction=self.reduction)

    def _count(self, targets):
        # index_add_, not bincount: CUDA's bincount reads the labels' min and max on the host
        batch = torch.zeros(self.num_classes, dtype=torch.float64, device=targets.device)
        batch = batch.index_add_(0, targets, torch.ones_like(targets, dtype=torch.float64)).to(self.seen_counts.device)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(batch)  # every rank adds every rank's labels: the same N everywhere
        self.seen_counts += batch

    def extra_repr(self):
        return (
            f"num_classes={self.num_classes}, p={self.p}, q={self.q}, eps={self.eps}, counts={self.counts!r}, "
            f"reduction={self.reduction!r}"
        )
