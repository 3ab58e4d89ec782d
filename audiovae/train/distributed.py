"""torchrun / DistributedDataParallel plumbing. One process per device; rank 0 alone logs, checkpoints and draws
progress bars. Without torchrun's environment every helper here degrades to a single process."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device_kind: str) -> DistInfo:
    """Join the process group torchrun describes; a no-op without torchrun.

    CPU runs use gloo. GPU runs use nccl for CUDA tensors and gloo for CPU tensors, so the small CPU-side
    agreements (:func:`all_reduce_max`, weight checksums) work beside the gradient all-reduce.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group(backend="cpu:gloo,cuda:nccl" if device_kind == "cuda" else "gloo")
    return DistInfo(rank=dist.get_rank(), local_rank=int(os.environ.get("LOCAL_RANK", "0")), world_size=world)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def all_reduce_mean(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        value = value.clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        value /= info.world_size
    return value


def all_reduce_max(values: list[float], info: DistInfo) -> list[float]:
    """The element-wise maximum of ``values`` over all ranks, in one collective on a CPU float64 tensor.

    Every rank must call it at the same point with a list of the same length; they all get the same answer.
    This is how ranks agree on decisions one of them may take alone (a 0/1 flag: "any rank says yes") and on a
    clock (the largest reading of all ranks). In a single process it returns ``values`` unchanged, at no cost.
    """
    if not info.enabled:
        return [float(v) for v in values]
    tensor = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return tensor.tolist()


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
