"""Post-hoc logit adjustment at test time (Menon et al., "Long-Tail Learning via Logit Adjustment",
ICLR 2021, Eq. 3): predict with f_y(x) - tau * log pi_y, pi the training class prior.

``evaluation.logit_adjustment_tau`` (default 0: off) applies it before every closed- and open-set
metric of ``--test`` / ``--test_open``; the results JSON records the tau.
"""

from collections.abc import Sequence

import torch

from ..common.errors import DataError


def adjust_logits(logits: torch.Tensor, class_counts: Sequence[int], tau: float) -> torch.Tensor:
    """``logits - tau * log(class_counts / sum)``; unchanged for tau = 0; a DataError for a zero count."""
    tau = float(tau)
    if tau == 0.0:
        return logits
    counts = torch.as_tensor(class_counts, dtype=torch.float64)
    if counts.numel() != logits.shape[1]:
        raise DataError(f"post-hoc logit adjustment: {counts.numel()} class counts for {logits.shape[1]} logits")
    empty = (counts <= 0).nonzero().flatten().tolist()
    if empty:
        raise DataError(
            f"evaluation.logit_adjustment_tau={tau} subtracts tau * log(prior), but class {empty[0]} "
            "has no training image (log 0); set evaluation.logit_adjustment_tau=0 or fix the "
            "training split"
        )
    log_prior = (counts / counts.sum()).log()
    return (logits.double() - tau * log_prior.to(logits.device)).to(logits.dtype)
