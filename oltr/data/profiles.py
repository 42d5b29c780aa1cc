"""Per-class image counts of a long-tailed training split.

Two shapes, both non-increasing from ``max_count`` (class position 0) to
``min_count`` (position C-1), with ``r = min_count / max_count`` (the inverse of
the imbalance factor ``IF``; given IF itself, ``r = 1 / IF`` exactly):

* ``exponential`` (Cui et al., CVPR 2019, class-balanced loss; Cao et al.,
  NeurIPS 2019, LDAM: CIFAR-10/100-LT)::

      n_i = floor(max_count * r ** (i / (C - 1)))

  e.g. C=10, 5000 -> 50 gives 5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50.

* ``pareto`` (a power law, the heavy tail OLTR drew ImageNet-LT and Places-LT
  from; Liu et al., CVPR 2019)::

      n_i = floor(max_count * (i + 1) ** (-a)),   a = ln(1 / r) / ln(C)

  so the head falls quickly and a long tail of classes sits near min_count.

Both pin the endpoints to exactly max_count and min_count (guarding against
floating-point round-off) and add 1e-9 before the floor for the same reason.
"""

import math

from ..common.errors import DataError

PROFILES = ("exponential", "pareto")
_ROUND_OFF = 1e-9


def _check_positive_int(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise DataError(f"{name} must be a positive integer, got {value!r}.")


def resolve_min_count(max_count, min_count=None, imbalance_factor=None):
    """min_count from itself or from ``imbalance_factor = max_count / min_count`` (floored, at least 1)."""
    if min_count is not None and imbalance_factor is not None:
        raise DataError("give min_count or imbalance_factor, not both.")
    if imbalance_factor is None:
        return min_count
    if (
        not isinstance(imbalance_factor, (int, float))
        or isinstance(imbalance_factor, bool)
        or not math.isfinite(imbalance_factor)
        or not imbalance_factor >= 1
    ):
        raise DataError(f"imbalance_factor must be a finite number >= 1, got {imbalance_factor!r}.")
    return max(1, int(math.floor(max_count / imbalance_factor + _ROUND_OFF)))


def long_tail_counts(num_classes, max_count, min_count=None, profile="exponential", imbalance_factor=None):
    """Non-increasing per-class counts, first = max_count, last = min_count (see module docstring).

    Given ``imbalance_factor`` instead of ``min_count``, ``r = 1 / imbalance_factor``
    exactly (as LDAM's CIFAR-LT) and min_count = floor(max_count / imbalance_factor).
    """
    _check_positive_int("num_classes", num_classes)
    _check_positive_int("max_count", max_count)
    resolved_min = resolve_min_count(max_count, min_count, imbalance_factor)
    if resolved_min is None:
        raise DataError("give min_count or imbalance_factor for the long-tail profile.")
    _check_positive_int("min_count", resolved_min)
    if resolved_min > max_count:
        raise DataError(f"min_count ({resolved_min}) must not exceed max_count ({max_count}).")
    if profile not in PROFILES:
        raise DataError(f"profile must be one of {', '.join(PROFILES)}, got {profile!r}.")
    if num_classes == 1:
        return [max_count]
    ratio = 1.0 / imbalance_factor if imbalance_factor is not None else resolved_min / max_count
    if profile == "exponential":
        raw = [max_count * ratio ** (i / (num_classes - 1)) for i in range(num_classes)]
    else:
        exponent = math.log(1.0 / ratio) / math.log(num_classes)
        raw = [max_count * (i + 1) ** (-exponent) for i in range(num_classes)]
    counts = [int(math.floor(value + _ROUND_OFF)) for value in raw]
    counts[0], counts[-1] = max_count, resolved_min
    # Flooring a decreasing sequence keeps it non-increasing; clamp anyway so the pinned tail holds.
    return [max(resolved_min, min(max_count, count)) for count in counts]
