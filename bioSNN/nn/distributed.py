"""Data-parallel training through ``torch.distributed`` — nothing home-made.

Launched with ``torchrun --nproc_per_node N ...``, every process trains a replica wrapped in
``DistributedDataParallel`` (gradients all-reduced each step, so the replicas stay identical) on its own shard
of each epoch (:func:`bioSNN.nn.train.batches`). The backend is gloo on CPU and NCCL on CUDA. Without torchrun
(no ``WORLD_SIZE`` in the environment, or 1) everything here is a no-op and training runs in one process.
"""

from __future__ import annotations

import datetime as _dt
import os

import torch
import torch.distributed as tdist

__all__ = ["setup", "rank_world", "is_main", "wrap", "barrier", "teardown"]


def setup(timeout_hours: float = 6.0) -> tuple[int, int]:
    """Join the process group that torchrun describes (idempotent); returns ``(rank, world_size)``.

    The long timeout lets rank 0 evaluate or convert while the others wait at the next collective.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not tdist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        tdist.init_process_group(backend, timeout=_dt.timedelta(hours=timeout_hours))
    return rank_world()


def rank_world() -> tuple[int, int]:
    if tdist.is_available() and tdist.is_initialized():
        return tdist.get_rank(), tdist.get_world_size()
    return 0, 1


def is_main() -> bool:
    return rank_world()[0] == 0


def wrap(module: torch.nn.Module) -> torch.nn.Module:
    """``DistributedDataParallel(module)`` inside a process group, else the module itself."""
    if rank_world()[1] == 1:
        return module
    return torch.nn.parallel.DistributedDataParallel(module)


def barrier() -> None:
    if rank_world()[1] > 1:
        tdist.barrier()


def teardown() -> None:
    """Leave the process group (a no-op outside one). A process that exits while gloo's threads still run can
    abort in its C++ runtime ("terminate called without an active exception"); leave before exiting."""
    if tdist.is_available() and tdist.is_initialized():
        tdist.destroy_process_group()
