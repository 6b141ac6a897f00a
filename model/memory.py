"""Keep activations' pages warm inside a stage, and the resident set flat across stages and chunks.

What costs time: glibc's malloc serves blocks above its mmap threshold (128
KiB at start, raised as big blocks are freed, at most 32 MiB) with a fresh
``mmap``, and frees them with ``munmap``. Every network stage allocates and
frees tensors of tens of MB hundreds of times, so each one is page-faulted
and zeroed by the kernel anew. Measured on the ``basic`` preset (10 steps,
README "Speed at verified parity"): with glibc's defaults the process spent
17 s of 51 in the kernel, and our vocoder took 20.5 s where the original took
13.5 s inside its own process. The original is faster only by accident:
``torch.load`` frees gigabytes of large blocks, which raises glibc's dynamic
threshold before its networks run. The same vocoder code (ours or the
original's, tests/bench_vocoder_context.py) takes 13.4 s in a process whose
threshold is high.

What ``enhance`` does (mode ``reuse``, the default): `configure()` fixes the
mmap threshold at 1 GiB and the trim threshold at 1 GiB, so a stage's
activations come from the heap and a freed block's pages are reused by the
next allocation without faulting; `between_stages()` calls ``malloc_trim(0)``
after each network stage and each chunk (and `release()` once after
loading), which hands every free heap page back (``MADV_DONTNEED`` on whole
free pages of every arena), so what one stage left free does not stay
resident under the next one and the high-water mark stays that of the
largest stage, also over a long file's many chunks.

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

import ctypes
import ctypes.util
import functools
import os

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 1 << 30
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


def configure(mmap_threshold: int = MMAP_THRESHOLD, trim_threshold: int = TRIM_THRESHOLD) -> bool:
    """In mode ``reuse``: fix glibc's mmap and trim thresholds high; True if applied.

    Also arms `between_stages()`. A no-op (False) in the other modes, under a
    user's own tuning, or without glibc.
    """
    global _configured
    libc = _libc()
    if libc is None or mode() != "reuse" or user_tuned():
        return False
    ok = bool(libc.mallopt(M_MMAP_THRESHOLD, int(mmap_threshold)))
    ok = bool(libc.mallopt(M_TRIM_THRESHOLD, int(trim_threshold))) and ok
    _configured = ok
    return ok


def configured() -> bool:
    """True once `configure()` applied the ``reuse`` thresholds in this process."""
    return _configured


def release() -> bool:
    """Return free heap memory to the OS (``malloc_trim(0)``); True if some was released."""
    libc = _libc()
    if libc is None or mode() == "off":
        return False
    return bool(libc.malloc_trim(0))


def between_stages() -> bool:
    """`release()` after a network stage, where `configure()` raised the thresholds; else nothing.

    Under glibc's own thresholds the big blocks of a stage were mmapped and
    are already gone, and a library caller never configured anything: both
    skip the (cheap, but not free) walk over the heap.
    """
    return release() if _configured else False


__all__ = ["DEFAULT_MODE", "MMAP_THRESHOLD", "MODES", "TRIM_THRESHOLD", "available", "between_stages",
           "configure", "configured", "mode", "release", "user_tuned"]
