"""glibc malloc settings for forward passes: keep large activations on the heap.

Why: glibc serves every allocation above its mmap threshold (128 KiB, raised dynamically to at most
32 MiB) with a fresh mmap and returns it with munmap on free, and it trims the heap top back to the
system after frees. A forward pass allocates and frees activations of tens to hundreds of MB per
layer (a 32 x 512 batch through Qwen3-0.6B: 50 MB per MLP projection), so every layer paid page
faults for memory it had just given back. On this project's 2-core machine that was about a third
of the time of a Qwen3-0.6B bfloat16 benchmark (47 s in the kernel in an 84 s run), and the share grows
with batch size; raising both thresholds to 1 GiB and keeping one arena made the same batch run
at about twice the tokens/s (docs/performance.md, "Allocator"). PyTorch's CPU tuning guide
reaches the same end by preloading jemalloc or tcmalloc; `mallopt` gets it in-process, with
nothing to install. The cost: up to 1 GiB of freed heap may stay mapped to the process, so
resident memory stays near the largest batch's peak instead of falling back between batches.

One arena (M_ARENA_MAX=1): glibc gives threads their own arenas, and a non-main arena is made of
64 MiB heaps that cannot hold a larger block, so the server's model thread would fall back to
mmap anyway. Python holds the GIL and torch's worker threads rarely allocate, so one arena costs
no measurable contention.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
#: Allocations up to this size come from the heap, and this much freed heap top stays mapped.
HEAP_BYTES = 1 << 30

_applied: bool | None = None


def keep_activations_on_heap() -> bool:
    """Apply the settings above once per process; False where the C library is not glibc."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018 - present in glibc only (musl has no mallopt options)
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    results = [
        mallopt(M_MMAP_THRESHOLD, HEAP_BYTES),
        mallopt(M_TRIM_THRESHOLD, HEAP_BYTES),
        mallopt(M_ARENA_MAX, 1),
    ]
    _applied = all(result == 1 for result in results)
    if not _applied:
        log.warning("glibc refused the malloc settings for forward passes (mallopt returned %s)", results)
    return _applied
