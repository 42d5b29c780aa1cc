"""The trainer's training-progress value and how it reaches the losses."""

import pytest
import torch

from oltr.engine.optim import Criterion
from oltr.runs.trainer import epoch_seed, set_progress, training_progress


def test_epoch_progress_runs_from_zero_to_one():
    values = [training_progress(e, 5) for e in range(5)]
    assert values == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert training_progress(0, 1) == 0.0  # a one-epoch run never divides by zero


def test_step_progress_covers_every_step():
    values = [training_progress(e, 2, s, 3, "step") for e in range(2) for s in range(3)]
    assert values == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])


class Follows(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.t = None

    def set_progress(self, t):
        self.t = t


def test_set_progress_reaches_every_loss_that_has_it():
    a, b, plain = Follows(), Follows(), torch.nn.CrossEntropyLoss()
    set_progress(
        {"PerformanceLoss": Criterion(a, 1.0), "Other": Criterion(plain, 1.0), "FeatureLoss": Criterion(b, 0.01)}, 0.5
    )
    assert a.t == 0.5 and b.t == 0.5


def test_epoch_seeds_differ_per_epoch_and_seed():
    seeds = {epoch_seed(s, e) for s in range(3) for e in range(50)}
    assert len(seeds) == 150
