"""The cyclical schedule xi (CFL paper Eq. 8) and the published code's variant."""

import pytest

from losses.schedule import cyclical_xi, reference_xi


@pytest.mark.parametrize(
    "f, t, expected",
    [
        # f > 1: 1 at the start, 0 at t = 1/f, back to 1 at the end.
        (2, 0.0, 1.0),
        (2, 0.25, 0.5),
        (2, 0.5, 0.0),
        (2, 0.75, 0.5),
        (2, 1.0, 1.0),
        (4, 0.0, 1.0),
        (4, 0.125, 0.5),
        (4, 0.25, 0.0),
        (4, 0.625, 0.5),  # halfway up the rising branch: (4*0.625 - 1)/3
        (4, 1.0, 1.0),
        (4, 0.1, 0.6),
        (4, 0.5, 1.0 / 3.0),
        (4, 0.9, 2.6 / 3.0),
        # f = 1: 1 -> 0 over all of training, no rising branch.
        (1, 0.0, 1.0),
        (1, 0.5, 0.5),
        (1, 1.0, 0.0),
    ],
)
def test_cyclical_xi_corner_and_midpoint_values(f, t, expected):
    assert cyclical_xi(t, f) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("f", [1, 1.5, 2, 4, 10])
def test_cyclical_xi_stays_in_unit_interval(f):
    values = [cyclical_xi(i / 1000, f) for i in range(1001)]
    assert min(values) >= 0.0 and max(values) <= 1.0
    assert min(values) == pytest.approx(0.0, abs=1e-3)


def published_formula(e, E, f):
    """The published code's branches, typed out again as plain arithmetic."""
    if f * e < E:
        return 1 - f * e / (E - 1)
    if f == 1:
        return 0.0
    return (f * e / (E - 1) - 1) / (f - 1)


@pytest.mark.parametrize(
    "e, E, f, expected",
    [
        (1, 30, 4, 1 - 4 / 29),
        (7, 30, 4, 1 - 28 / 29),  # 28 < 30: still the falling branch
        (8, 30, 4, (32 / 29 - 1) / 3),  # 32 >= 30: rising branch
        (30, 30, 4, (120 / 29 - 1) / 3),  # slightly above 1 at the last epoch
        (60, 30, 4, (240 / 29 - 1) / 3),  # stage-2 configs: E = 30 while training 60 epochs
        (1, 30, 2, 1 - 2 / 29),
        (15, 30, 2, (30 / 29 - 1) / 1),
        (29, 30, 1, 1 - 29 / 29),
        (30, 30, 1, 0.0),
        (45, 30, 1, 0.0),
    ],
)
def test_reference_xi_matches_published_code(e, E, f, expected):
    assert reference_xi(e, E, f) == pytest.approx(expected, abs=1e-12)
    assert reference_xi(e, E, f) == pytest.approx(published_formula(e, E, f), abs=1e-12)


def test_reference_xi_leaves_unit_interval_when_training_longer_than_E():
    assert reference_xi(60, 30, 4) > 2.0
    assert reference_xi(60, 60, 4) > 1.0  # even with matching E the last epoch overshoots slightly


@pytest.mark.parametrize("bad", [0.5, 0, -1, float("nan"), float("inf"), "4", True])
def test_bad_cyclical_factor_is_named(bad):
    with pytest.raises(ValueError, match="cyclical_factor"):
        cyclical_xi(0.5, bad)
    with pytest.raises(ValueError, match="cyclical_factor"):
        reference_xi(1, 30, bad)


@pytest.mark.parametrize("bad", [-0.1, 1.1, float("nan"), "0.5", None])
def test_bad_progress_is_rejected(bad):
    with pytest.raises(ValueError, match="progress"):
        cyclical_xi(bad, 4)


def test_bad_epoch_arguments_are_named():
    with pytest.raises(ValueError, match="epoch"):
        reference_xi(0, 30, 4)
    with pytest.raises(ValueError, match="epochs"):
        reference_xi(1, 1, 4)
