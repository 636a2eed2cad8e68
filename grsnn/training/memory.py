"""How many circuits (queries) to run in one pass, from the graph size and a memory budget.

Every query of a batch is a column block of the node-level state (``[N, B * D]`` spikes,
currents, membranes, traces). Two things bound how many queries should share one pass:

* **CPU allocator behaviour** (training and evaluation). glibc serves blocks above 32 MiB
  (its largest ``mmap`` threshold) with fresh ``mmap`` calls, and every page of a fresh
  block faults on first touch; below that size freed blocks are reused from the heap. The
  engine's node-level temporaries are one such block per elementwise operation, so a
  pass whose ``[N, B * D]`` tensors exceed 32 MiB spends most of its time in page faults:
  on GraIL WN18RR_v3 (12,078 nodes) a batch of 32 queries takes 8.1 s as one pass and
  4.4 s as two passes of 16 (``benchmarks/scaling.py``). On CPU the default therefore keeps
  one node-level tensor within :data:`NODE_TENSOR_BUDGET`. Results do not depend on it
  (a micro-batch's loss is weighted by its share of the batch; evaluation scores queries
  independently).
* **A memory budget** (evaluation, ``task.eval_memory_mb``): the number of queries per pass
  is chosen so that the estimated working memory of a pass (:func:`eval_bytes_per_query`)
  stays within the budget. The graph, its plan and the filter index come on top; one query
  per pass is the floor.
"""
from __future__ import annotations

import ctypes
import ctypes.util
from typing import Optional

import torch

_LIBC = None


_BASELINE: Optional[int] = 0   # resident bytes one pass after the last trim (None: unset)


def _resident_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096
    except (OSError, ValueError, IndexError):
        return 0


def _libc():
    global _LIBC
    if _LIBC is None:
        name = ctypes.util.find_library("c")
        try:
            _LIBC = ctypes.CDLL(name) if name else False
            if _LIBC and not (hasattr(_LIBC, "malloc_trim") and hasattr(_LIBC, "mallopt")):
                _LIBC = False
        except OSError:
            _LIBC = False
    return _LIBC


_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4    # glibc mallopt parameters (malloc.h)


def keep_freed_memory() -> bool:
    """Serve every block from glibc's heap and keep freed pages for reuse (CPU runs).

    By default glibc maps blocks above its ``mmap`` threshold (at most 32 MiB) afresh and
    returns freed heap tops above 128 KiB to the OS; either way the next block of that size
    faults in page by page. A training step allocates and frees node-level tensors of the
    same sizes over and over, so ``grsnn train`` / ``eval`` set ``M_MMAP_MAX = 0`` (no
    ``mmap`` blocks) and ``M_TRIM_THRESHOLD = 2 GiB`` once at start:
    ``python benchmarks/profile_batch.py`` on WN18RR_v1 (1 thread) measured a training
    batch 1.33x faster (1.41 s against 1.87 s). Resident memory is then kept near live
    memory by :func:`release_free_memory`. Process-wide; returns whether it applied
    (Linux with glibc only).
    """
    libc = _libc()
    if not libc:
        return False
    return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD,
                                                                     (1 << 31) - 1))


def release_free_memory(force: bool = False) -> bool:
    """Give the allocator's free pages back to the OS (glibc ``malloc_trim``) once the
    resident memory has grown to twice the working set (plus 256 MiB). Call it between
    passes (after a training batch, after an evaluation pass).

    The passes of a long run free and allocate blocks of many sizes; glibc keeps freed heap
    pages, and resident memory creeps far above what is in use (a full FB15k-237 test
    evaluation reached 12 GB after 27 minutes without this). The working set is the
    resident memory at the first call after a trim, when one pass has faulted its pages
    back in; measured right after the trim, the bar would lie below one pass's own
    temporaries, and every batch would trim and re-fault all its pages (Cora link
    prediction: 271 ``madvise`` calls in 12 s of training). Returns
    whether a trim ran (Linux with glibc only; elsewhere nothing).
    """
    global _BASELINE
    libc = _libc()
    if not libc:
        return False
    resident = _resident_bytes()
    if not force:
        if _BASELINE is None:           # first call after a trim: the working set
            _BASELINE = resident
            return False
        if resident < 2 * _BASELINE + (256 << 20):
            return False
    libc.malloc_trim(0)
    _BASELINE = None
    return True


NODE_TENSOR_BUDGET = 24 << 20   # bytes of one [N, B * D] float tensor on CPU (< 32 MiB)

# Live bytes per query of a no-grad evaluation pass, per node and channel (the K + 1 spike
# frames, current, membrane, injected current, readout and bit history in float32, the
# scorer's float64 features, hidden layer and activations) and per (source, relation) pair
# and channel (the delayed-message buffers: bits, delays, float messages, weights).
# Calibrated with ``python benchmarks/eval_memory.py`` (GraIL WN18RR_v3 test graph: 20.6 MiB
# measured per extra query against 22.5 MiB estimated).
EVAL_BYTES_PER_NODE_CHANNEL = 128
EVAL_BYTES_PER_PAIR_CHANNEL = 10


def eval_bytes_per_query(num_nodes: int, channels: int, num_pairs: int = 0) -> int:
    """Estimated live bytes one query adds to an evaluation pass.

    Example:
        >>> eval_bytes_per_query(1000, 32, 2000) // 1024   # KiB
        4625
    """
    return channels * (num_nodes * EVAL_BYTES_PER_NODE_CHANNEL
                       + num_pairs * EVAL_BYTES_PER_PAIR_CHANNEL)


def queries_per_pass(num_nodes: int, channels: int, device: torch.device | str,
                     requested: Optional[int] = None, memory_mb: Optional[float] = None,
                     itemsize: int = 4, num_pairs: int = 0) -> Optional[int]:
    """Queries per circuit pass, or ``None`` for "no limit".

    Args:
        num_nodes, channels: ``N`` and ``D`` of the circuit.
        device: where it runs (the allocator rule applies on CPU only).
        requested: an explicit number (``train.micro_batch``); wins over the rules.
        memory_mb: evaluation memory budget in MiB (``task.eval_memory_mb``).
        itemsize: bytes per element of the node state.
        num_pairs: ``(source, relation)`` pairs of the graph (for the memory budget).

    Example:
        >>> queries_per_pass(12078, 32, "cpu")      # 24 MiB / (12078 * 32 * 4 B)
        16
        >>> queries_per_pass(1000, 32, "cuda") is None
        True
    """
    if requested:
        return int(requested)
    per_query = max(1, num_nodes * channels)
    limit = None
    if torch.device(device).type == "cpu":
        limit = max(1, NODE_TENSOR_BUDGET // (per_query * itemsize))
    if memory_mb:
        budget = int(memory_mb * (1 << 20)) // eval_bytes_per_query(num_nodes, channels,
                                                                     num_pairs)
        limit = max(1, budget if limit is None else min(limit, budget))
    return limit
