"""Cyclical focal loss (cfl) and cyclical asymmetric loss (casl), Smith 2022.

Both are members of the focal family (losses/focal_family.py has the formula): the
high-confidence term ``xi L_hc`` (CFL paper Eq. 2) blended with the low-confidence focal
or asymmetric term ``(1 - xi) L_lc`` (Eq. 9 / Eq. 10). What makes them cyclical is xi,
which follows Eq. 8 over training (losses/schedule.py).

Loss protocol hooks (losses/registry.py): ``set_progress(t)`` and ``xi``.
"""

import math
import warnings

from .checks import check_non_negative
from .focal_family import FocalFamilyLoss
from .registry import register_loss
from .schedule import check_cyclical_factor, check_progress, cyclical_xi, reference_xi

__all__ = ["CyclicalAsymmetricLoss", "CyclicalFocalLoss", "CyclicalSchedule", "SCHEDULES"]

SCHEDULES = ("paper", "reference")


class CyclicalSchedule:
    """Mixin: xi follows the cyclical schedule (CFL paper Eq. 8) driven by ``set_progress``."""

    def _init_schedule(self, cyclical_factor, schedule, epochs, num_epochs):
        self.cyclical_factor = check_cyclical_factor(cyclical_factor)
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
        self.schedule = schedule
        if schedule == "paper":
            if epochs is not None:
                raise ValueError(
                    f"epochs={epochs!r} is only used by schedule='reference'; the 'paper' schedule "
                    "follows the trainer's progress"
                )
            self.epochs = None
            self.num_epochs = num_epochs
        else:
            if num_epochs is None:
                raise ValueError(
                    "num_epochs is required with schedule='reference' (it maps progress to the epoch number)"
                )
            if not isinstance(num_epochs, int) or isinstance(num_epochs, bool) or num_epochs < 1:
                raise ValueError(f"num_epochs must be an integer >= 1, got {num_epochs!r}")
            epochs = num_epochs if epochs is None else epochs
            if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 2:
                raise ValueError(f"epochs (the loss-local epoch count) must be an integer >= 2, got {epochs!r}")
            self.epochs = epochs
            self.num_epochs = num_epochs
            if epochs != num_epochs:
                warnings.warn(
                    f"schedule='reference' with epochs={epochs} but num_epochs={num_epochs}: "
                    "like the published code, xi then leaves [0, 1] late in training",
                    UserWarning,
                    stacklevel=3,
                )
        self.progress = 0.0
        self.set_progress(0.0)

    def set_progress(self, t):
        """Set training progress t in [0, 1] (0-based epoch index / (num_epochs - 1), or per step)."""
        t = check_progress(t)
        if self.schedule == "paper":
            xi = cyclical_xi(t, self.cyclical_factor)
        else:
            # The published code uses 1-based epochs: progress t is the 0-based
            # epoch index (num_epochs - 1) t, rounded to the nearest epoch.
            epoch_index = int(math.floor(t * (self.num_epochs - 1) + 0.5))
            xi = reference_xi(epoch_index + 1, self.epochs, self.cyclical_factor)
        self.progress = t
        self._xi = xi

    @property
    def xi(self):
        """Current weight of the high-confidence term (1 before any ``set_progress``)."""
        return self._xi

    def _describe_schedule(self):
        described = {"cyclical_factor": self.cyclical_factor, "schedule": self.schedule}
        if self.schedule == "reference":
            described.update(epochs=self.epochs, num_epochs=self.num_epochs)
        described["xi"] = self._xi
        return described


@register_loss("cfl")
class CyclicalFocalLoss(CyclicalSchedule, FocalFamilyLoss):
    """Cyclical focal loss (Smith 2022, CFL paper Eq. 9): xi L_hc + (1 - xi) L_lc.

    L_lc is the focal loss with ``gamma`` (Eq. 1/5), L_hc weights the target by
    (1 + p_y)^gamma_hc (Eq. 2), xi follows Eq. 8 with cyclical_factor f.
    ``schedule="reference"`` replays the published code's xi (see
    losses/schedule.py:reference_xi) with a loss-local ``epochs`` (default
    ``num_epochs``).
    """

    def __init__(
        self,
        gamma=2.0,
        gamma_hc=2.0,
        cyclical_factor=4.0,
        label_smoothing=0.0,
        schedule="paper",
        epochs=None,
        num_epochs=None,
        reduction="mean",
    ):
        gamma = check_non_negative("gamma", gamma)
        super().__init__(gamma, gamma, check_non_negative("gamma_hc", gamma_hc), label_smoothing, reduction)
        self.gamma = gamma
        self._init_schedule(cyclical_factor, schedule, epochs, num_epochs)

    def _describe(self):
        return {
            "gamma": self.gamma,
            "gamma_hc": self.gamma_hc,
            **self._describe_schedule(),
            **super()._describe(),
        }


@register_loss("casl")
class CyclicalAsymmetricLoss(CyclicalSchedule, FocalFamilyLoss):
    """Cyclical asymmetric loss (Smith 2022, CFL paper Eq. 10): xi L_hc + (1 - xi)(L+ + L-).

    L+ and L- are the asymmetric loss terms (Eq. 7) with gamma_pos, gamma_neg;
    L_hc and xi as in ``cfl``.
    """

    def __init__(
        self,
        gamma_pos=0.0,
        gamma_neg=4.0,
        gamma_hc=2.0,
        cyclical_factor=4.0,
        label_smoothing=0.0,
        schedule="paper",
        epochs=None,
        num_epochs=None,
        reduction="mean",
    ):
        super().__init__(
            check_non_negative("gamma_pos", gamma_pos),
            check_non_negative("gamma_neg", gamma_neg),
            check_non_negative("gamma_hc", gamma_hc),
            label_smoothing,
            reduction,
        )
        self._init_schedule(cyclical_factor, schedule, epochs, num_epochs)

    def _describe(self):
        return {
            "gamma_pos": self.gamma_pos,
            "gamma_neg": self.gamma_neg,
            "gamma_hc": self.gamma_hc,
            **self._describe_schedule(),
            **super()._describe(),
        }
