"""``training_opt.num_workers: auto``: the usable cores minus 2 on CUDA, min(4, cores) elsewhere; numbers as given."""

import os

import pytest

from oltr.common.errors import ConfigError
from oltr.config.schema import load_config
from oltr.data.loaders import resolve_num_workers

STAGE_1 = "config/Digits_LT/stage_1.py"


@pytest.mark.parametrize(
    ("cores", "device", "expected"),
    [(16, "cuda", 14), (16, "cuda:1", 14), (2, "cuda", 1), (16, "cpu", 4), (2, "cpu", 2)],
)
def test_auto_follows_the_usable_cores(monkeypatch, cores, device, expected):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    assert resolve_num_workers("auto", device) == expected
    assert resolve_num_workers(3, device) == 3


def test_the_config_takes_auto_or_a_number_and_names_anything_else():
    assert load_config(STAGE_1, ["training_opt.num_workers=auto"])["training_opt"]["num_workers"] == "auto"
    assert load_config(STAGE_1, ["training_opt.num_workers=0"])["training_opt"]["num_workers"] == 0
    for bad in ("many", "-1"):
        with pytest.raises(ConfigError, match="num_workers must be an integer >= 0 or 'auto'"):
            load_config(STAGE_1, [f"training_opt.num_workers={bad}"])
