"""Process-group set-up and collectives, carried in an object rather than globals.

Launch with ``torchrun --nproc_per_node N main.py --config ...``: torchrun sets
RANK, WORLD_SIZE and LOCAL_RANK, and we pick NCCL on GPUs and gloo on CPUs.
"""

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..common.errors import ConfigError


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self):
        return self.rank == 0

    @property
    def distributed(self):
        return self.world_size > 1


def init_distributed(device=None):
    """A DistContext for this process; joins the process group when launched by torchrun.

    On CUDA each process takes the GPU of its ``LOCAL_RANK``: ``cuda`` (or no device) becomes
    ``cuda:LOCAL_RANK``, and an explicit index with several processes is refused, since it would
    put every rank on that one GPU.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device, world_size, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def resolve_device(device, world_size=1, local_rank=0):
    """The torch.device of this process: CUDA devices always carry an index (``set_device`` needs one)."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type != "cuda":
        return device
    if device.index is not None and world_size > 1:
        raise ConfigError(
            f"--device {device} under torchrun ({world_size} processes) would put every rank on GPU "
            f"{device.index}; pass --device cuda and each rank takes cuda:LOCAL_RANK (CUDA_VISIBLE_DEVICES picks GPUs)"
        )
    return torch.device("cuda", local_rank if device.index is None else device.index)


def shutdown_distributed(ctx):
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx):
    if ctx.distributed:
        dist.barrier()


def all_reduce_mean_(tensor, ctx):
    """Average ``tensor`` over ranks, in place."""
    if ctx.distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        tensor /= ctx.world_size
    return tensor


def all_reduce_sum_(tensor, ctx):
    if ctx.distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def broadcast_buffers_(module, ctx, src=0):
    """Copy rank ``src``'s buffers (BatchNorm running statistics) to every rank, in place.

    DDP broadcasts buffers at the start of each forward, so after the last
    training step every rank holds statistics updated by its own batch; this
    makes evaluation use the weights rank 0 will save.
    """
    if ctx.distributed:
        for buffer in module.buffers():
            dist.broadcast(buffer, src)
    return module


def gather_rows(tensor, ctx):
    """Concatenate every rank's rows (sizes may differ, a rank may have none) on every rank.

    A rank with no rows may pass any empty tensor of the right dtype: the
    trailing shape is taken from the ranks that have rows.
    """
    if not ctx.distributed:
        return tensor
    shapes = [None] * ctx.world_size
    dist.all_gather_object(shapes, tuple(tensor.shape))
    rows = [shape[0] if shape and shape[0] else 0 for shape in shapes]
    trailing = next((shape[1:] for shape, count in zip(shapes, rows) if count), tuple(tensor.shape[1:]))
    longest = max(max(rows), 1)
    padded = torch.zeros((longest, *trailing), dtype=tensor.dtype, device=tensor.device)
    if rows[ctx.rank]:
        padded[: rows[ctx.rank]] = tensor
    gathered = [torch.zeros_like(padded) for _ in range(ctx.world_size)]
    dist.all_gather(gathered, padded)
    return torch.cat([part[:count] for part, count in zip(gathered, rows)])
