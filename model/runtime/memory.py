"""Keep activations' pages warm inside a stage, and the resident set flat across stages and chunks.

What costs time: glibc's malloc serves blocks above its mmap threshold (128
KiB at start, raised as big blocks are freed, at most 32 MiB) with a fresh
``mmap``, and frees them with ``munmap``. Every network stage allocates and
frees tensors of tens of MB hundreds of times, so each one is page-faulted
and zeroed by the kernel anew. Measured on the ``basic`` preset
(benchmarks/bench_vocoder_context.py, docs/performance.md, "The allocator"): under glibc's
thresholds our vocoder took 18.3 s of which 7.3 s system CPU, the
original's own ``Generator`` class 16.5 s (8.0 s system); with the threshold
raised 12.3 s (0.4 s) and 11.2 s (0.1 s). The original is fast inside its
own pipeline only by accident: ``torch.load`` frees gigabytes of large
blocks, which raises glibc's dynamic threshold before its networks run.

What ``enhance`` does (mode ``reuse``, the default): `configure()` fixes the
trim threshold at 1 GiB and the mmap threshold at glibc's initial 128 KiB;
the pipeline runs each network stage inside `network_stage()` (through the
stage hook the product passes it, `audiosr_model.runtime.stages`), which raises
the mmap threshold to 1 GiB, so the stage's activations come from the heap
and a freed block's pages are reused by the next allocation without
faulting, and on leaving puts it back and calls ``malloc_trim(0)``, which
hands every free heap page back (``MADV_DONTNEED`` on whole free pages of
every arena): what one stage left free is not resident under the next one.
Arrays that live across stages (a long file's input, output and cross-fade
buffers) are made outside the stages, keep their own mappings, and cannot
pin heap pages between the next chunk's activations (tiny preset, medians
of three runs: a 300 s file's peak 11.4 % above a 20 s file's with the
threshold raised for the whole run, 8.8 % with stage-scoped thresholds;
docs/performance.md, "Long files"). The memory-mapped weights of the stage's networks
are handed back on leaving too (`network_stage(*weights)`, model/runtime/resident.py).

``AUDIOSR_MALLOC`` selects other behaviours, for measurement: ``trim``
(glibc's own thresholds, trimming between chunks only: the previous default),
``off`` (glibc's plain defaults, no trimming). A user's own tuning
(``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``, or ``glibc.malloc``
in ``GLIBC_TUNABLES``) is never overridden. Everything is a no-op where
glibc's functions are absent (macOS, musl, Windows).

Library callers (the harness's subjects, tests) get none of this unless they
call `configure()`: it changes a process-wide allocator setting, which is
the application's decision (the CLI's), not a model's.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
from typing import Iterator

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 1 << 30  # inside a network stage: every activation from the heap
OUTSIDE_THRESHOLD = 128 << 10  # between stages: glibc's initial threshold, held fixed
TRIM_THRESHOLD = 1 << 30

MODES = ("reuse", "trim", "off")
DEFAULT_MODE = "reuse"

_configured = False


@functools.lru_cache(maxsize=1)
def _libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    if not (hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim")):
        return None
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    libc.malloc_trim.restype = ctypes.c_int
    return libc


def available() -> bool:
    """True where glibc's mallopt and malloc_trim can be called."""
    return _libc() is not None


def mode() -> str:
    """``reuse`` (the default), ``trim`` or ``off``, from ``AUDIOSR_MALLOC``."""
    value = os.environ.get("AUDIOSR_MALLOC", DEFAULT_MODE).strip().lower() or DEFAULT_MODE
    return value if value in MODES else DEFAULT_MODE


def user_tuned() -> bool:
    """True when the environment already sets glibc's malloc thresholds."""
    env = os.environ
    return ("MALLOC_MMAP_THRESHOLD_" in env or "MALLOC_TRIM_THRESHOLD_" in env
            or "glibc.malloc" in env.get("GLIBC_TUNABLES", ""))


def configure(trim_threshold: int = TRIM_THRESHOLD) -> bool:
    """In mode ``reuse``: fix glibc's thresholds (`OUTSIDE_THRESHOLD` for mmap, a high trim threshold)
    and arm `network_stage()`; True if applied.

    A no-op (False) in the other modes, under a user's own tuning, or without glibc.
    """
    global _configured
    libc = _libc()
    if libc is None or mode() != "reuse" or user_tuned():
        return False
    ok = bool(libc.mallopt(M_MMAP_THRESHOLD, OUTSIDE_THRESHOLD))
    ok = bool(libc.mallopt(M_TRIM_THRESHOLD, int(trim_threshold))) and ok
    _configured = ok
    return ok


@contextlib.contextmanager
def network_stage(*weights) -> Iterator[None]:
    """Inside: activations from the heap (mmap threshold `MMAP_THRESHOLD`); on leaving: the threshold back
    at `OUTSIDE_THRESHOLD` and every free heap page returned (`release`).

    Only the networks' short-lived activations come from the heap, so they
    are all free again when the stage ends and the trim returns them; the
    long-lived arrays made between stages (a long file's input, output and
    cross-fade buffers) keep their own mappings and cannot fragment the heap
    that the next chunk's activations reuse. The modules given as ``weights``
    (the stage's networks) then have their memory-mapped weights' resident
    pages handed back (`resident.drop`: only pages still holding the file's
    content), so that the next stage does not run with this one's weights
    resident. A no-op unless `configure()` applied.
    """
    libc = _libc() if _configured else None
    if libc is None:
        yield
        return
    libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    try:
        yield
    finally:
        libc.mallopt(M_MMAP_THRESHOLD, OUTSIDE_THRESHOLD)
        release()
        if weights:
            from audiosr_model.runtime import resident

            for module in weights:
                resident.drop(module)


def configured() -> bool:
    """True once `configure()` applied the ``reuse`` thresholds in this process."""
    return _configured


def release() -> bool:
    """Return free heap memory to the OS (``malloc_trim(0)``); True if some was released."""
    libc = _libc()
    if libc is None or mode() == "off":
        return False
    return bool(libc.malloc_trim(0))


__all__ = ["DEFAULT_MODE", "MMAP_THRESHOLD", "MODES", "OUTSIDE_THRESHOLD", "TRIM_THRESHOLD", "available",
           "configure", "configured", "mode", "network_stage", "release", "user_tuned"]
