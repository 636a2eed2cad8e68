"""Training and evaluation over several processes with ``torch.distributed`` (``torchrun``).

How the work is split (the same results as one process, up to float rounding):

* **Training.** Every rank draws the same batch (same seed, same negatives, same graph
  without the batch's easy edges) and takes a contiguous share of its rows; a row's loss
  is weighted by its share of the *global* batch, and the gradients are summed over the
  ranks with one all-reduce per optimizer step (the bucketed all-reduce that
  ``DistributedDataParallel`` does, done by hand because each rank may run a different
  number of micro-batches, or none, per step). Every rank then applies the same Adam step,
  so the replicas stay identical, and the effective batch is ``train.batch_size`` whatever
  the number of processes.
* **Evaluation.** The unique queries (pairs for link prediction) are split into
  contiguous shards; every rank scores its shard and the per-query ranks (scores) are
  gathered in rank order, which is the single-process order, before the metrics are taken.
* **Files.** Only rank 0 writes the run directory; every rank reads ``last.pt`` on resume
  (the run directory must be on a file system all nodes share).

Backends: ``gloo`` on CPU, ``nccl`` on CUDA (one GPU per process, ``LOCAL_RANK``).
Without ``torchrun`` (``WORLD_SIZE`` unset or 1) every helper here is the identity.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Iterable, List, Optional, Tuple

import torch
import torch.distributed as dist
from torch import Tensor

from .config import ConfigError

__all__ = ["init_from_env", "is_distributed", "rank", "world_size", "is_main", "shard",
           "all_reduce_gradients", "all_reduce_sum", "gather_cat", "barrier", "cleanup",
           "device_for", "to_device", "set_deterministic", "on_main"]


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """Rank 0 (or a single process): the one that writes files and prints."""
    return rank() == 0


def device_for(requested: str) -> torch.device:
    """``train.device`` (``auto``, ``cpu``, ``cuda``, ``cuda:1``...) for this process;
    under ``torchrun`` a CUDA device is the process's ``LOCAL_RANK`` GPU."""
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(requested)
    except (RuntimeError, TypeError):
        raise ConfigError(f"train.device: {requested!r} is not a device (auto, cpu, cuda, "
                          f"cuda:N)") from None
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"train.device: {requested!r}: only cpu and cuda are supported")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"train.device: {requested!r} but no CUDA device is available")
        if device.index is None:
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def init_from_env(device: torch.device) -> bool:
    """Join the process group ``torchrun`` describes (``WORLD_SIZE`` > 1); returns whether
    this is a distributed run."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return True


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def shard(n: int, group: int = 1) -> Tuple[int, int]:
    """This rank's contiguous share ``[lo, hi)`` of ``n`` items, cut at multiples of
    ``group`` (items that must stay together).

    Example:
        >>> shard(10)        # one process: everything
        (0, 10)
    """
    world, me = world_size(), rank()
    groups = -(-n // group)
    per, extra = divmod(groups, world)
    lo = me * per + min(me, extra)
    hi = lo + per + (1 if me < extra else 0)
    return min(n, lo * group), min(n, hi * group)


def all_reduce_gradients(params: Iterable[torch.nn.Parameter]) -> None:
    """Sum the gradients of ``params`` over all ranks (missing gradients count as zero)."""
    if not is_distributed():
        return
    params = [p for p in params if p.requires_grad]
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                      for p in params])
    dist.all_reduce(flat)
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset:offset + n].view_as(p).clone()
        offset += n


def all_reduce_sum(value: float, device: torch.device) -> float:
    """Sum of a Python number over the ranks."""
    if not is_distributed():
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item())


def gather_cat(tensors: List[Tensor]) -> Tensor:
    """Concatenate ``tensors`` of every rank, in rank order (on CPU)."""
    local = torch.cat([t.cpu() for t in tensors]) if tensors else torch.zeros(0)
    if not is_distributed():
        return local
    parts: List[Tensor] = [None] * world_size()  # type: ignore[list-item]
    dist.all_gather_object(parts, local)
    return torch.cat([p for p in parts if p.numel()] or [local])


def to_device(data, device: torch.device):
    """``data`` (a PyG ``Data``) on ``device``; a shallow copy when it has to move, so the
    task's own graph is never changed in place."""
    if data.edge_index.device == device:
        return data
    import copy
    return copy.copy(data).to(device)


def set_deterministic(enabled: bool) -> None:
    """``train.deterministic``: deterministic kernels only.

    On CPU the engine is deterministic already (the same seed gives bit-identical runs).
    On CUDA, atomics make ``index_add_`` and friends vary in their last bits from run to
    run; this switches PyTorch to its deterministic implementations
    (``torch.use_deterministic_algorithms``), fixes the cuBLAS workspace
    (``CUBLAS_WORKSPACE_CONFIG``, read when cuBLAS starts) and turns off cuDNN autotuning.
    Any operation without a deterministic implementation then raises instead of varying.
    """
    if not enabled:
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False


def on_main(fn: Callable[[], Any]) -> None:
    """Run ``fn()`` on rank 0 only; an exception there is raised on every rank (with the
    same type and message), so no rank waits forever for a rank that has stopped."""
    error: Optional[Exception] = None
    if is_main():
        try:
            fn()
        except Exception as err:            # re-raised below, on every rank
            error = err
    if is_distributed():
        box = [None if error is None else (type(error), str(error))]
        dist.broadcast_object_list(box, src=0)
        if box[0] is not None and error is None:
            kind, message = box[0]
            try:
                other: Exception = kind(message)
            except Exception:                 # an exception type with another signature
                other = RuntimeError(message)
            raise other
    if error is not None:
        raise error
