"""Long-tail count profiles: endpoints, monotonicity, the exponential formula, the Pareto exponent."""

import math

import pytest

from oltr.common.errors import DataError
from oltr.data.profiles import long_tail_counts


def test_cifar10_lt_imbalance_100_matches_the_published_counts():
    # CIFAR-10-LT, imbalance factor 100 (Cao et al. 2019, LDAM; Cui et al. 2019): known per-class counts.
    expected = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    assert long_tail_counts(10, 5000, 50, "exponential") == expected
    assert long_tail_counts(10, 5000, imbalance_factor=100) == expected


@pytest.mark.parametrize("num_classes, max_count, min_count", [(8, 140, 5), (100, 500, 5), (37, 1000, 3), (2, 9, 4)])
def test_exponential_formula_exactly(num_classes, max_count, min_count):
    counts = long_tail_counts(num_classes, max_count, min_count, "exponential")
    for i, count in enumerate(counts[1:-1], start=1):
        value = max_count * (min_count / max_count) ** (i / (num_classes - 1))
        assert count == math.floor(value + 1e-9)


@pytest.mark.parametrize("profile", ["exponential", "pareto"])
@pytest.mark.parametrize("num_classes, max_count, min_count", [(1000, 1280, 5), (365, 4980, 5), (8, 140, 5), (3, 5, 5)])
def test_endpoints_and_monotone(profile, num_classes, max_count, min_count):
    counts = long_tail_counts(num_classes, max_count, min_count, profile)
    assert len(counts) == num_classes
    assert counts[0] == max_count and counts[-1] == min_count
    assert all(a >= b for a, b in zip(counts, counts[1:]))


def test_imbalance_factor_uses_its_exact_ratio():
    # 27 * 0.1 ** (i / 7) = 27, 19.43, 13.98, 10.07, 7.24, 5.21, 3.75, 2.7 (not the ratio 2/27 of the floored tail)
    assert long_tail_counts(8, 27, imbalance_factor=10) == [27, 19, 13, 10, 7, 5, 3, 2]
    assert long_tail_counts(8, 27, 2) == [27, 18, 12, 8, 6, 4, 2, 2]


def test_pareto_is_a_power_law_hitting_the_tail():
    counts = long_tail_counts(10, 1000, 10, "pareto")
    exponent = math.log(100) / math.log(10)  # = 2: n_i = 1000 / (i + 1)^2
    assert exponent == pytest.approx(2.0)
    assert counts == [1000, 250, 111, 62, 40, 27, 20, 15, 12, 10]


def test_pareto_is_heavier_headed_than_exponential():
    pareto = long_tail_counts(100, 1000, 5, "pareto")
    exponential = long_tail_counts(100, 1000, 5, "exponential")
    assert sum(pareto) < sum(exponential)  # most classes sit near the tail


def test_single_class():
    assert long_tail_counts(1, 30, 30) == [30]


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(num_classes=0, max_count=10, min_count=1), "num_classes"),
        (dict(num_classes=3, max_count=10, min_count=11), "must not exceed"),
        (dict(num_classes=3, max_count=10, min_count=1, profile="zipf"), "profile must be one of"),
        (dict(num_classes=3, max_count=10), "min_count or imbalance_factor"),
        (dict(num_classes=3, max_count=10, min_count=1, imbalance_factor=10), "not both"),
        (dict(num_classes=3, max_count=10, imbalance_factor=0.5), "imbalance_factor must be"),
    ],
)
def test_bad_arguments(kwargs, fragment):
    with pytest.raises(DataError, match=fragment):
        long_tail_counts(**kwargs)
