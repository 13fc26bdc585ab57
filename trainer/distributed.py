"""Multi-process training (torchrun): process group set-up and an all-gather that carries gradients.

Every loss term is computed identically on every rank from tensors gathered across ranks. The gather's
backward sums the incoming gradients over ranks and returns this rank's slice, so a rank's own tensors
receive world_size x their true gradient; DistributedDataParallel then averages parameter gradients over
ranks, which gives exactly the gradient of the single-process loss on the global batch.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    group: object | None = None  # process group of the feature gathers (apart from DDP's own reductions)

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_world(device_type: str) -> World:
    """A World from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK), or a single process."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo", timeout=timedelta(minutes=30))
    # A separate group keeps the gathers' collectives apart from the DDP reducer's bucket all-reduces.
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), dist.new_group())


def shutdown(world: World) -> None:
    if world.size > 1 and dist.is_initialized():
        dist.destroy_process_group()


class _GatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, group) -> torch.Tensor:
        ctx.group = group
        ctx.rank, ctx.size = dist.get_rank(group), dist.get_world_size(group)
        parts = [torch.empty_like(x) for _ in range(ctx.size)]
        dist.all_gather(parts, x.contiguous(), group=group)
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, group=ctx.group)
        n = grad.shape[0] // ctx.size
        return grad[ctx.rank * n:(ctx.rank + 1) * n], None


def gather(x: torch.Tensor, world: World) -> torch.Tensor:
    """Concatenation over ranks along dim 0 (equal sizes per rank), differentiable; identity for one process."""
    if world.size == 1:
        return x
    if x.dtype == torch.bool:  # gloo has no bool collectives
        return gather(x.to(torch.uint8), world).bool()
    if not x.requires_grad:
        parts = [torch.empty_like(x) for _ in range(world.size)]
        dist.all_gather(parts, x.contiguous(), group=world.group)
        return torch.cat(parts)
    return _GatherWithGrad.apply(x, world.group)
