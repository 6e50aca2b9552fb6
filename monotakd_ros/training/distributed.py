"""torchrun DDP plumbing: process group, device choice, resumable sharded sampler."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence, Sized
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler

from monotakd_ros.errors import ConfigError

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the job; rank 0 alone logs, validates and checkpoints."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """True on the process that writes logs and checkpoints."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        """True when more than one process takes part."""
        return self.world_size > 1


def resolve_device(preference: str, local_rank: int = 0) -> torch.device:
    """Device from ``auto|cpu|cuda``; ``cuda`` without a GPU is a config error."""
    if preference not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"device: expected auto|cpu|cuda, got {preference!r}")
    want_cuda = preference == "cuda" or (preference == "auto" and torch.cuda.is_available())
    if not want_cuda:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError("device: 'cuda' requested but torch sees no CUDA device")
    return torch.device("cuda", local_rank % torch.cuda.device_count())


def init_distributed(device_preference: str) -> DistContext:
    """Join the torchrun process group when WORLD_SIZE > 1 (nccl on CUDA, gloo on CPU)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_preference, local_rank)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
        LOG.info("joined %s process group: rank %d of %d on %s", backend, rank, world_size,
                 device)
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def shutdown_distributed() -> None:
    """Leave the process group if this process joined one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def mean_across_ranks(values: dict[str, float], ctx: DistContext) -> dict[str, float]:
    """Average scalar logs over all ranks (identity on a single process)."""
    if not ctx.is_distributed or not values:
        return values
    keys = sorted(values)
    packed = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=ctx.device)
    dist.all_reduce(packed, op=dist.ReduceOp.SUM)
    return {k: float(v) / ctx.world_size for k, v in zip(keys, packed.tolist(), strict=True)}


def gather_objects(obj: Any, ctx: DistContext) -> list[Any]:
    """Every rank's ``obj`` in rank order (a one-item list on a single process)."""
    if not ctx.is_distributed:
        return [obj]
    gathered: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def broadcast_from_main(obj: Any, ctx: DistContext) -> Any:
    """Rank 0's ``obj`` on every rank (identity on a single process)."""
    if not ctx.is_distributed:
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def barrier(ctx: DistContext) -> None:
    """Wait for every rank (no-op on a single process)."""
    if ctx.is_distributed:
        dist.barrier()


class ResumableDistributedSampler(DistributedSampler):
    """DistributedSampler that can start part-way through an epoch.

    The order of an epoch depends only on (seed, epoch), so skipping the first ``start_index``
    samples of this rank reproduces exactly what an uninterrupted run would have drawn next.
    ``repeats`` (one whole number per frame, ``training/repeat_factors.py``) lists frame ``i``
    ``repeats[i]`` times in every epoch; it yields frame indices either way.
    """

    def __init__(self, dataset: Sized, ctx: DistContext, seed: int, shuffle: bool = True,
                 repeats: Sequence[int] | None = None) -> None:
        self.rows: list[int] | None = None
        if repeats is not None:
            if len(repeats) != len(dataset) or min(repeats, default=1) < 0:
                raise ConfigError(f"repeats: need {len(dataset)} counts >= 0, got "
                                  f"{len(repeats)}")
            self.rows = [row for row, count in enumerate(repeats) for _ in range(int(count))]
            dataset = range(len(self.rows))
        super().__init__(dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=shuffle,
                         seed=seed, drop_last=True)
        self.start_index = 0

    def set_position(self, epoch: int, start_index: int) -> None:
        """Select the epoch and how many of this rank's samples it has already consumed."""
        self.set_epoch(epoch)
        self.start_index = start_index

    def __iter__(self) -> Iterator[int]:
        places = list(super().__iter__())[self.start_index:]
        return iter(places if self.rows is None else [self.rows[p] for p in places])

    def __len__(self) -> int:
        return max(0, self.num_samples - self.start_index)
