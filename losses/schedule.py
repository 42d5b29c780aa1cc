"""The cyclical schedule xi of the cyclical focal loss (Smith 2022, CFL paper Eq. 8).

xi blends the high-confidence term (weight xi) with the low-confidence focal or
asymmetric term (weight 1 - xi); see losses/focal_family.py.

Two versions:

* ``cyclical_xi(t, f)``: Eq. 8 written on training progress ``t`` in [0, 1].
  xi falls linearly from 1 to 0 over the first 1/f of training and climbs back
  to 1 by the end (f = 1: from 1 to 0 over all of training). The trainer owns
  ``t``, so the loss never needs its own idea of the epoch count.
* ``reference_xi(epoch, epochs, f)``: what the published CFL code computes
  from a 1-based epoch and a loss-local epoch count, unclamped. Only for
  replaying published numbers: its stage-2 configs train longer than their
  loss-local count, so xi leaves [0, 1] there.
"""

import math


def check_cyclical_factor(cyclical_factor: float) -> float:
    """The cyclical factor f must be a finite number >= 1; returns it as a float."""
    if (
        not isinstance(cyclical_factor, (int, float))
        or isinstance(cyclical_factor, bool)
        or not math.isfinite(cyclical_factor)
        or cyclical_factor < 1
    ):
        raise ValueError(f"cyclical_factor must be a finite number >= 1, got {cyclical_factor!r}")
    return float(cyclical_factor)


def check_progress(t: float) -> float:
    """Training progress must be a number in [0, 1]; returns it as a float."""
    if not isinstance(t, (int, float)) or isinstance(t, bool) or not 0.0 <= t <= 1.0:
        raise ValueError(f"training progress t must be a number in [0, 1], got {t!r}")
    return float(t)


def cyclical_xi(t: float, cyclical_factor: float) -> float:
    """xi at training progress ``t`` in [0, 1] (CFL paper Eq. 8 with e_i / e_n = t).

    ``xi = 1 - f t`` while ``f t <= 1``, then ``(f t - 1) / (f - 1)``; for
    ``f == 1`` simply ``1 - t``. The result is clamped to [0, 1] so that
    rounding in ``t`` can never push it outside.
    """
    t = check_progress(t)
    f = check_cyclical_factor(cyclical_factor)
    if f == 1.0:
        xi = 1.0 - t
    elif f * t <= 1.0:
        xi = 1.0 - f * t
    else:
        xi = (f * t - 1.0) / (f - 1.0)
    return min(1.0, max(0.0, xi))


def reference_xi(epoch: int, epochs: int, cyclical_factor: float) -> float:
    """xi exactly as the published CFL code computes it (lnsmith54/CFL, Cyclical_FocalLoss).

    ``epoch`` is 1-based and ``epochs`` is the loss's own epoch count E:
    ``1 - f e / (E - 1)`` if ``f e < E``, else ``0`` when ``f == 1``, else
    ``(f e / (E - 1) - 1) / (f - 1)``. Not clamped: with E smaller than the
    number of trained epochs (the published stage-2 configs) xi exceeds 1.
    Note the code differs from Eq. 8 (E - 1 in the denominators, strict ``<``).
    """
    f = check_cyclical_factor(cyclical_factor)
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 1:
        raise ValueError(f"epoch must be a 1-based integer >= 1, got {epoch!r}")
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 2:
        raise ValueError(f"epochs (the loss-local epoch count E) must be an integer >= 2, got {epochs!r}")
    if f * epoch < epochs:
        return 1.0 - f * epoch / (epochs - 1)
    if f == 1.0:
        return 0.0
    return (f * epoch / (epochs - 1) - 1.0) / (f - 1.0)
