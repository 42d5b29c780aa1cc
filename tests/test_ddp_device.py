"""The device each process takes under torchrun, by emulation (no GPU needed): the environment torchrun
sets, CUDA's availability and the process-group calls are monkeypatched, and what reaches them is recorded."""

import pytest
import torch
import torch.distributed as dist
from conftest import one_line_error

from oltr.cli import main
from oltr.common.errors import ConfigError
from oltr.engine import distributed


@pytest.fixture
def torchrun_env(monkeypatch):
    """Rank 1 of 2 on a two-GPU node; returns the calls set_device and init_process_group received."""
    calls = {"set_device": [], "init": []}
    for name, value in (("WORLD_SIZE", "2"), ("RANK", "1"), ("LOCAL_RANK", "1")):
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: calls["set_device"].append(torch.device(device)))
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda backend: calls["init"].append(backend))
    return calls


@pytest.mark.parametrize("device", ["cuda", None])
def test_cuda_under_torchrun_is_the_local_rank_gpu(torchrun_env, device):
    ctx = distributed.init_distributed(device)
    assert ctx.device == torch.device("cuda", 1) and (ctx.rank, ctx.world_size, ctx.local_rank) == (1, 2, 1)
    assert torchrun_env == {"set_device": [torch.device("cuda", 1)], "init": ["nccl"]}


def test_an_explicit_gpu_under_torchrun_is_refused_before_joining(torchrun_env):
    with pytest.raises(ConfigError) as error:
        distributed.init_distributed("cuda:0")
    message = str(error.value)
    assert "\n" not in message and "cuda:0" in message and "--device cuda" in message
    assert torchrun_env == {"set_device": [], "init": []}  # nothing joined, no GPU claimed


def test_cpu_under_torchrun_uses_gloo(torchrun_env):
    ctx = distributed.init_distributed("cpu")
    assert ctx.device == torch.device("cpu") and torchrun_env == {"set_device": [], "init": ["gloo"]}


@pytest.mark.parametrize(("asked", "expected"), [("cuda", "cuda:0"), ("cuda:1", "cuda:1"), ("cpu", "cpu")])
def test_one_process_keeps_its_device_with_an_index(monkeypatch, asked, expected):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert distributed.init_distributed(asked).device == torch.device(expected)


def test_the_cli_refuses_it_in_one_line(torchrun_env, monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    argv = [
        "--config",
        "config/Digits_LT/stage_1.py",
        "--device",
        "cuda:0",
        "--opts",
        f"training_opt.log_dir={tmp_path}/run",
    ]
    one_line_error(main(argv), capsys.readouterr().err, "cuda:0", "--device cuda")
    assert torchrun_env == {"set_device": [], "init": []} and not (tmp_path / "run").exists()
