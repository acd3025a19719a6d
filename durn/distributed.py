"""Process-group helpers for ``torchrun`` (single- or multi-node).

Without torchrun's environment (``WORLD_SIZE`` unset or 1) everything here degrades to
a single process: rank 0 of 1, no collectives.
"""
from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def from_env() -> Dist:
    """This process's place as torchrun's environment gives it (``RANK``, ``WORLD_SIZE``,
    ``LOCAL_RANK``), without joining a process group; ``Dist()`` without torchrun."""
    if not launched_by_torchrun():
        return Dist()
    return Dist(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", "0")))


def init(device_kind: str, timeout: timedelta | None = None) -> Dist:
    """Join the process group torchrun set up: NCCL for CUDA, gloo for CPU. ``timeout``:
    how long a collective waits for the other processes (None: torch's default)."""
    if not launched_by_torchrun():
        return Dist()
    rank = int(os.environ["RANK"])
    world = int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        if device_kind == "cuda":
            torch.cuda.set_device(local)
        init_process_group(device_kind, timeout)
    return Dist(rank, world, local)


def init_process_group(device_kind: str, timeout: timedelta | None = None) -> None:
    """NCCL for CUDA, gloo otherwise; pair with :func:`shutdown`."""
    # Modules imported after init_process_group can capture the group for good:
    # torch.distributed.nn has functions defaulting to ``group=group.WORLD``, and
    # DistributedDataParallel imports it. A group kept alive that way survives
    # destroy_process_group, and gloo's threads then abort the process at exit.
    import torch.distributed.nn  # noqa: F401

    backend = "nccl" if device_kind == "cuda" else "gloo"
    if timeout is None:
        dist.init_process_group(backend=backend)
    else:
        dist.init_process_group(backend=backend, timeout=timeout)


def shutdown(d: Dist | None = None) -> None:
    if (d is None or d.enabled) and dist.is_initialized():
        gc.collect()  # modules in reference cycles may still hold the group
        dist.destroy_process_group()


def barrier(d: Dist) -> None:
    if d.enabled:
        dist.barrier()


def broadcast_object(d: Dist, obj):
    """Rank 0's ``obj`` on every rank."""
    if not d.enabled:
        return obj
    box = [obj if d.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def run_on_main(d: Dist, fn):
    """Run ``fn()`` on rank 0 only and give every rank its result, or raise its exception
    on every rank (so a user error found by rank 0 stops all processes cleanly)."""
    result, error = None, None
    if d.is_main:
        try:
            result = fn()
        except Exception as err:  # re-raised below, on every rank
            error = err
    result, error = broadcast_object(d, (result, error))
    if error is not None:
        raise error
    return result


def any_flag(d: Dist, flag: bool, device: torch.device) -> bool:
    """True on every rank if ``flag`` is True on any rank."""
    if not d.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def all_sum(d: Dist, t: torch.Tensor) -> torch.Tensor:
    if d.enabled:
        t = t.clone()
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t
